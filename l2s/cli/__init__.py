"""The ``l2s`` command line (click).

Each command lives in its own module and is imported only when it runs;
register a new one in :data:`COMMANDS`.
"""

from __future__ import annotations

import click

from l2s import __version__
from l2s.cli._group import L2SGroup, augment
from l2s.cli._options import debug_callback

COMMANDS = {
    "info": "l2s.cli.info:info",
    "roi": "l2s.cli.roi:roi",
    "demo": "l2s.cli.demo:demo",
    "corpus": "l2s.cli.corpus:corpus",
    "convert": "l2s.cli.convert:convert",
    "train": "l2s.cli.train:train",
    "prepare": "l2s.cli.prepare:prepare",
    "transcribe": "l2s.cli.transcribe:transcribe",
    "align": "l2s.cli.align:align",
    "lm": "l2s.cli.lm:lm",
    "score-reader": "l2s.cli.score_reader:score_reader",
    "evaluate": "l2s.cli.evaluate:evaluate",
    "sync-expert": "l2s.cli.sync_expert:sync_expert",
    "vocode": "l2s.cli.vocode:vocode",
    "synthesize": "l2s.cli.synthesize:synthesize",
    "bench": "l2s.cli.bench:bench",
    "pipeline": "l2s.cli.pipeline:pipeline",
}


@click.group(cls=L2SGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="l2s")
@click.option("--debug", is_flag=True, expose_value=False, callback=debug_callback,
              help="Show tracebacks instead of one-line errors (and l2s's debug log).")
def main() -> None:
    """l2s: voice a silent talking-face video (lip-to-speech)."""


augment(main)  # -v/--verbose and -q/--quiet, as on every command


__all__ = ["main"]
