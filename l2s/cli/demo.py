"""``l2s demo``: voice a fresh synthetic clip of a held-out speaker and score it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from l2s.cli._options import device_option
from l2s.cli.synthesize import DEFAULT_MODEL
from l2s.errors import ModelError
from l2s.defaults import DEFAULT_ASR, NO_ASR


@click.command()
@click.option("-o", "--out", default="demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the demo's input, output and report (replaced if it holds an earlier demo).")
@click.option("--model", default=None, metavar="NAME|DIR|HUB_ID",
              help=f"Pipeline to demonstrate (default: the bundled '{DEFAULT_MODEL}').")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Picks the clip and seeds its rendering and the generator.")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="The generator's sampler steps (default: the model's).")
@click.option("--solver", default=None, metavar="NAME",
              help="The generator's solver (default: the model's); a name it does not know is refused with the list "
                   "of those it does.")
@click.option("--asr", default=DEFAULT_ASR, show_default=True, metavar="whisper:NAME|none",
              help=f"ASR that transcribes the voiced audio for its WER ('{NO_ASR}' skips it).")
@device_option()
def demo(out: str, model: Optional[str], seed: int, steps: Optional[int], solver: Optional[str], asr: str,
         device: str) -> None:
    """Generate a SynthGRID clip of a held-out speaker, voice its silent video and score the result.

    OUT gets input_silent.mp4, voiced.mp4, voiced.wav, ground_truth.wav, report.json and report.txt
    (true and lip-read text, WER of the lip-read text and of a Whisper transcript of the voiced
    audio, STOI against the ground truth, model and timings).
    """
    from l2s.cli.synthesize import load_pipeline
    from l2s.extras import require_extra
    from l2s.hub import bundled_dir
    from l2s.pipeline.demo import DEMO_STEPS, DemoOptions, run_demo

    require_extra("demo", "l2s demo")  # the corpus renders the clip, the eval metrics score it
    if model is None and bundled_dir(DEFAULT_MODEL) is None:  # before any progress line: the error stays alone
        raise ModelError(f"the bundled default model '{DEFAULT_MODEL}' is not in this build: pass --model DIR "
                         "(a pipeline directory, e.g. one made by `l2s pipeline build`)")

    from l2s.device import resolve_device

    device = str(resolve_device(device))

    def on_step(index: int, label: str) -> None:
        click.echo(f"[{index + 1}/{len(DEMO_STEPS)}] {label}", err=True)

    options = DemoOptions(seed=seed, steps=steps, solver=solver, asr=asr, device=device)
    report = run_demo(Path(out), lambda: load_pipeline(model, device), options, on_step)
    click.echo(report.to_text(), nl=False)
    click.echo(f"demo files in {Path(out)}/ ({', '.join(report.files)})", err=True)
