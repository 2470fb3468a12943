"""``l2s vocode``: copy-synthesis, the contract mel of a recording rendered by a vocoder."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import List, Optional, Tuple

import click

from l2s.cli._options import device_option
from l2s.errors import InputError
from l2s.defaults import DEFAULT_PIPELINE, FALLBACK_VOCODER

_HELP_VOCODER = (
    "A registered name (griffinlim), an l2s vocoder directory, a pipeline (name or directory: its vocoder), "
    "an official Vocos directory (config.yaml + pytorch_model.bin; uses its own mel front end), a jik876 "
    "HiFi-GAN generator file with config.json beside it, or a hub repo id. "
    f"Default: the vocoder of the bundled {DEFAULT_PIPELINE} pipeline ({FALLBACK_VOCODER} in a build without it)."
)
_MANIFEST_SUFFIXES = (".csv", ".jsonl")
log = logging.getLogger("l2s.cli.vocode")


def _jobs(source: str, out: str) -> Tuple[List[Tuple[Path, Path]], bool]:
    """``(input, output)`` pairs, and whether this is a set (folder or manifest) rather than one file."""
    from l2s.cli._common import STDIO
    from l2s.io.audio import AUDIO_FORMATS, audio_format

    src = Path(source)
    if source != STDIO and (src.is_dir() or (src.is_file() and src.suffix in _MANIFEST_SUFFIXES)):
        from l2s.evaluation.inputs import load_set

        if out == STDIO:
            raise InputError("-o -: a folder or manifest input needs an output folder, not stdout")
        if Path(out).is_file():
            raise InputError(f"{out}: is a file; a folder or manifest input needs an output folder")
        utts = load_set(src, "IN")
        return [(u.wav, Path(out) / f"{uid}.wav") for uid, u in sorted(utts.items())], True
    if out != STDIO:
        if Path(out).is_dir():
            raise InputError(f"{out}: is a directory, expected an output audio file ({', '.join(AUDIO_FORMATS)})")
        audio_format(out)  # an unsupported type is refused before the vocoder loads
    return [(src, Path(out))], False


@click.command()
@click.argument("source", metavar="IN", type=click.Path())
@click.option("-o", "--out", "out", required=True, type=click.Path(), metavar="OUT",
              help="Output audio file (16 kHz, written atomically; .wav, .flac, .ogg or .mp3 by its suffix; "
                   "'-': a wav to stdout); a folder when IN is a folder or manifest.")
@click.option("--vocoder", "vocoder_name", default=None, metavar="NAME", help=_HELP_VOCODER)
@device_option("Where the vocoder runs")
def vocode(source: str, out: str, vocoder_name: Optional[str], device: str) -> None:
    """Resynthesise IN through a vocoder (copy-synthesis), for listening tests and vocoder checks.

    \b
    IN is an audio file (written to OUT), '-' for audio on stdin, or a folder of <id>.wav or
    a .csv/.jsonl manifest with id and wav columns (written to OUT/<id>.wav, ready for
    `l2s evaluate --ref IN --hyp OUT`).

    Each input is read as 16 kHz mono, peak-normalised, turned into the contract mel and
    rendered by the vocoder (long inputs in crossfaded chunks). The output keeps the
    level the vocoder gives (about the 1/1.1 peak of the mel's input), scaled down only
    if it would clip.
    """
    import torch

    from l2s.cli._common import STDIO, check_stdout_pipe, input_path, progress, write_stdout
    from l2s.config import SAMPLE_RATE
    from l2s.device import resolve_device
    from l2s.io.audio import encode_audio, read_audio, write_audio
    from l2s.io.files import check_writable, same_file
    from l2s.vocoder.base import check_contract_vocoder, copy_synthesis
    from l2s.vocoder.registry import default_vocoder, get_vocoder, takes_contract_mel

    jobs, is_set = _jobs(source, out)
    for src, dst in jobs:
        if out != STDIO and source != STDIO and same_file(src, dst):
            raise InputError(f"{dst}: is the input {src}; l2s never writes over its inputs")
    if out == STDIO:
        check_stdout_pipe()
    else:
        for folder in sorted({dst.parent for _, dst in jobs}):
            check_writable(folder, None if is_set else jobs[0][1])
    dev = str(resolve_device(device))
    name = vocoder_name or default_vocoder()
    start = time.perf_counter()
    vocoder = get_vocoder(name, device=dev, allow_foreign=True)
    log.info("vocoder: %s on %s (loaded in %.2f s)", name, dev, time.perf_counter() - start)
    if takes_contract_mel(vocoder):
        check_contract_vocoder(vocoder, name)
    files = progress(jobs, desc="vocode", unit="file") if is_set else jobs
    for src, dst in files:
        with input_path(str(src), "recording") as path:
            wav = read_audio(path)
        if wav.size == 0:
            raise InputError(f"{src}: no audio samples")
        start = time.perf_counter()
        x = torch.from_numpy(wav).to(dev)[None]
        with torch.inference_mode():
            wrap = None if is_set else (lambda spans: progress(spans, desc="vocode", unit="chunk"))
            y = copy_synthesis(vocoder, x, wrap=wrap)
            # Turned down only where it would clip: a silent input must stay silent, not be blown up.
            y = (y / y.abs().max().clamp_min(1.0))[0]
        samples = y.float().cpu().numpy()
        log.info("%s: %.2f s of audio in %.2f s", src, wav.size / SAMPLE_RATE, time.perf_counter() - start)
        if out == STDIO:
            write_stdout(encode_audio(samples, SAMPLE_RATE))
        else:
            write_audio(dst, samples, SAMPLE_RATE)
