"""``l2s demo``: voice a fresh synthetic clip with the bundled default model."""

import click

from l2s.errors import ModelError
from l2s.hub import bundled_dir

DEFAULT_MODEL = "synthgrid-small"


@click.command()
@click.option("-o", "--out", default="demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the demo's input, output and report.")
def demo(out: str) -> None:
    """Generate a SynthGRID clip of an unseen speaker and voice it with the default model."""
    if bundled_dir(DEFAULT_MODEL) is None:
        raise ModelError(
            f"the bundled default model '{DEFAULT_MODEL}' is not in this build yet: "
            "the demo needs its trained VSR, F0/DDSP, mel generator and vocoder (see README, 'Status')"
        )
    raise ModelError("the end-to-end pipeline is not in this build yet (see README, 'Status')")
