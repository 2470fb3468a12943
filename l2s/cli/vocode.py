"""``l2s vocode``: copy-synthesis, the contract mel of a recording rendered by a vocoder."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

import click

from l2s.errors import InputError
from l2s.vocoder.registry import DEFAULT_PIPELINE, FALLBACK_VOCODER

_HELP_VOCODER = (
    "A registered name (griffinlim), an l2s vocoder directory, a pipeline (name or directory: its vocoder), "
    "an official Vocos directory (config.yaml + pytorch_model.bin; uses its own mel front end), a jik876 "
    "HiFi-GAN generator file with config.json beside it, or a hub repo id. "
    f"Default: the vocoder of the bundled {DEFAULT_PIPELINE} pipeline ({FALLBACK_VOCODER} in a build without it)."
)
_MANIFEST_SUFFIXES = (".csv", ".jsonl")


def _device(choice: str) -> str:
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: CUDA is not available here")
    return choice


def _jobs(source: str, out: str) -> Tuple[List[Tuple[Path, Path]], bool]:
    """``(input, output)`` pairs, and whether this is a set (folder or manifest) rather than one file."""
    src = Path(source)
    if src.is_dir() or (src.is_file() and src.suffix in _MANIFEST_SUFFIXES):
        from l2s.evaluation.inputs import load_set

        if Path(out).is_file():
            raise InputError(f"{out}: is a file; a folder or manifest input needs an output folder")
        utts = load_set(src, "IN")
        return [(u.wav, Path(out) / f"{uid}.wav") for uid, u in sorted(utts.items())], True
    if Path(out).is_dir():
        raise InputError(f"{out}: is a directory, expected an output .wav path")
    return [(src, Path(out))], False


@click.command()
@click.argument("source", metavar="IN", type=click.Path())
@click.option("-o", "--out", "out", required=True, type=click.Path(), metavar="OUT",
              help="Output .wav (16 kHz, 16-bit, written atomically); a folder when IN is a folder or manifest.")
@click.option("--vocoder", "vocoder_name", default=None, metavar="NAME", help=_HELP_VOCODER)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where the vocoder runs.")
def vocode(source: str, out: str, vocoder_name: Optional[str], device: str) -> None:
    """Resynthesise IN through a vocoder (copy-synthesis), for listening tests and vocoder checks.

    \b
    IN is an audio file (written to OUT.wav), or a folder of <id>.wav or a .csv/.jsonl
    manifest with id and wav columns (written to OUT/<id>.wav, ready for
    `l2s evaluate --ref IN --hyp OUT`).

    Each input is read as 16 kHz mono, peak-normalised, turned into the contract mel and
    rendered by the vocoder (long inputs in crossfaded chunks). The output keeps the
    level the vocoder gives (about the 1/1.1 peak of the mel's input), scaled down only
    if it would clip.
    """
    import torch

    from l2s.cli._common import progress
    from l2s.config import SAMPLE_RATE
    from l2s.io.audio import read_audio, write_wav
    from l2s.vocoder.base import check_contract_vocoder, copy_synthesis
    from l2s.vocoder.registry import default_vocoder, get_vocoder, takes_contract_mel

    jobs, is_set = _jobs(source, out)
    dev = _device(device)
    name = vocoder_name or default_vocoder()
    vocoder = get_vocoder(name, device=dev, allow_foreign=True)
    if takes_contract_mel(vocoder):
        check_contract_vocoder(vocoder, name)
    files = progress(jobs, desc="vocode", unit="file") if is_set else jobs
    for src, dst in files:
        wav = read_audio(src)
        if wav.size == 0:
            raise InputError(f"{src}: no audio samples")
        x = torch.from_numpy(wav).to(dev)[None]
        with torch.inference_mode():
            wrap = None if is_set else (lambda spans: progress(spans, desc="vocode", unit="chunk"))
            y = copy_synthesis(vocoder, x, wrap=wrap)
            # Turned down only where it would clip: a silent input must stay silent, not be blown up.
            y = (y / y.abs().max().clamp_min(1.0))[0]
        write_wav(dst, y.float().cpu().numpy(), SAMPLE_RATE)
