"""Pipelines of untrained (randomly initialised) components, for tests and speed benchmarks.

They exercise every stage with the real code paths and tensor sizes of a small model, and say
``weights: untrained`` in ``pipeline.yaml``; their audio is noise. No trained model exists yet.

Presets:

* ``tiny``: ``VSR_TINY``, ``COARSE_PRIOR_TINY``, ``DENOISER_TINY``, ``GUIDE_ASR_TINY``, ``HIFIGAN_TINY``:
  the sizes of the CPU-trainable default pipeline.
* ``micro``: narrower still, for tests that push minutes of input through the pipeline.

``arch="lipvoicer"`` swaps the denoiser and guide for small LipVoicer-architecture ones (MelGen with
its own lip and face encoders, the Efficient Conformer guide), to exercise that variant.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Union

import torch

from l2s.config import COARSE_PRIOR_TINY, VSR_TINY, CoarsePriorConfig, DDSPConfig, F0ModelConfig
from l2s.diffusion.sampler import SamplerConfig
from l2s.errors import InputError
from l2s.io.atomic import atomic_dir
from l2s.pipeline.spec import CHAR_TOKENIZER, ChunkSpec, PipelineSpec, write_spec

PRESETS = ("tiny", "micro")
ARCHS = ("l2s", "lipvoicer")

#: The sampler of the untrained pipelines: shallow diffusion from the DDSP prior, 10 DPM-Solver++ steps.
UNTRAINED_SAMPLER = SamplerConfig(solver="dpmsolver++", steps=10, w_video=2.0, w_asr=1.5, asr_start=270,
                                  start_step=300)


def _vsr(preset: str):
    from l2s.models.vsr import build_vsr
    from l2s.text.tokenizer import CharTokenizer

    if preset == "tiny":
        return build_vsr(VSR_TINY, CharTokenizer())
    cfg = replace(VSR_TINY, frontend_widths=(8, 8, 16, 32), d_model=32, heads=2, encoder_ffn=64, encoder_layers=1,
                  decoder_ffn=64, decoder_layers=1, conv_kernel=7)
    return build_vsr(cfg, CharTokenizer())


def _prior(preset: str, feature_dim: int):
    from l2s.models.ddsp import CoarsePrior

    if preset == "tiny":
        return CoarsePrior(COARSE_PRIOR_TINY)
    f0 = F0ModelConfig(feature_dim=feature_dim, hidden_dim=16, num_layers=1, rnn_layers=0)
    ddsp = DDSPConfig(feature_dim=feature_dim, hidden_dim=16, num_layers=1, n_harmonics=16, n_noise_bands=17)
    return CoarsePrior(CoarsePriorConfig(f0=f0, ddsp=ddsp))


def _denoiser(preset: str, feature_dim: int):
    from l2s.config import DENOISER_TINY
    from l2s.models.denoiser import Denoiser

    if preset == "tiny":
        return Denoiser(replace(DENOISER_TINY, feature_dim=feature_dim))
    return Denoiser(replace(DENOISER_TINY, feature_dim=feature_dim, channels=16, layers=2, cond_channels=16,
                            step_dim=16, step_hidden=32))


def _l2s_guide(preset: str):
    from l2s.config import GUIDE_ASR_TINY
    from l2s.models.asr_guide import GuideASR

    if preset == "tiny":
        return GuideASR(GUIDE_ASR_TINY)
    return GuideASR(replace(GUIDE_ASR_TINY, d_model=16, heads=2, ffn=32, layers=1, conv_kernel=7, step_dim=16))


def _melgen(preset: str):
    from l2s.models.lipvoicer.melgen import MelGen, MelGenConfig

    width = 32 if preset == "tiny" else 16
    cfg = MelGenConfig(tcn_channels=(width, width), face_widths=(8, 8, 16, 16), face_dim=8, res_channels=width,
                       skip_channels=width, num_layers=4 if preset == "tiny" else 2, step_embed_in=16,
                       step_embed_mid=32, step_embed_out=32)
    model = MelGen(cfg)
    # LipVoicer's null inputs are fixed Gaussian draws, not zeros
    model.null_roi.normal_()
    model.null_face.normal_()
    return model


def _guide(preset: str, vocab_size: int):
    from l2s.models.lipvoicer.asr import ASRGuide, ASRGuideConfig

    dims = (16, 24, 32) if preset == "tiny" else (8, 8, 8)
    return ASRGuide(ASRGuideConfig(vocab_size=vocab_size, stem_channels=dims[0], dims=dims, num_blocks=(1, 1, 1),
                                   num_heads=2, kernel_size=7, patch_size=3, ff_ratio=2, step_embed_in=16,
                                   step_embed_mid=32, step_embed_out=32))


def _aligner(vsr):
    from l2s.align.checkpoint import AlignerConfig, AlignerModel
    from l2s.align.durations import DurationConfig
    from l2s.align.timing import TimingConfig
    from l2s.text.phonemes import DEFAULT_INVENTORY

    config = AlignerConfig(timing=TimingConfig(vocab_size=vsr.config.vocab_size, feature_dim=vsr.feature_dim,
                                               hidden=16, kernel=3, layers=1),
                           durations=DurationConfig(num_phonemes=len(DEFAULT_INVENTORY), feature_dim=vsr.feature_dim,
                                                    embed_dim=8, feature_proj=4, bins=4, hidden=16))
    return AlignerModel(config, DEFAULT_INVENTORY)


def _vocoder(preset: str):
    from l2s.vocoder.hifigan import HIFIGAN_TINY, HiFiGAN

    if preset == "tiny":
        return HiFiGAN(HIFIGAN_TINY)
    return HiFiGAN(replace(HIFIGAN_TINY, upsample_initial_channel=16, resblock_kernel_sizes=(3,),
                           resblock_dilation_sizes=((1,),)))


def build_untrained_pipeline(out_dir: Union[str, Path], preset: str = "tiny", seed: int = 0,
                             chunking: ChunkSpec = ChunkSpec(), arch: str = "l2s") -> Path:
    """Write a complete pipeline directory of randomly initialised components.

    Args:
        out_dir: destination directory (replaced if it exists); assembled beside it and renamed.
        preset: ``"tiny"`` or ``"micro"``.
        arch: ``"l2s"`` (our denoiser and guide) or ``"lipvoicer"`` (LipVoicer's MelGen and guide).
        seed: seed of the random weights.
        chunking: long-input chunking to record in ``pipeline.yaml``.

    Returns:
        ``out_dir``, loadable by :meth:`l2s.pipeline.Lip2Speech.from_pretrained`.
    """
    from l2s.align.checkpoint import save_aligner
    from l2s.models.asr_guide import save_guide as save_l2s_guide
    from l2s.models.ddsp import save_coarse_prior
    from l2s.models.denoiser import save_denoiser
    from l2s.models.lipvoicer.variants import save_guide, save_melgen
    from l2s.models.vsr import save_vsr
    from l2s.vocoder.registry import save_vocoder

    if preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; expected one of {PRESETS}")
    if arch not in ARCHS:
        raise InputError(f"unknown arch {arch!r}; expected one of {ARCHS}")
    out = Path(out_dir)
    with atomic_dir(out) as tmp:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            vsr = _vsr(preset)
            save_vsr(vsr, tmp / "vsr")
            save_coarse_prior(_prior(preset, vsr.feature_dim), tmp / "f0_ddsp")
            if arch == "lipvoicer":
                melgen = _melgen(preset)
                save_melgen(tmp / "melgen", melgen.config, melgen.state_dict())
                guide = _guide(preset, vsr.config.vocab_size)
                save_guide(tmp / "guide_asr", guide.config, guide.state_dict())
            else:
                save_denoiser(_denoiser(preset, vsr.feature_dim), tmp / "melgen")
                save_l2s_guide(_l2s_guide(preset), tmp / "guide_asr")
            save_vocoder(_vocoder(preset), tmp / "vocoder")
            save_aligner(_aligner(vsr), tmp / "aligner")  # last: the other components keep their random draws
        name = f"untrained-{preset}" + ("-lipvoicer" if arch == "lipvoicer" else "")
        spec = PipelineSpec(name=name, weights="untrained", trained_on=None,
                            components={c: c for c in ("vsr", "aligner", "f0_ddsp", "melgen", "guide_asr", "vocoder")},
                            sampler=UNTRAINED_SAMPLER, guide_tokenizer=CHAR_TOKENIZER, vsr_beam_size=0,
                            chunking=chunking)
        write_spec(tmp, spec)
    return out
