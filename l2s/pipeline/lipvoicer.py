"""Write an l2s pipeline directory from LipVoicer's released checkpoints.

Layout (``pipeline.yaml`` names the components; each is an l2s model directory)::

    OUT/pipeline.yaml            components, LipVoicer's sampler settings, the conversion summary
    OUT/conversion_report.json   every key's fate (converted / alias / ignored / unexpected / missing)
    OUT/generator/               kind generator, arch lipvoicer (MelGen)
    OUT/guide/                   kind guide, arch lipvoicer (+ tokenizer.model with --asr-spm)
    OUT/vocoder/                 kind vocoder, arch hifigan (weight norm folded)
    OUT/vsr/                     kind vsr, arch auto-avsr, only when given

The directory is assembled beside ``OUT`` and renamed into place, so a failure leaves nothing behind.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, List, Optional, Union

from l2s.errors import InputError
from l2s.hub import save_model_dir
from l2s.io.atomic import atomic_dir
from l2s.models.generator.lipvoicer import ARCHITECTURE as GENERATOR
from l2s.models.generator.lipvoicer import LIPVOICER_GUIDANCE, LIPVOICER_SETTINGS
from l2s.models.guide.lipvoicer import ARCHITECTURE as GUIDE
from l2s.models.guide.lipvoicer import TOKENIZER_FILE
from l2s.models.lipvoicer.convert import ConversionReport, convert_asr, convert_melgen, read_checkpoint
from l2s.pipeline.spec import PipelineSpec, write_spec
from l2s.structs import to_dict

PathLike = Union[str, Path]
REPORT_FILE = "conversion_report.json"
GUIDE_VOCAB = 256


@dataclass(frozen=True)
class LipVoicerSources:
    """The files a user downloads from LipVoicer (and, optionally, Auto-AVSR)."""

    melgen: Path
    asr: Path
    vocoder: Path
    vocoder_config: Optional[Path] = None
    asr_spm: Optional[Path] = None
    vsr: Optional[Path] = None
    vsr_spm: Optional[Path] = None
    vsr_units: Optional[Path] = None


def _check_tokenizer(path: Path) -> None:
    try:
        import sentencepiece as spm

        size = spm.SentencePieceProcessor(model_file=str(path)).get_piece_size()
    except Exception as exc:  # sentencepiece raises RuntimeError/OSError for a bad file
        raise InputError(f"{path}: not a SentencePiece model ({type(exc).__name__})") from None
    if size != GUIDE_VOCAB:
        raise InputError(f"{path}: {size} pieces, the ASR guide needs its {GUIDE_VOCAB}-piece BPE model")


def _write_vocoder(src: LipVoicerSources, out: Path) -> str:
    from l2s.vocoder.hifigan import HIFIGAN_V1, load_jik876
    from l2s.vocoder.registry import save_vocoder

    config = src.vocoder_config
    if config is None:
        beside = src.vocoder.parent / "config.json"
        config = beside if beside.is_file() else HIFIGAN_V1
    save_vocoder(load_jik876(src.vocoder, config, inference=True), out)
    return str(config) if isinstance(config, Path) else "LipVoicer's hifi_gan/config.json (built in)"


def _write_vsr(src: LipVoicerSources, out: Path) -> None:
    from l2s.models.vsr.convert import convert_auto_avsr

    convert_auto_avsr(src.vsr, out, spm=src.vsr_spm, units=src.vsr_units)


def write_pipeline(src: LipVoicerSources, out: PathLike, force: bool = False,
                   log: Callable[[str], None] = lambda line: None) -> List[ConversionReport]:
    """Convert every checkpoint in ``src`` and write the pipeline directory ``out``.

    Args:
        src: checkpoint paths.
        out: destination; must not exist or be empty unless ``force``.
        force: replace an existing ``out``.
        log: receives one line per step and every report line.

    Returns:
        The MelGen and ASR conversion reports.

    Raises:
        InputError: ``out`` exists (without ``force``) or a tokenizer is unusable.
        ModelError: a checkpoint is unreadable or does not fit (missing keys, wrong shapes).
    """
    out = Path(out)
    if out.exists() and not force and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out}: exists and is not empty (use --force to replace it)")
    if src.asr_spm is not None:
        _check_tokenizer(src.asr_spm)
    if src.vsr is None and (src.vsr_spm or src.vsr_units):
        raise InputError("--spm/--units belong to --vsr, which was not given")
    with atomic_dir(out) as tmp:
        reports = []
        theirs, notes = read_checkpoint(src.melgen, "model_state_dict")
        cfg, state, report = convert_melgen(theirs)
        save_model_dir(tmp / GENERATOR.family, GENERATOR.family, GENERATOR.name, cfg, state)
        reports.append(report)
        theirs, notes = read_checkpoint(src.asr, "model_state_dict")
        cfg, state, report = convert_asr(theirs, notes=notes)
        extra = {TOKENIZER_FILE: Path(src.asr_spm)} if src.asr_spm is not None else None
        save_model_dir(tmp / GUIDE.family, GUIDE.family, GUIDE.name, cfg, state, extra_files=extra)
        reports.append(report)
        for r in reports:
            for line in r.lines():
                log(line)
        vocoder_config = _write_vocoder(src, tmp / "vocoder")
        log(f"vocoder: HiFi-GAN converted (config: {vocoder_config}), weight norm folded")
        components = {"generator": "generator", "guide": "guide", "vocoder": "vocoder"}
        if src.vsr is not None:
            _write_vsr(src, tmp / "vsr")
            components["vsr"] = "vsr"
            log("vsr: Auto-AVSR converted")
        provenance = {
            "sources": {k: Path(v).name for k, v in asdict(src).items() if v is not None},
            "conversion": {r.model: {"converted": r.converted, "aliases": len(r.aliases), "ignored": len(r.ignored),
                                     "unexpected": list(r.unexpected), "missing": list(r.missing)} for r in reports},
        }
        write_spec(tmp, PipelineSpec(
            name="lipvoicer", components=components, generator=to_dict(LIPVOICER_SETTINGS),
            guidance=LIPVOICER_GUIDANCE, guide_tokenizer=f"guide/{TOKENIZER_FILE}" if src.asr_spm else None,
            provenance=provenance))
        (tmp / REPORT_FILE).write_text(json.dumps([r.to_dict() for r in reports], indent=1))
    return reports
