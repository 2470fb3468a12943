"""Writing a :class:`~l2s.pipeline.pipeline.SynthesisResult`: audio (.wav, or muxed into a video),
a JSON sidecar, and an optional PNG (:mod:`l2s.figures`). Every file is written atomically; the JSON
sidecar is written last, so its presence marks a finished clip (how a batch resumes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np

from l2s.errors import InputError
from l2s.io.atomic import atomic_write_text

AUDIO_SUFFIXES = (".wav",)
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")
OUTPUT_SUFFIXES = AUDIO_SUFFIXES + VIDEO_SUFFIXES


def sidecar_of(output: Path) -> Path:
    """``out.wav`` -> ``out.json``."""
    return output.with_suffix(".json")


def plot_of(output: Path) -> Path:
    """``out.wav`` -> ``out.png``."""
    return output.with_suffix(".png")


def check_output_path(output: Path) -> None:
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(f"{output}: output must end in one of {', '.join(OUTPUT_SUFFIXES)}")


def write_audio(result, output: Path, video: Optional[Path] = None) -> None:
    """The waveform as a 16-bit wav, or muxed into a copy of ``video`` (its video stream copied as is)."""
    check_output_path(output)
    if output.suffix.lower() in AUDIO_SUFFIXES:
        from l2s.io.audio import write_wav

        write_wav(output, result.wav, result.sample_rate)
        return
    if video is None:
        raise InputError(f"{output}: a video output needs a video input to take the picture from")
    from l2s.io.video import mux_audio

    mux_audio(video, result.wav, output, sample_rate=result.sample_rate)


def sidecar_record(result, input_name: str, output: Path, model: Dict[str, Any],
                   warnings_seen: Sequence[str] = ()) -> Dict[str, Any]:
    """What the JSON sidecar says about one output."""
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
    }


def write_sidecar(record: Dict[str, Any], output: Path) -> Path:
    path = sidecar_of(output)
    atomic_write_text(path, json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    return path


def write_plot(result, path: Path, title: str = "", reference: Optional[np.ndarray] = None,
               tiers: Optional[Mapping[str, Sequence[Any]]] = None) -> Path:
    """The ``--plot`` PNG (:func:`l2s.figures.synthesis_figure`): prior, generated and reference mels on one
    time axis, the lip-read words under them, the output audio's F0 beside the prior's."""
    from l2s.figures import synthesis_figure

    return synthesis_figure(result, path, title=title, reference=reference, tiers=tiers)
