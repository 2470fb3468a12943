"""LipVoicer's networks bound to the l2s sampler: video (+ text) -> model-space mel.

The visual conditioner (lip + face encoders) is computed once per clip, and once for the null
inputs; LipVoicer recomputes both encoders on every denoiser pass, which gives the same numbers
(the encoders are deterministic in eval mode) at roughly twice the cost.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from l2s.config import MEL_FRAMES_PER_VIDEO_FRAME, N_MELS
from l2s.diffusion.sampler import NoiseSource, SampleResult, SamplerConfig, StepRecord, sample
from l2s.diffusion.schedules import DiffusionSchedule
from l2s.errors import InputError
from l2s.models.lipvoicer.asr import ASRGuide
from l2s.models.lipvoicer.melgen import MelGen


def generate_mel(
    melgen: MelGen,
    roi: torch.Tensor,
    face: torch.Tensor,
    schedule: DiffusionSchedule,
    config: SamplerConfig,
    guide: Optional[ASRGuide] = None,
    tokens: Optional[torch.Tensor] = None,
    prior: Optional[torch.Tensor] = None,
    noise: Optional[NoiseSource] = None,
    on_step: Optional[Callable[[StepRecord], None]] = None,
    progress=None,
) -> SampleResult:
    """Sample a mel for one clip with LipVoicer's networks.

    Args:
        melgen: the mel generator (eval mode).
        roi: ``(1, 1, Tv, 88, 88)`` normalised mouth crops (:func:`~l2s.models.lipvoicer.preprocess.roi_input`).
        face: ``(1, 3, 224, 224)`` normalised face frame (:func:`~l2s.models.lipvoicer.preprocess.face_input`).
        schedule: the diffusion schedule (LipVoicer: ``linear_schedule(400)``).
        config: solver and guidance weights (LipVoicer: w_video 2, w_asr 1.5, asr_start 270).
        guide: the ASR guide; with ``tokens`` (``(1, S)`` ids of the lower-cased text) it steers the sample.
        prior: ``(1, 80, 4 Tv)`` model-space prior for shallow diffusion.
        noise: random draws (a :class:`~l2s.diffusion.sampler.ReplayNoise` replays a recorded run).
        on_step: per-step trace callback.
        progress: wraps the list of steps (a progress bar).

    Returns:
        The sample, ``(1, 80, 4 Tv)`` in model space, and its network-evaluation counts.
    """
    if roi.dim() != 5 or roi.shape[0] != 1:
        raise InputError(f"one clip at a time: roi must be (1, 1, Tv, 88, 88), got {tuple(roi.shape)}")
    if (guide is None) != (tokens is None):
        raise InputError("ASR guidance needs both the guide model and the text tokens")
    device = next(melgen.parameters()).device
    frames = roi.shape[2]
    shape = (1, N_MELS, MEL_FRAMES_PER_VIDEO_FRAME * frames)
    with torch.no_grad():
        cond = melgen.encode(roi.to(device), face.to(device))
        null = melgen.encode_null(1, frames) if config.w_video > 0 else None
    lengths = torch.tensor([shape[-1]], device=device)

    def eps_cond(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return melgen(x, t, cond)

    def eps_uncond(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return melgen(x, t, null)

    def asr_loss(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return guide.ctc_loss(x, lengths, t, tokens.to(device))

    return sample(eps_cond, schedule, shape, config, eps_uncond=eps_uncond if null is not None else None,
                  asr_loss=asr_loss if guide is not None else None, prior=prior, noise=noise, on_step=on_step,
                  device=device, progress=progress)
