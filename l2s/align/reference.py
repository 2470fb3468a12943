"""Reference timings (SynthGRID ``align.json``) and the boundary errors of an alignment against them.

``align.json`` (written by the corpus generator) holds the true words and phoneme units of a clip with
their start and end seconds. Its phonemes are in the units of :mod:`l2s.text.phonemes`, except that the
Piper voice times an affricate as two symbols (``t ʃ``): :func:`read_reference` joins them, so they
compare with the G2P's ``tʃ``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np

from l2s.align.timeline import Alignment
from l2s.errors import InputError
from l2s.text.phonemes import AFFRICATES

Interval = Tuple[str, float, float]


@dataclass(frozen=True)
class Reference:
    """The true timeline of a clip: ``words`` ``(word, start, end)`` and each word's ``phonemes``."""

    words: Tuple[Interval, ...]
    phonemes: Tuple[Tuple[Interval, ...], ...]

    @property
    def text(self) -> str:
        return " ".join(w for w, _, _ in self.words)


def merge_affricates(units: Sequence[Interval]) -> List[Interval]:
    """``t`` + ``ʃ`` -> ``tʃ`` and ``d`` + ``ʒ`` -> ``dʒ``, their intervals joined."""
    out: List[Interval] = []
    for unit in units:
        if out and out[-1][0] + unit[0] in AFFRICATES:
            out[-1] = (out[-1][0] + unit[0], out[-1][1], unit[2])
        else:
            out.append(tuple(unit))
    return out


def read_reference(path: Union[str, Path]) -> Reference:
    """Words and per-word phonemes of an ``align.json`` (a phoneme belongs to the word holding its middle,
    or the nearest one)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        words = tuple((str(w["word"]), float(w["start"]), float(w["end"])) for w in data["words"])
        phones = [(str(p["phoneme"]), float(p["start"]), float(p["end"])) for p in data["phonemes"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a readable align.json ({type(exc).__name__}: {exc})") from None
    per: List[List[Interval]] = [[] for _ in words]
    for p in phones:
        mid = (p[1] + p[2]) / 2
        k = min(range(len(words)), key=lambda i: max(words[i][1] - mid, mid - words[i][2], 0.0))
        per[k].append(p)
    return Reference(words=words, phonemes=tuple(tuple(merge_affricates(w)) for w in per))


def word_errors(alignment: Alignment, reference: Reference) -> np.ndarray:
    """``(W, 2)`` start and end errors (seconds, signed) of each word, the same words in the same order.

    Raises:
        ValueError: the alignment has other words than the reference.
    """
    if [w.word for w in alignment.words] != [w for w, _, _ in reference.words]:
        raise ValueError("the alignment's words are not the reference's")
    return np.array([[a.start - s, a.end - e] for a, (_, s, e) in zip(alignment.words, reference.words)],
                    dtype=np.float64).reshape(-1, 2)


def matched_word_errors(alignment: Alignment, reference: Reference) -> Tuple[np.ndarray, int]:
    """Start and end errors of the words an aligned (lip-read) text got right, paired with the reference by
    a word-level edit alignment; and how many reference words there are."""
    import jiwer

    hyp = [w.word for w in alignment.words]
    ref = [w for w, _, _ in reference.words]
    rows = []
    if hyp:
        out = jiwer.process_words(" ".join(ref), " ".join(hyp))
        for chunk in out.alignments[0]:
            if chunk.type != "equal":
                continue
            refs = range(chunk.ref_start_idx, chunk.ref_end_idx)
            for i, j in zip(refs, range(chunk.hyp_start_idx, chunk.hyp_end_idx)):
                a, (_, s, e) = alignment.words[j], reference.words[i]
                rows.append([a.start - s, a.end - e])
    return np.array(rows, dtype=np.float64).reshape(-1, 2), len(ref)


def phoneme_errors(alignment: Alignment, reference: Reference) -> Tuple[np.ndarray, int, int]:
    """Start and end errors of the phonemes of the words whose G2P units are the reference's units.

    Returns:
        ``((N, 2) errors in seconds, words compared, words in all)``.
    """
    rows: List[List[float]] = []
    compared = 0
    by_word: Dict[int, list] = {}
    for p in alignment.phonemes:
        by_word.setdefault(p.word, []).append(p)
    for k, truth in enumerate(reference.phonemes):
        ours = by_word.get(k, [])
        if [p.phoneme for p in ours] != [u for u, _, _ in truth] or not ours:
            continue
        compared += 1
        rows.extend([p.start - s, p.end - e] for p, (_, s, e) in zip(ours, truth))
    return np.array(rows, dtype=np.float64).reshape(-1, 2), compared, len(reference.phonemes)


def summarise(per_clip: Sequence[np.ndarray], bootstrap: int = 1000, seed: int = 0) -> Dict[str, float]:
    """Absolute-error statistics in milliseconds over clips, with 95 % bootstrap intervals over clips.

    Args:
        per_clip: each clip's ``(N, 2)`` signed start/end errors in seconds.

    Returns:
        ``{n, start_median_ms, end_median_ms, median_ms, within_40ms, within_100ms}`` and ``*_ci95`` pairs.
    """
    clips = [np.abs(np.asarray(c, dtype=np.float64).reshape(-1, 2)) * 1000 for c in per_clip]
    clips = [c for c in clips if len(c)]
    if not clips:
        return {"n": 0}

    def stats(sample: Sequence[np.ndarray]) -> Dict[str, float]:
        e = np.concatenate(sample)
        both = e.reshape(-1)
        return {"start_median_ms": float(np.median(e[:, 0])), "end_median_ms": float(np.median(e[:, 1])),
                "median_ms": float(np.median(both)), "within_40ms": float(np.mean(both <= 40.0)),
                "within_100ms": float(np.mean(both <= 100.0))}

    out: Dict[str, float] = {"n": int(sum(len(c) for c in clips)), **stats(clips)}
    if bootstrap > 0:
        rng = np.random.default_rng(seed)
        draws = [stats([clips[i] for i in rng.integers(0, len(clips), len(clips))]) for _ in range(bootstrap)]
        for key in ("start_median_ms", "end_median_ms", "median_ms", "within_40ms", "within_100ms"):
            values = np.array([d[key] for d in draws])
            out[f"{key}_ci95"] = [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]
    return out
