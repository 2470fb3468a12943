"""Transcript writers in Whisper's habits: txt, json, srt, vtt and tsv.

* ``txt``: one line per segment.
* ``json``: :meth:`Alignment.to_dict <l2s.align.timeline.Alignment.to_dict>` (text, language, segments,
  words, phonemes).
* ``srt`` / ``vtt``: one cue per segment (split at pauses, and every few words). With word timestamps,
  one cue per word showing its segment with that word underlined (``<u>``), as Whisper writes them.
* ``tsv``: ``start<TAB>end<TAB>text`` in integer milliseconds, one row per segment (per word with
  word timestamps).

A video's files are written as one unit (:func:`l2s.io.atomic.atomic_paths`): all of them, or, on a
full disk or Ctrl-C, none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

from l2s.align.timeline import Alignment
from l2s.errors import InputError
from l2s.io.atomic import atomic_paths
from l2s.io.files import output_errors

FORMATS = ("txt", "json", "srt", "vtt", "tsv")
ALL = "all"
#: formats that need the timeline (``txt`` needs only the text)
TIMED = ("json", "srt", "vtt", "tsv")


def expand_formats(output_format: str) -> Tuple[str, ...]:
    """``"all"`` -> every format; a single name -> itself."""
    if output_format == ALL:
        return FORMATS
    if output_format not in FORMATS:
        raise InputError(f"unknown output format {output_format!r}: expected one of {', '.join(FORMATS)} or all")
    return (output_format,)


def timestamp(seconds: float, decimal: str = ".", hours: bool = True) -> str:
    """``HH:MM:SS.mmm`` (``,`` for srt)."""
    ms = max(0, int(round(seconds * 1000)))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    head = f"{h:02d}:" if hours or h else ""
    return f"{head}{m:02d}:{s:02d}{decimal}{ms:03d}"


def _cues(alignment: Alignment, word_timestamps: bool) -> Iterator[Tuple[float, float, str]]:
    """``(start, end, text)`` of each subtitle cue."""
    words = alignment.words
    for seg in alignment.segments():
        if not word_timestamps:
            yield seg.start, seg.end, seg.text
            continue
        own = list(range(seg.first_word, seg.last_word))
        cursor = seg.start
        for i in own:
            w = words[i]
            if w.start > cursor:  # a pause inside the segment: the plain text
                yield cursor, w.start, seg.text
            line = " ".join(f"<u>{words[j].word}</u>" if j == i else words[j].word for j in own)
            yield w.start, w.end, line
            cursor = w.end


def to_txt(alignment: Optional[Alignment], text: str = "") -> str:
    if alignment is None:
        return text + "\n"
    return "".join(seg.text + "\n" for seg in alignment.segments())


def to_json(alignment: Alignment) -> str:
    return json.dumps(alignment.to_dict(), ensure_ascii=False, indent=1) + "\n"


def to_srt(alignment: Alignment, word_timestamps: bool = False) -> str:
    out = []
    for k, (start, end, line) in enumerate(_cues(alignment, word_timestamps), start=1):
        out.append(f"{k}\n{timestamp(start, ',')} --> {timestamp(end, ',')}\n{line}\n")
    return "\n".join(out)


def to_vtt(alignment: Alignment, word_timestamps: bool = False) -> str:
    cues = [f"{timestamp(start)} --> {timestamp(end)}\n{line}\n" for start, end, line in
            _cues(alignment, word_timestamps)]
    return "WEBVTT\n\n" + "\n".join(cues)


def to_tsv(alignment: Alignment, word_timestamps: bool = False) -> str:
    rows = ([(w.start, w.end, w.word) for w in alignment.words] if word_timestamps
            else [(s.start, s.end, s.text) for s in alignment.segments()])
    return "start\tend\ttext\n" + "".join(f"{round(a * 1000)}\t{round(b * 1000)}\t{t}\n" for a, b, t in rows)


def render(fmt: str, alignment: Optional[Alignment], text: str = "", word_timestamps: bool = False) -> str:
    """The text of one output format.

    Args:
        fmt: one of :data:`FORMATS`.
        alignment: the timeline (None is enough for ``txt`` only).
        text: the plain text, for ``txt`` without an alignment.
    """
    if fmt == "txt":
        return to_txt(alignment, text)
    if alignment is None:
        raise ValueError(f"the {fmt} output needs an alignment")
    if fmt == "json":
        return to_json(alignment)
    return {"srt": to_srt, "vtt": to_vtt, "tsv": to_tsv}[fmt](alignment, word_timestamps)


def output_paths(out_dir: Path, stem: str, formats: Sequence[str]) -> List[Path]:
    return [Path(out_dir) / f"{stem}.{fmt}" for fmt in formats]


def write_outputs(out_dir: Path, stem: str, formats: Sequence[str], alignment: Optional[Alignment],
                  text: str = "", word_timestamps: bool = False) -> List[Path]:
    """Write ``<out_dir>/<stem>.<fmt>`` for each format, as one unit; returns the paths.

    Raises:
        InputError: ``out_dir`` is a file.
        OutputError: a file cannot be written (read-only or full disk), naming it; none is left then.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: not a directory (--output-dir)")
    texts = [render(fmt, alignment, text, word_timestamps) for fmt in formats]  # any refusal before a file
    paths = output_paths(out_dir, stem, formats)
    with atomic_paths(paths) as temps:
        for body, tmp, path in zip(texts, temps, paths):
            with output_errors(path):
                tmp.write_text(body, encoding="utf-8")
    return paths
