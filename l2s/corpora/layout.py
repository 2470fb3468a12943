"""What every real-corpus reader returns, and the text and path helpers they share.

A reader (:mod:`l2s.corpora.grid`, :mod:`l2s.corpora.lrs`, :mod:`l2s.corpora.lrw`) looks at a
corpus in its official layout and returns a :class:`CorpusLayout`: the utterances of each of
our splits (``video``, ``text``, ``speaker`` set; ``roi``/``wav``/``mel``/``f0`` are filled in
by :func:`l2s.corpora.prepare_corpus.prepare_corpus`) and the official split lists, which are
copied to ``<out>/lists/`` so results can be reported on exactly the published sets.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from l2s.data.manifest import Utterance
from l2s.errors import InputError
from l2s.vision.face import sidecar_path


@dataclass(frozen=True)
class CorpusLayout:
    """A corpus read from disk, before preparation.

    Attributes:
        name: corpus name (``grid``, ``lrs2``, ``lrs3``, ``lrw``).
        root: the folder it was read from.
        splits: our split name -> utterances, in a fixed order. An utterance whose video is
            missing stays listed (with ``video`` set to the expected path) so preparation
            rejects it with a reason instead of silently shrinking a published test set.
        lists: official list name -> lines, written to ``<out>/lists/<name>.txt``.
    """

    name: str
    root: Path
    splits: Mapping[str, List[Utterance]]
    lists: Mapping[str, List[str]] = field(default_factory=dict)

    @property
    def num_utterances(self) -> int:
        return sum(len(v) for v in self.splits.values())


_SPACES = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """The contract text: lower case, single spaces, no surrounding space.

    LRS transcripts mark some words with braces (``{LAUGHTER}``-like tags in a few files);
    the braces are dropped and the word kept, as Auto-AVSR's preparation does.
    """
    text = text.replace("{", "").replace("}", "")
    return _SPACES.sub(" ", text).strip().lower()


def read_text_header(path: Path) -> Dict[str, str]:
    """The ``Key: value`` lines of an LRS/LRW transcript file, up to its word table.

    ``Text:  SOME WORDS`` (two spaces in LRS2/LRS3) gives ``{"Text": "SOME WORDS"}``;
    ``Conf: 3`` and LRW's ``Duration: 0.53 seconds`` likewise.

    Raises:
        InputError: the file is missing, unreadable or has no ``Text:`` line.
    """
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot read transcript ({exc.strerror or exc})") from None
    header: Dict[str, str] = {}
    for line in lines:
        if not line.strip():
            continue  # LRW puts "Duration:" after a blank line
        key, sep, value = line.partition(":")
        if not sep or " " in key.strip():
            break  # the word table ("WORD START END ...") or anything else ends the header
        header.setdefault(key.strip(), value.strip())
    if "Text" not in header:
        raise InputError(f"{path}: no 'Text:' line")
    return header


def read_word_table(path: Path) -> List[Tuple[str, float, float]]:
    """The word timing table of an LRS transcript: ``(word, start_s, end_s)`` after the ``WORD START END`` header.

    Empty for files without a table (main/test clips of LRS2 have none in some releases).
    """
    rows: List[Tuple[str, float, float]] = []
    in_table = False
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "WORD" and len(parts) >= 3 and parts[1] == "START":
            in_table = True
            continue
        if in_table and len(parts) >= 3:
            try:
                rows.append((parts[0], float(parts[1]), float(parts[2])))
            except ValueError:
                continue
    return rows


def segment_words(words: Sequence[Tuple[str, float, float]], max_seconds: float
                  ) -> List[Tuple[float, float, List[str]]]:
    """Cut a word timing table into runs of consecutive words lasting at most ``max_seconds``.

    A run starts at its first word's start and ends at its last word's end; a word longer than
    ``max_seconds`` forms a run of its own. Used for the long pretrain clips of LRS2/LRS3, as
    Auto-AVSR cuts them before training.

    Returns:
        ``(start_s, end_s, words)`` per run, in order.
    """
    runs: List[Tuple[float, float, List[str]]] = []
    for word, start, end in words:
        if runs and end - runs[-1][0] <= max_seconds:
            runs[-1] = (runs[-1][0], end, runs[-1][2] + [word])
        else:
            runs.append((start, end, [word]))
    return runs


def stable_bucket(key: str, buckets: int = 100) -> int:
    """A bucket in ``[0, buckets)`` from an md5 of ``key``: the same on every machine and Python run."""
    return int(hashlib.md5(key.encode("utf-8")).hexdigest()[:8], 16) % buckets


def landmarks_beside(video: Path) -> Optional[Path]:
    """A ``<clip>.landmarks.npz`` sidecar next to the clip, if one is there (precomputed landmarks)."""
    side = sidecar_path(video)
    return side if side.is_file() else None


def read_list(path: Path) -> List[Tuple[str, List[str]]]:
    """An official split list: ``(clip key, trailing flags)`` per non-empty line.

    LRS2's ``test.txt`` may end a line with a flag (e.g. ``NF``, ``MV``); the flags are kept.
    """
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if parts:
            out.append((parts[0], parts[1:]))
    return out


def clip_utterance(uid: str, video: Path, text: str, speaker: str, **extra) -> Utterance:
    """An :class:`Utterance` for one clip: normalised text, the original in ``extra['text_orig']``."""
    fields = {"text_orig": text}
    fields.update({k: v for k, v in extra.items() if v not in (None, "", [])})
    return Utterance(id=uid, text=normalise_text(text), speaker=speaker, video=video,
                     landmarks=landmarks_beside(video), extra=fields)
