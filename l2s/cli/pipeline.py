"""``l2s pipeline build OUT --vsr DIR ...``: assemble a pipeline directory from trained components."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from l2s.diffusion.sampler import SOLVERS, SamplerConfig

_DEFAULT = SamplerConfig()


def human_size(size: int) -> str:
    """``1234567`` -> ``"1.2 MB"`` (decimal units)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"  # pragma: no cover - the loop always returns


@click.group()
def pipeline() -> None:
    """Make and inspect pipeline directories (pipeline.yaml plus one model directory per component)."""


@pipeline.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--vsr", "vsr", metavar="DIR", help="Lip reader model directory (or a training run folder).")
@click.option("--f0-ddsp", "f0_ddsp", metavar="DIR", help="F0 + DDSP coarse prior model directory.")
@click.option("--melgen", "melgen", metavar="DIR", required=True, help="Mel generator (denoiser) model directory.")
@click.option("--guide-asr", "guide_asr", metavar="DIR", help="Guide ASR model directory.")
@click.option("--vocoder", "vocoder", metavar="DIR|NAME", required=True,
              help="Vocoder model directory, or a registered training-free vocoder (griffinlim).")
@click.option("--name", required=True, help="Model id recorded in pipeline.yaml (e.g. synthgrid-small).")
@click.option("--trained-on", default=None, metavar="CORPUS",
              help="Corpus family, e.g. synthgrid (synthetic-face models warn on real-world video).")
@click.option("--solver", type=click.Choice(list(SOLVERS)), default=_DEFAULT.solver, show_default=True,
              help="Default sampler.")
@click.option("--steps", type=click.IntRange(min=1), default=_DEFAULT.steps,
              help="Default sampler steps (default: every schedule step for ddpm, 20 for the others).")
@click.option("--w-video", type=click.FloatRange(min=0), default=_DEFAULT.w_video, show_default=True,
              help="Classifier-free video guidance weight.")
@click.option("--w-asr", type=click.FloatRange(min=0), default=_DEFAULT.w_asr, show_default=True,
              help="ASR guidance weight.")
@click.option("--asr-start", type=click.IntRange(min=0), default=_DEFAULT.asr_start, show_default=True,
              help="ASR guidance applies at schedule steps t <= this.")
@click.option("--asr-end", type=click.IntRange(min=0), default=_DEFAULT.asr_end, show_default=True,
              help="... and at steps t >= this (the last steps are left to the denoiser).")
@click.option("--start-step", type=click.IntRange(min=1), default=_DEFAULT.start_step,
              help="Shallow diffusion from the DDSP prior noised to this step (default: from pure noise).")
@click.option("--beam-size", type=click.IntRange(min=0), default=0, show_default=True,
              help="Lip reader decoding: 0 greedy CTC, else the joint CTC/attention beam width.")
@click.option("--half", is_flag=True, help="Store float weights as float16 (half the size; loads as float32).")
def build(out: str, vsr: Optional[str], f0_ddsp: Optional[str], melgen: str, guide_asr: Optional[str], vocoder: str,
          name: str, trained_on: Optional[str], solver: str, steps: Optional[int], w_video: float, w_asr: float,
          asr_start: int, asr_end: int, start_step: Optional[int], beam_size: int, half: bool) -> None:
    """Assemble OUT from trained component model directories.

    Each component is copied into OUT/<component>/ after checking it holds the right kind of model
    and our signal contract; the pipeline is loaded once before OUT appears (atomically).
    """
    from l2s.pipeline.build import build_pipeline, directory_size

    given = {"vsr": vsr, "f0_ddsp": f0_ddsp, "melgen": melgen, "guide_asr": guide_asr, "vocoder": vocoder}
    sampler = SamplerConfig(solver=solver, steps=steps, w_video=w_video, w_asr=w_asr, asr_start=asr_start,
                            asr_end=asr_end, start_step=start_step)
    path = build_pipeline(out, {k: v for k, v in given.items() if v is not None}, name=name, trained_on=trained_on,
                          sampler=sampler, vsr_beam_size=beam_size, half=half)
    parts = ", ".join(k for k, v in given.items() if v is not None)
    storage = "float16" if half else "as trained"
    click.echo(f"built pipeline '{name}' in {Path(path)}: {parts}; {human_size(directory_size(path))} "
               f"(weights {storage})", err=True)
