"""Options and output shared by ``l2s transcribe``, ``l2s align`` and ``l2s synthesize``: the transcript
formats (txt, json, srt, vtt, tsv, all) written through :mod:`l2s.align.subtitles`.

``--output-dir`` files follow the CLI's output rules: checked before the model loads (never an input,
a folder that can be written, :func:`check_outputs`) and written as one unit per video.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence, Tuple

import click

from l2s.errors import InputError, OutputError

FORMAT_CHOICES = ("txt", "json", "srt", "vtt", "tsv", "all")


def timeline_options(default_format: str, formats: Sequence[str] = FORMAT_CHOICES,
                     output_dir: bool = True) -> Callable:
    """``--output-format``, ``--output-dir`` (when ``output_dir``), ``--word-timestamps``, ``--language``,
    ``--aligner``."""
    def decorate(f: Callable) -> Callable:
        f = click.option("--aligner", "aligner_dir", default=None, metavar="DIR",
                         help="Aligner model directory (timing head + duration model; default: the pipeline's "
                              "'aligner' component, else the lip reader's CTC head and equal phoneme shares).")(f)
        f = click.option("--language", default="en-us", show_default=True,
                         help="espeak-ng language of the phonemes (en-us, en-gb, fr-fr, de...).")(f)
        f = click.option("--word-timestamps", is_flag=True,
                         help="srt/vtt: one cue per word (its segment shown, the word underlined); "
                              "tsv: one row per word.")(f)
        if output_dir:
            f = click.option("--output-dir", default=None, metavar="DIR", type=click.Path(file_okay=False),
                             help="Write <name>.<format> files here (default: print one format to stdout).")(f)
        f = click.option("--output-format", default=default_format, show_default=True,
                         type=click.Choice(list(formats)), help="Transcript format ('all': every one).")(f)
        return f
    return decorate


def resolve_formats(output_format: str, output_dir: Optional[str]) -> Tuple[str, ...]:
    """The formats to write; ``all`` needs ``--output-dir``."""
    from l2s.align.subtitles import expand_formats

    if output_format == "all" and output_dir is None:
        raise InputError("--output-format all writes several files: give --output-dir")
    return expand_formats(output_format)


def unique_stems(paths: Sequence[Path]) -> None:
    """Refuse inputs whose outputs would overwrite each other (same file name stem)."""
    seen = {}
    for p in paths:
        if p.stem in seen:
            raise InputError(f"{seen[p.stem]} and {p} would write the same outputs ({p.stem}.*): rename one")
        seen[p.stem] = p


def check_outputs(output_dir: Optional[str], stems: Sequence[str], formats: Sequence[str],
                  inputs: Iterable[Optional[Path]]) -> None:
    """Before the work: no ``--output-dir`` file may be an input (the same path, or a link to it), and the
    folder must be writable (a temporary file is created and removed there).

    Args:
        output_dir: ``--output-dir`` (None: printing to stdout, nothing to check).
        stems: the file name stem of each video's outputs.
        formats: the formats written.
        inputs: the files the command reads (videos, landmark sidecar, language model...).

    Raises:
        OutputError: an output that is an input, or a folder that cannot be written (a file in the way,
            read-only, no permission), naming the output.
    """
    from l2s.align.subtitles import output_paths
    from l2s.io.files import check_writable, same_file

    if output_dir is None:
        return
    read = [p for p in inputs if p is not None]
    targets = [t for stem in stems for t in output_paths(Path(output_dir), stem, formats)]
    for target in targets:
        for given in read:
            if same_file(target, given):
                raise OutputError(f"{target}: is the input {given}; l2s never writes over its inputs, "
                                  "choose another --output-dir")
    check_writable(output_dir, targets[0] if len(targets) == 1 else None)


def emit(formats: Sequence[str], alignment, text: str, word_timestamps: bool, output_dir: Optional[str],
         stem: str) -> None:
    """Write the transcript files, or print the single format to stdout."""
    from l2s.align.subtitles import render, write_outputs

    if output_dir is None:
        click.echo(render(formats[0], alignment, text, word_timestamps), nl=False)
        return
    write_outputs(Path(output_dir), stem, formats, alignment, text, word_timestamps)
