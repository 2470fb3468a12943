"""``l2s convert``: foreign checkpoints into l2s checkpoint directories."""

import click

from l2s.cli._group import LazyGroup

CONVERTERS = {
    "auto-avsr": "l2s.cli.convert_auto_avsr:auto_avsr",
    "lipvoicer": "l2s.cli.convert_lipvoicer:lipvoicer",
}


@click.group(cls=LazyGroup, lazy_commands=CONVERTERS)
def convert() -> None:
    """Convert a foreign checkpoint (Auto-AVSR, LipVoicer...) to an l2s model directory."""
