"""Real-time factor of a vocoder: seconds of compute per second of audio.

``python -m l2s.vocoder.speed [NAME_OR_ARCH[:PRESET] ...]`` prints one JSON line per vocoder,
measured on one CPU thread (the figure ``vocoders/README.md`` reports). Besides the
names :func:`~l2s.vocoder.registry.get_vocoder` accepts, an architecture of the vocoder
table (``hifigan``, ``vocos``...), optionally with one of its presets (``hifigan:v1``,
``vocos:small``), builds a randomly initialised network of that size (speed does not
depend on the weights).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import List, Optional

import torch

from l2s.config import MEL_FRAME_RATE, N_MELS
from l2s.vocoder.base import WHOLE, Vocoder, render


@dataclass(frozen=True)
class SpeedResult:
    """One measurement: best wall and CPU time of ``repeats`` renders of a ``seconds``-long mel.

    ``real_time_factor_cpu`` (process CPU time) is the figure to compare on a shared
    machine: it does not grow when other processes take the cores.
    """

    vocoder: str
    seconds: float
    threads: int
    best_wall_s: float
    best_cpu_s: float
    real_time_factor: float
    real_time_factor_cpu: float


def real_time_factor(vocoder: Vocoder, name: str = "", seconds: float = 3.0, threads: int = 1,
                     repeats: int = 3) -> SpeedResult:
    """Time ``vocoder`` on a random model-space mel of ``seconds`` (whole, no chunking), on ``threads`` threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(0)
        mel = torch.rand(1, N_MELS, int(round(seconds * MEL_FRAME_RATE)), generator=gen) * 1.5 - 1.0
        best = best_cpu = float("inf")
        with torch.inference_mode():
            render(vocoder, mel[..., :MEL_FRAME_RATE // 2], chunking=WHOLE)  # warm-up
            for _ in range(repeats):
                start, start_cpu = time.perf_counter(), time.process_time()
                render(vocoder, mel, chunking=WHOLE)
                best = min(best, time.perf_counter() - start)
                best_cpu = min(best_cpu, time.process_time() - start_cpu)
    finally:
        torch.set_num_threads(previous)
    return SpeedResult(vocoder=name, seconds=seconds, threads=threads, best_wall_s=best, best_cpu_s=best_cpu,
                       real_time_factor=best / seconds, real_time_factor_cpu=best_cpu / seconds)


def build(name: str) -> Vocoder:
    """A vocoder to time: an untrained ``ARCH[:PRESET]`` of the vocoder table (weight norm folded, as loaded
    models are), else whatever :func:`~l2s.vocoder.registry.get_vocoder` finds by that name."""
    from l2s.arch import architectures
    from l2s.vocoder.registry import get_vocoder
    from l2s.vocoder.weight_norm import remove_weight_norm

    arch, _, preset = name.partition(":")
    entry = architectures("vocoder").get(arch)
    if entry is None or not entry.needs_weights:
        return get_vocoder(name)
    return remove_weight_norm(entry.create(preset or None)).eval()


def main(argv: Optional[List[str]] = None) -> None:
    names = list(sys.argv[1:] if argv is None else argv) or ["griffinlim", "hifigan:v1", "vocos:base"]
    for name in names:
        print(json.dumps(asdict(real_time_factor(build(name), name))), flush=True)


if __name__ == "__main__":
    main()
