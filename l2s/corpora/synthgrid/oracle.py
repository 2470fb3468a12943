"""The viseme-ambiguity floor of a SynthGRID split: what the pictures allow a lip reader.

An oracle lip reader sees, for every word, its exact viseme sequence (the classes of its
phonemes, repeats merged, silence dropped) and knows the GRID grammar (which slot a word
fills). Words of one slot that can show the same viseme sequence are indistinguishable
(the renderer draws every phoneme of a class identically), so the oracle can only guess
among them: with a uniform guess its expected error on a word with ``k`` look-alikes is
``1 - 1/k``. The floor is the expected WER of that oracle over a split; a trained lip
reader is compared with it, not with 0.

The look-alike sets come from the pronunciations the corpus itself uses (every
``.align.json`` in every split), since the speech engines and accents pronounce some
words differently.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Sequence, Set, Tuple

from l2s.corpora.synthgrid.grammar import SLOTS
from l2s.errors import InputError

VisemeSeq = Tuple[str, ...]


@dataclass(frozen=True)
class VisemeFloor:
    """Expected WER (%) of the viseme oracle on a split, and the look-alike words behind it."""

    wer: float
    words: int
    ambiguous_words: int
    lookalikes: Mapping[str, Tuple[str, ...]]


def word_visemes(align: Mapping) -> List[Tuple[str, VisemeSeq]]:
    """``(word, viseme sequence)`` for each word of one clip's ``.align.json`` content."""
    out = []
    for w in align["words"]:
        seq: List[str] = []
        for p in align["phonemes"]:
            centre = (p["start"] + p["end"]) / 2
            if w["start"] <= centre < w["end"] and p["viseme"] != "sil" and (not seq or seq[-1] != p["viseme"]):
                seq.append(p["viseme"])
        out.append((w["word"], tuple(seq)))
    return out


def _slot_of(word: str, position: int) -> Sequence[str]:
    slot = SLOTS[position] if position < len(SLOTS) else ()
    if word not in slot:
        raise InputError(f"word {word!r} is not in GRID slot {position}")
    return slot


def viseme_floor(clips: Sequence[Mapping], pronunciations: Iterable[Mapping]) -> VisemeFloor:
    """The floor over ``clips`` (align dicts), with look-alikes from ``pronunciations`` (align dicts).

    A test word's candidates are the words of its slot that were seen, anywhere in
    ``pronunciations``, with the test word's own viseme sequence.
    """
    seen: Dict[Tuple[int, VisemeSeq], Set[str]] = defaultdict(set)
    for align in pronunciations:
        for pos, (word, seq) in enumerate(word_visemes(align)):
            seen[(pos, seq)].add(word)
    errors, tokens, ambiguous = 0.0, 0, 0
    lookalikes: Dict[str, Set[str]] = defaultdict(set)
    for align in clips:
        for pos, (word, seq) in enumerate(word_visemes(align)):
            _slot_of(word, pos)
            candidates = seen[(pos, seq)] | {word}
            tokens += 1
            errors += 1.0 - 1.0 / len(candidates)
            if len(candidates) > 1:
                ambiguous += 1
                lookalikes[word] |= candidates - {word}
    if tokens == 0:
        raise InputError("no words to score")
    return VisemeFloor(wer=100.0 * errors / tokens, words=tokens, ambiguous_words=ambiguous,
                       lookalikes={w: tuple(sorted(v)) for w, v in sorted(lookalikes.items())})


def corpus_viseme_floor(root: Path, split: str = "test-unseen") -> VisemeFloor:
    """:func:`viseme_floor` of ``split`` of a generated corpus, pronunciations from all its clips."""
    root = Path(root)
    if not (root / split).is_dir():
        raise InputError(f"{root}: no split folder {split!r} (is it a SynthGRID corpus?)")
    every = sorted(root.glob("*/*/*.align.json"))
    chosen = [p for p in every if p.parts[-3] == split]
    if not chosen:
        raise InputError(f"{root / split}: no .align.json files")
    return viseme_floor([json.loads(p.read_text()) for p in chosen], (json.loads(p.read_text()) for p in every))
