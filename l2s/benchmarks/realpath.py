"""The real path, timed stage by stage: a video file in, a voiced video out, as ``l2s synthesize`` runs it.

One measurement (:func:`measure_path`) runs in a fresh process (:func:`run_path`), so that its peak
memory is its own: it loads the pipeline and the face models (start-up, timed apart), warms the
networks up on a few blank frames, then times

* ``decode``: the decoder's own work (in its background thread, so it overlaps the next two;
  ``decode_wait`` is what the face stage waited for it);
* ``landmarks``: face detection and tracking; ``crop``: the mouth crops; ``face``: the whole face
  stage as the caller waits for it (``landmarks + crop + decode_wait``);
* the pipeline's network stages (:data:`l2s.pipeline.pipeline.STAGES` after ``roi``: lip reader,
  prior, mel generator, vocoder);
* ``mux``: the voiced audio muxed into a copy of the video.

Each stage's real-time factor is its seconds over the output's duration. :func:`compare_paths`
measures the earlier path (``DetectorOptions(mode="per-frame")``, frames decoded in the calling
thread) and the present one back to back, in one run, so that their ratio holds on a shared machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from l2s.benchmarks import system
from l2s.errors import InputError, L2SError, ModelError

NEW, OLD = "new", "old"
#: How each labelled path runs: the face detector's mode and how many frames the decoder thread runs ahead.
PATHS = {NEW: ("track", 16), OLD: ("per-frame", 0)}
WARM_UP_FRAMES = 25


@dataclass(frozen=True)
class PathOptions:
    """One measurement of the real path.

    Attributes:
        video: the input video file.
        model: a pipeline (bundled name, directory or hub id).
        label: ``"new"`` (tracking detector, decoder thread) or ``"old"`` (per-frame detector, decoding
            in the calling thread): see :data:`PATHS`.
        device: ``cpu``, ``cuda``...
        threads: torch's and OpenCV's thread count (and OMP's, set by :func:`run_path`).
        seed: the sampler's seed.
    """

    video: str
    model: str
    label: str = NEW
    device: str = "cpu"
    threads: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.label not in PATHS:
            raise InputError(f"unknown path {self.label!r}; expected one of {', '.join(PATHS)}")


def _seconds(since: float) -> float:
    return time.perf_counter() - since


def measure_path(options: PathOptions, workdir: Path) -> Dict[str, Any]:
    """Time the real path on ``options.video`` in this process (see the module docstring).

    Returns:
        A JSON-ready dict: ``startup_seconds``, ``stage_seconds``, ``rtf`` per stage, ``rtf_total``,
        ``rtf_face``, ``audio_seconds``, ``cpu_seconds`` and ``cpu_rtf`` (the process's CPU time, every
        thread, for the face stage, the networks, the mux and in total), ``peak_rss_mb`` and the thread counts.
    """
    start = time.perf_counter()
    import numpy as np
    import torch

    from l2s.io.video import iter_video_frames, mux_audio
    from l2s.pipeline import Lip2Speech
    from l2s.pipeline.inputs import ClipInput
    from l2s.pipeline.pipeline import STAGES
    from l2s.vision import graphs
    from l2s.vision.face import DetectorOptions
    from l2s.vision.roi import extract_roi

    system.limit_threads(options.threads)
    startup = {"imports": _seconds(start)}
    mark = time.perf_counter()
    pipe = Lip2Speech.from_pretrained(options.model, device=options.device)
    startup["load_pipeline"] = _seconds(mark)
    mode, ahead = PATHS[options.label]
    detector = DetectorOptions(mode=mode)
    mark = time.perf_counter()
    graphs.face_finder(detector.min_detection_confidence)
    if mode == "track":
        graphs.region_landmarker()
    else:
        graphs.static_mesh(detector.min_detection_confidence, detector.min_presence)
    startup["face_model"] = _seconds(mark)
    mark = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the bench is not the place for domain warnings
        pipe(np.zeros((WARM_UP_FRAMES, 96, 96), np.uint8), seed=options.seed)  # lazy imports, allocator growth
    startup["warm_up"] = _seconds(mark)

    # CPU seconds of the whole process (every thread), per part: on a shared machine they vary less than wall time
    cpu_start, wall = time.process_time(), time.perf_counter()
    timings: Dict[str, float] = {}
    roi = extract_roi(options.video, detector=detector, decode_ahead=ahead, timings=timings)
    timings["face"] = _seconds(wall)
    cpu = {"face": time.process_time() - cpu_start}
    frames = iter_video_frames(options.video)
    try:
        face = next(frames).copy()  # the pipeline's identity frame (LipVoicer's input), as l2s synthesize reads it
    finally:
        frames.close()
    clip = ClipInput(roi=roi.roi, face=face, detected=True, source=str(options.video))
    mark = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = pipe(clip, seed=options.seed)
    cpu["networks"] = time.process_time() - mark
    for stage in STAGES[1:]:
        timings[stage] = float(result.timings.get(stage, 0.0))
    mark, mark_cpu = time.perf_counter(), time.process_time()
    mux_audio(options.video, result.wav, workdir / f"voiced-{options.label}.mp4")
    timings["mux"] = _seconds(mark)
    cpu["mux"] = time.process_time() - mark_cpu
    timings["total"] = _seconds(wall)
    cpu["total"] = time.process_time() - cpu_start
    audio = result.duration
    return {
        "label": options.label, "detector": mode, "decode_ahead": ahead, "video": str(options.video),
        "frames": roi.num_frames, "face_found": round(float(roi.found.mean()), 4), "audio_seconds": round(audio, 3),
        "rtf_total": round(timings["total"] / audio, 4), "rtf_face": round(timings["face"] / audio, 4),
        "face_ms_per_frame": round(1000 * timings["face"] / roi.num_frames, 3),
        "rtf": {k: round(v / audio, 4) for k, v in timings.items()},
        "stage_seconds": {k: round(v, 3) for k, v in timings.items()},
        "startup_seconds": {k: round(v, 3) for k, v in startup.items()},
        "cpu_seconds": {k: round(v, 3) for k, v in cpu.items()},
        "cpu_rtf": {k: round(v / audio, 4) for k, v in cpu.items()},
        "cpu_per_wall": round(cpu["total"] / timings["total"], 3),
        "peak_rss_mb": system.peak_rss_mb(), "torch_threads": torch.get_num_threads(),
        "os_threads": system.os_threads(), "device": str(pipe.device), "chunks": len(result.chunks),
    }


def run_path(options: PathOptions, workdir: Path, timeout: Optional[float] = None) -> Dict[str, Any]:
    """:func:`measure_path` in a fresh Python process (its own peak memory, OMP threads set before torch loads).

    Raises:
        ModelError: the measurement failed (its last error line is quoted).
    """
    cmd = [sys.executable, "-m", __name__, json.dumps(asdict(options)), str(workdir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=system.thread_environment(options.threads),
                          timeout=timeout)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ModelError(f"the {options.label} path failed on {options.video}: {last}")
    return json.loads(lines[-1])


def compare_paths(video: Path, model: str, labels: List[str], device: str = "cpu", threads: int = 1,
                  log: Callable[[str], None] = lambda line: None, workdir: Optional[Path] = None) -> Dict[str, Any]:
    """Measure the labelled paths on ``video`` back to back; their ratios (old over new) when both ran."""
    report: Dict[str, Any] = {"video": str(video), "paths": {}}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for label in labels:
            log(f"{label} path ({PATHS[label][0]} detector) on {video.name}")
            before = system.load_average()
            out = run_path(PathOptions(video=str(video), model=model, label=label, device=device, threads=threads),
                           Path(tmp))
            out["load_average"] = {"before": before, "after": system.load_average()}
            report["paths"][label] = out
            log(f"{label}: rtf_total {out['rtf_total']}, face {out['rtf_face']} "
                f"({out['face_ms_per_frame']} ms/frame), peak RSS {out['peak_rss_mb']} MB")
    paths = report["paths"]
    if NEW in paths and OLD in paths:
        new, old = paths[NEW], paths[OLD]
        wall, cpu = (lambda key: old["stage_seconds"][key] / max(new["stage_seconds"][key], 1e-9),
                     lambda key: old["cpu_seconds"][key] / max(new["cpu_seconds"][key], 1e-9))
        report["speedup"] = {"total": round(wall("total"), 2), "face": round(wall("face"), 2),
                             "landmarks": round(wall("landmarks"), 2), "cpu_total": round(cpu("total"), 2),
                             "cpu_face": round(cpu("face"), 2)}
    return report


def _main(argv: List[str]) -> int:
    options = PathOptions(**json.loads(argv[0]))
    try:
        out = measure_path(options, Path(argv[1]))
    except L2SError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("L2S_PROGRESS", "")
    sys.exit(_main(sys.argv[1:]))
