"""``l2s bench``: real-time factor per stage, and the sampler against LipVoicer's schedule, as JSON."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Optional

import click

from l2s.cli._options import device_option
from l2s.errors import InputError


@click.command()
@click.option("--model", default=None, metavar="NAME|DIR|HUB_ID",
              help="Pipeline to benchmark (default: the bundled 'synthgrid-small').")
@click.option("--untrained", type=click.Choice(["tiny", "micro"]), default=None,
              help="Benchmark a pipeline of untrained components of this size instead (labelled so in the JSON).")
@device_option()
@click.option("--clips", type=click.IntRange(min=1), default=3, show_default=True, help="Generated clips to time.")
@click.option("--no-lipvoicer", is_flag=True, help="Skip the (slow) 400-step LipVoicer schedule comparison.")
@click.option("--out", "out", default=None, metavar="JSON", help="Write the report here (default: stdout).")
def bench(model: Optional[str], untrained: Optional[str], device: str, clips: int, no_lipvoicer: bool,
          out: Optional[str]) -> None:
    """Time every stage of a pipeline on generated clips; report real-time factors as JSON.

    RTF = processing seconds / audio seconds (lower is faster; 1 is real time).
    """
    from l2s.bench import run_bench
    from l2s.cli.synthesize import load_pipeline
    from l2s.io.atomic import atomic_write_text
    from l2s.pipeline import Lip2Speech, build_untrained_pipeline

    if model is not None and untrained is not None:
        raise InputError("--model and --untrained exclude each other")
    if out is not None and Path(out).is_dir():
        raise InputError(f"{out}: is a directory, expected a JSON file path")
    log = lambda line: click.echo(f"bench: {line}", err=True)  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        if untrained is not None:
            pipe = Lip2Speech.from_pretrained(build_untrained_pipeline(Path(tmp) / f"untrained-{untrained}",
                                                                       untrained), device=device)
        else:
            pipe = load_pipeline(model, device)
        report = run_bench(pipe, clips=clips, lipvoicer=not no_lipvoicer, log=log)
    text = json.dumps(report, indent=1) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        atomic_write_text(out, text)
        log(f"wrote {out}: rtf_total {report['rtf_total']}")
