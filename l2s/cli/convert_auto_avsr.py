"""``l2s convert auto-avsr``: an Auto-AVSR VSR checkpoint into an l2s model directory."""

from typing import Optional

import click

from l2s.cli._common import existing_file


@click.command("auto-avsr")
@click.argument("checkpoint", type=click.Path(dir_okay=True))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--spm", "spm", type=click.Path(), default=None,
              help="Auto-AVSR's SentencePiece model (spm/unigram/unigram5000.model).")
@click.option("--units", type=click.Path(), default=None,
              help="Auto-AVSR's units file (spm/unigram/unigram5000_units.txt); needed with --spm.")
def auto_avsr(checkpoint: str, out: str, spm: Optional[str], units: Optional[str]) -> None:
    """Convert CHECKPOINT (an Auto-AVSR vsr_*.pth, Lightning .ckpt or .safetensors) into the model directory OUT.

    Without --spm/--units the model reads token ids only; with them it transcribes text.
    """
    from l2s.models.vsr.convert import convert_auto_avsr

    ckpt = existing_file(checkpoint, "checkpoint")
    spm_path = existing_file(spm, "SentencePiece model") if spm is not None else None
    units_path = existing_file(units, "units") if units is not None else None
    path = convert_auto_avsr(ckpt, out, spm_path, units_path)
    click.echo(f"wrote {path}")
