"""Writing a :class:`~l2s.pipeline.pipeline.SynthesisResult`: audio (.wav/.flac/.ogg/.mp3, or muxed
into a video), a JSON sidecar, an optional PNG (:mod:`l2s.figures`) and optional transcripts of the
text on the timeline (.txt/.srt/.vtt/.tsv, :mod:`l2s.align.subtitles`).

:func:`write_clip` writes them as one unit: every file goes to a temporary sibling first, they are
moved in together with the sidecar last, and on any failure (a full disk, Ctrl-C) none of them stays.
So a sidecar l2s wrote (:func:`read_sidecar`) marks a finished clip; its ``request`` (the input's
identity and the settings asked for) tells a batch whether a rerun may skip it, and its ``files``
which of the files beside the output l2s wrote.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

import numpy as np

from l2s.errors import InputError, OutputError
from l2s.io.atomic import atomic_paths, atomic_write_text
from l2s.io.audio import AUDIO_FORMATS
from l2s.io.files import output_error, output_errors

AUDIO_SUFFIXES = tuple(AUDIO_FORMATS)
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")
OUTPUT_SUFFIXES = AUDIO_SUFFIXES + VIDEO_SUFFIXES
#: The sidecar key only l2s writes: a JSON file without it beside an output is someone else's.
SIDECAR_MARK = "l2s_version"
#: Transcript formats written beside an output (``synthesize --output-format``; the JSON is the sidecar's).
TRANSCRIPT_FORMATS = ("txt", "srt", "vtt", "tsv")
#: Those laid on the timeline, whose cues ``--word-timestamps`` changes (:data:`l2s.align.subtitles.TIMED` less
#: the JSON; not imported from there, which loads torch).
TIMED_TRANSCRIPTS = ("srt", "vtt", "tsv")


def sidecar_of(output: Path) -> Path:
    """``out.wav`` -> ``out.json``."""
    return output.with_suffix(".json")


def plot_of(output: Path) -> Path:
    """``out.wav`` -> ``out.png``."""
    return output.with_suffix(".png")


def transcript_of(output: Path, fmt: str) -> Path:
    """``out.wav``, ``srt`` -> ``out.srt``."""
    return output.with_suffix("." + fmt)


def check_output_path(output: Path) -> None:
    """An :class:`InputError` unless ``output`` ends in an audio or video suffix l2s writes."""
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(f"{output}: output must end in one of {', '.join(OUTPUT_SUFFIXES)}")


def write_audio(result, output: Path, video: Optional[Path] = None) -> None:
    """The waveform as an audio file (the type its suffix names: 16-bit wav or flac, ogg, mp3), or muxed
    into a copy of ``video`` (its video stream copied as is)."""
    check_output_path(output)
    if output.suffix.lower() in AUDIO_SUFFIXES:
        from l2s.io.audio import write_audio as write_audio_file

        write_audio_file(output, result.wav, result.sample_rate)
        return
    if video is None:
        raise InputError(f"{output}: a video output needs a video input to take the picture from")
    from l2s.io.video import mux_audio

    mux_audio(video, result.wav, output, sample_rate=result.sample_rate)


def sidecar_record(result, input_name: str, output: Path, model: Dict[str, Any],
                   warnings_seen: Sequence[str] = (), request: Optional[Dict[str, Any]] = None,
                   face: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """What the JSON sidecar says about one output.

    Args:
        result: the voiced clip.
        input_name: the input as the user named it.
        output: the output file.
        model: :meth:`~l2s.pipeline.Lip2Speech.describe` of the pipeline.
        warnings_seen: the warnings given about this clip.
        request: what was asked for (the input's identity and the settings), compared on a rerun.
        face: where the face was missing (:meth:`l2s.pipeline.coverage.FaceCoverage.to_dict`).
    """
    duration = result.duration
    timings = {k: round(float(v), 4) for k, v in result.timings.items()}
    from l2s import __version__

    return {
        "l2s_version": __version__,
        "input": input_name,
        "output": output.name,
        "text": result.text,
        "confidences": [round(float(c), 4) for c in result.confidences],
        "settings": dict(result.settings),
        "model": model,
        "duration_s": round(duration, 4),
        "sample_rate": result.sample_rate,
        "timings_s": timings,
        "rtf": {k: round(v / duration, 4) for k, v in timings.items()} if duration > 0 else {},
        "chunks": [list(c) for c in result.chunks],
        "network_evals": result.network_evals,
        "warnings": list(warnings_seen),
        **({"alignment": result.alignment.to_dict()} if getattr(result, "alignment", None) is not None else {}),
        **({"face": face} if face is not None else {}),
        **({"request": request} if request is not None else {}),
    }


def sidecar_text(record: Dict[str, Any]) -> str:
    return json.dumps(record, indent=1, ensure_ascii=False) + "\n"


def write_sidecar(record: Dict[str, Any], output: Path) -> Path:
    path = sidecar_of(output)
    atomic_write_text(path, sidecar_text(record))
    return path


def read_sidecar(output: Path) -> Optional[Dict[str, Any]]:
    """The sidecar of ``output`` if l2s wrote it for this very output, else None (absent, or not ours)."""
    path = sidecar_of(output)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(record, dict) or SIDECAR_MARK not in record or record.get("output") != output.name:
        return None
    return record


@contextlib.contextmanager
def _written_as(tmp: Path, target: Path) -> Iterator[None]:
    """Errors while writing ``tmp`` (a temporary sibling of ``target``) are about ``target``."""
    try:
        yield
    except OutputError as exc:
        raise OutputError(str(exc).replace(str(tmp), str(target))) from exc
    except OSError as exc:
        raise output_error(target, exc) from exc


def write_clip(result, output: Path, record: Dict[str, Any], video: Optional[Path] = None,
               plot_title: Optional[str] = None, plot_reference: Optional[np.ndarray] = None,
               plot_tiers: Optional[Mapping[str, Sequence[Any]]] = None, transcripts: Sequence[str] = (),
               word_timestamps: bool = False) -> List[Path]:
    """Write a clip's audio, its PNG (when ``plot_title`` is given, :func:`write_plot`, compared with the
    recording ``plot_reference`` if any, ``plot_tiers`` under the mels), its transcripts and its sidecar
    as one unit.

    The files are written to temporary siblings and moved in together, the sidecar last; on any
    failure none of them is left (an earlier clip's files stay where no new file replaced them). The
    sidecar lists the files of the unit; a plot or transcript that an earlier unit of this output
    listed and this one does not is removed once the new unit is in (it described the old audio).

    Args:
        transcripts: formats of :data:`TRANSCRIPT_FORMATS` to write as ``<output stem>.<format>``.
        word_timestamps: srt/vtt: one cue per word; tsv: one row per word.

    Returns:
        The files written, the sidecar last.

    Raises:
        InputError: a timed transcript (srt, vtt, tsv) is asked for and the text is not on the timeline.
        OutputError: the disk is full or read-only, or a folder cannot be written (naming the output).
    """
    from l2s.align.subtitles import render

    alignment = getattr(result, "alignment", None)
    timed = [fmt for fmt in transcripts if fmt in TIMED_TRANSCRIPTS]
    if timed and alignment is None:
        raise InputError(f"{transcript_of(output, timed[0])}: the text is not on the timeline (see the warning), "
                         f"so there is no {', '.join(timed)} to write")
    texts = {fmt: render(fmt, alignment, result.text, word_timestamps) for fmt in transcripts}
    targets = ([output] + ([plot_of(output)] if plot_title is not None else [])
               + [transcript_of(output, fmt) for fmt in transcripts] + [sidecar_of(output)])
    record = {**record, "files": [t.name for t in targets]}
    superseded = _superseded(output, targets)
    with atomic_paths(targets) as temps:
        with _written_as(temps[0], targets[0]):
            write_audio(result, temps[0], video=video)
        if plot_title is not None:
            with _written_as(temps[1], targets[1]):
                write_plot(result, temps[1], title=plot_title, reference=plot_reference, tiers=plot_tiers)
        for fmt, tmp, target in zip(transcripts, temps[-1 - len(transcripts):-1], targets[-1 - len(transcripts):-1]):
            with _written_as(tmp, target):
                tmp.write_text(texts[fmt], encoding="utf-8")
        with _written_as(temps[-1], targets[-1]):
            temps[-1].write_text(sidecar_text(record), encoding="utf-8")
    for old in superseded:
        with contextlib.suppress(OSError):
            old.unlink()
    return targets


def _superseded(output: Path, targets: Sequence[Path]) -> List[Path]:
    """The plot and transcripts the sidecar now beside ``output`` lists and the new unit ``targets`` does not."""
    record = read_sidecar(output)
    listed = record.get("files") if record is not None else None
    if not isinstance(listed, list):
        return []
    ours = [plot_of(output)] + [transcript_of(output, fmt) for fmt in TRANSCRIPT_FORMATS]  # never another file
    return [p for p in ours if p.name in listed and p not in targets and p.is_file()]


def write_plot(result, path: Path, title: str = "", reference: Optional[np.ndarray] = None,
               tiers: Optional[Mapping[str, Sequence[Any]]] = None) -> Path:
    """The ``--plot`` PNG (:func:`l2s.figures.synthesis_figure`): prior, generated and reference mels on one
    time axis, the lip-read words under them, the output audio's F0 beside the prior's."""
    from l2s.figures import synthesis_figure

    with output_errors(path):
        return synthesis_figure(result, path, title=title, reference=reference, tiers=tiers)
