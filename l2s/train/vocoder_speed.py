"""Time one training step of a vocoder recipe, to plan a run.

``python -m l2s.train.vocoder_speed vocoders/vocos/hparams.yaml [--batch 8] [--seconds 1] [--threads 1]``
prints one JSON line: wall and CPU seconds per step (discriminator + generator update),
the mean of ``--steps`` steps after one warm-up step, on random audio (the cost does
not depend on the content). Options of the recipe can be overridden with ``--set KEY=VALUE``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from typing import List, Optional

import torch

from l2s.config import HOP_LENGTH, MEL_FRAME_RATE, SAMPLE_RATE


def step_time(recipe: str, batch: int = 8, seconds: float = 1.0, threads: int = 1, steps: int = 3,
              overrides: Optional[List[str]] = None, device: str = "cpu") -> dict:
    """Seconds per training step of ``recipe`` with ``batch`` segments of ``seconds`` each."""
    import speechbrain as sb

    from l2s.train.runner import load_hparams
    from l2s.train.vocoder import VocoderBrain, build_modules

    torch.set_num_threads(threads)
    frames = int(round(seconds * MEL_FRAME_RATE))
    with tempfile.TemporaryDirectory() as tmp:
        lines = [f"data_folder: {tmp}", f"output_folder: {tmp}", f"segment_frames: {frames}"]
        lines += [o.replace("=", ": ", 1) for o in overrides or []]
        hparams = load_hparams(recipe, "\n".join(lines))
        brain = VocoderBrain(modules=build_modules(hparams), opt_class=None, hparams=hparams,
                             run_opts={"device": device}, checkpointer=None)
        brain.total_steps = 1000
        brain.on_fit_start()
        brain.on_stage_start(sb.Stage.TRAIN)
        brain.modules.train()
        gen = torch.Generator().manual_seed(0)
        wav = 0.3 * torch.randn(batch, frames * HOP_LENGTH, generator=gen)
        data = {"wav": wav, "wav_lengths": torch.full((batch,), wav.shape[1])}
        walls, cpus = [], []
        for i in range(steps + 1):
            start, start_cpu = time.perf_counter(), time.process_time()
            brain.fit_batch(data)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            if i:  # the first step is a warm-up
                walls.append(time.perf_counter() - start)
                cpus.append(time.process_time() - start_cpu)
    params = {name: sum(p.numel() for p in m.parameters()) for name, m in brain.modules.items()}
    return {"recipe": recipe, "batch": batch, "segment_seconds": frames * HOP_LENGTH / SAMPLE_RATE,
            "threads": threads, "device": device, "steps": steps, "wall_s_per_step": sum(walls) / len(walls),
            "cpu_s_per_step": sum(cpus) / len(cpus), "parameters": params}


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    print(json.dumps(step_time(args.recipe, args.batch, args.seconds, args.threads, args.steps, args.overrides,
                               args.device)), flush=True)


if __name__ == "__main__":
    main()
