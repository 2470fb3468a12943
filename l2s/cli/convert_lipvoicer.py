"""``l2s convert lipvoicer``: LipVoicer's released checkpoints -> an l2s pipeline directory."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from l2s.cli._common import existing_file


def _opt_file(path: Optional[str], what: str) -> Optional[Path]:
    return None if path is None else existing_file(path, what)


@click.command()
@click.option("--melgen", required=True, metavar="CKPT",
              help="MelGen checkpoint: exp/LRS3/wnet_h512_d12_T400_betaT0.02/checkpoint/1000000.pkl (or LRS2).")
@click.option("--asr", required=True, metavar="CKPT",
              help="ASR guide checkpoint: ASR/callbacks/LRS23/AO/EffConfCTC/checkpoints_ft_lrs3.ckpt (or lrs2).")
@click.option("--vocoder", required=True, metavar="CKPT", help="HiFi-GAN generator: hifi_gan/g_02400000.")
@click.option("--vocoder-config", metavar="JSON",
              help="jik876 config.json of the vocoder [default: config.json beside it, else LipVoicer's 16 kHz V1].")
@click.option("--asr-spm", metavar="MODEL",
              help="The guide's SentencePiece BPE-256 model (ASR/media/tokenizerbpe256.model), copied in.")
@click.option("--vsr", metavar="CKPT", help="Auto-AVSR VSR checkpoint, to read the guidance text off the lips.")
@click.option("--spm", metavar="MODEL", help="Auto-AVSR SentencePiece model (spm/unigram/unigram5000.model).")
@click.option("--units", metavar="TXT", help="Auto-AVSR units file (spm/unigram/unigram5000_units.txt).")
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
@click.argument("out", metavar="OUT", type=click.Path(file_okay=False))
def lipvoicer(melgen: str, asr: str, vocoder: str, vocoder_config: Optional[str], asr_spm: Optional[str],
              vsr: Optional[str], spm: Optional[str], units: Optional[str], force: bool, out: str) -> None:
    """Convert LipVoicer's MelGen, ASR guide and HiFi-GAN (and optionally Auto-AVSR) into the pipeline OUT.

    Every checkpoint key is accounted for: alias keys are checked to hold the same tensor, known
    unused keys are dropped by name, unexpected keys are listed, and missing weights are an error
    (LipVoicer itself loads the ASR guide non-strictly). The summary goes to stderr and the full
    record to OUT/conversion_report.json.
    """
    from l2s.pipeline.lipvoicer import LipVoicerSources, write_pipeline

    src = LipVoicerSources(
        melgen=existing_file(melgen, "checkpoint"), asr=existing_file(asr, "checkpoint"),
        vocoder=existing_file(vocoder, "checkpoint"), vocoder_config=_opt_file(vocoder_config, "config"),
        asr_spm=_opt_file(asr_spm, "SentencePiece model"), vsr=_opt_file(vsr, "checkpoint"),
        vsr_spm=_opt_file(spm, "SentencePiece model"), vsr_units=_opt_file(units, "units"))
    write_pipeline(src, out, force=force, log=lambda line: click.echo(line, err=True))
    click.echo(str(out))
