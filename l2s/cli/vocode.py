"""``l2s vocode``: copy-synthesis, the contract mel of a recording rendered by a vocoder."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Tuple

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

if TYPE_CHECKING:
    import numpy as np


def _jobs(source: str, out: str, from_mel: bool = False) -> Tuple[List[Tuple[Path, Path]], bool]:
    """``(input, output)`` pairs, and whether this is a set (folder or manifest) rather than one file; with
    ``from_mel`` the inputs are mel files (a manifest's ``mel`` column, or one ``.npy``)."""
    from l2s.cli._common import STDIO
    from l2s.io.audio import AUDIO_FORMATS, audio_format

    src = Path(source)
    if source != STDIO and (src.is_dir() or (src.is_file() and src.suffix in _MANIFEST_SUFFIXES)):
        if out == STDIO:
            raise InputError("-o -: a folder or manifest input needs an output folder, not stdout")
        if Path(out).is_file():
            raise InputError(f"{out}: is a file; a folder or manifest input needs an output folder")
        if from_mel:
            return _mel_jobs(src, Path(out)), True
        from l2s.evaluation.inputs import load_set

        utts = load_set(src, "IN")
        return [(u.wav, Path(out) / f"{uid}.wav") for uid, u in sorted(utts.items())], True
    if from_mel and (source == STDIO or src.suffix != ".npy"):
        raise InputError(f"{source}: --from-mel takes a .npy mel or a manifest with a 'mel' column")
    if out != STDIO:
        if Path(out).is_dir():
            raise InputError(f"{out}: is a directory, expected an output audio file ({', '.join(AUDIO_FORMATS)})")
        audio_format(out)  # an unsupported type is refused before the vocoder loads
    return [(src, Path(out))], False


def _mel_jobs(manifest: Path, out: Path) -> List[Tuple[Path, Path]]:
    """A manifest's ``mel`` files and their outputs ``OUT/<id>.wav``."""
    from l2s.data.manifest import read_manifest

    if manifest.is_dir():
        raise InputError(f"{manifest}: --from-mel takes a manifest with a 'mel' column, not a folder")
    utts = read_manifest(manifest)
    missing = [u.id for u in utts if u.mel is None]
    if missing:
        raise InputError(f"{manifest}: {len(missing)} entries without a 'mel' (first: {missing[0]!r})")
    if not utts:
        raise InputError(f"{manifest}: no utterances found")
    return [(u.mel, out / f"{u.id}.wav") for u in sorted(utts, key=lambda u: u.id)]


def _read_mel(path: Path) -> "np.ndarray":
    """A ``(T, 80)`` model-space mel file as ``(80, T)`` float32."""
    import numpy as np

    from l2s.config import N_MELS

    try:
        mel = np.load(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable .npy mel ({exc})") from None
    if mel.ndim != 2 or mel.shape[1] != N_MELS or mel.shape[0] < 1:
        raise InputError(f"{path}: expected a (frames, {N_MELS}) mel, got shape {mel.shape}")
    return np.ascontiguousarray(mel.T, dtype=np.float32)


@click.command()
@click.argument("source", metavar="IN", type=click.Path())
@click.option("-o", "--out", "out", required=True, type=click.Path(), metavar="OUT",
              help="Output audio file (16 kHz, written atomically; .wav, .flac, .ogg or .mp3 by its suffix; "
                   "'-': a wav to stdout); a folder when IN is a folder or manifest.")
@click.option("--vocoder", "vocoder_name", default=None, metavar="NAME", help=_HELP_VOCODER)
@click.option("--from-mel", is_flag=True,
              help="Render mel files instead of recordings: IN is a (frames, 80) model-space .npy (as l2s prepare "
                   "and python -m l2s.train.generated_mels write) or a manifest whose 'mel' column names them.")
@device_option("Where the vocoder runs")
def vocode(source: str, out: str, vocoder_name: Optional[str], device: str, from_mel: bool) -> None:
    """Resynthesise IN through a vocoder (copy-synthesis), for listening tests and vocoder checks.

    \b
    IN is an audio file (written to OUT), '-' for audio on stdin, or a folder of <id>.wav or
    a .csv/.jsonl manifest with id and wav columns (written to OUT/<id>.wav, ready for
    `l2s evaluate --ref IN --hyp OUT`).

    Each input is read as 16 kHz mono, peak-normalised, turned into the contract mel and
    rendered by the vocoder (long inputs in crossfaded chunks). The output keeps the
    level the vocoder gives (about the 1/1.1 peak of the mel's input), scaled down only
    if it would clip. With --from-mel the mels are rendered as they are (a generator's
    output, say, to hear a vocoder on it).
    """
    import torch

    from l2s.cli._common import STDIO, check_stdout_pipe, input_path, progress, write_stdout
    from l2s.config import SAMPLE_RATE
    from l2s.device import resolve_device
    from l2s.io.audio import encode_audio, read_audio, write_audio
    from l2s.io.files import check_writable, same_file
    from l2s.vocoder.base import MEL_NORM, check_contract_vocoder, copy_synthesis, render
    from l2s.vocoder.registry import default_vocoder, get_vocoder, takes_contract_mel

    jobs, is_set = _jobs(source, out, from_mel)
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
    elif from_mel:
        raise InputError(f"{name}: this vocoder has its own mel front end; --from-mel needs a contract-mel vocoder")
    files = progress(jobs, desc="vocode", unit="file") if is_set else jobs
    for src, dst in files:
        start = time.perf_counter()
        wrap = None if is_set else (lambda spans: progress(spans, desc="vocode", unit="chunk"))
        if from_mel:
            with torch.inference_mode():
                y = render(vocoder, torch.from_numpy(_read_mel(src)).to(dev)[None], MEL_NORM, wrap=wrap)
        else:
            with input_path(str(src), "recording") as path:
                wav = read_audio(path)
            if wav.size == 0:
                raise InputError(f"{src}: no audio samples")
            with torch.inference_mode():
                y = copy_synthesis(vocoder, torch.from_numpy(wav).to(dev)[None], wrap=wrap)
        # Turned down only where it would clip: a silent input must stay silent, not be blown up.
        y = (y / y.abs().max().clamp_min(1.0))[0]
        samples = y.float().cpu().numpy()
        log.info("%s: %.2f s of audio in %.2f s", src, samples.size / SAMPLE_RATE, time.perf_counter() - start)
        if out == STDIO:
            write_stdout(encode_audio(samples, SAMPLE_RATE))
        else:
            write_audio(dst, samples, SAMPLE_RATE)
