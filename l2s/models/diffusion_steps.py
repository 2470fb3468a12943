"""Diffusion-step helpers shared by the mel denoiser and the guide ASR.

* :func:`build_schedule`: the :class:`~l2s.diffusion.schedules.DiffusionSchedule` a checkpoint was trained with,
  from its :class:`~l2s.config.NoiseScheduleConfig` (so trainer and sampler read the same ``abar``);
* :class:`StepEmbedding`: DiffWave's sinusoidal embedding of the step index followed by an MLP;
* :func:`q_sample`: ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` for a batch of steps;
* :func:`mel_mask`: the ``(B, 1, T)`` valid-frame mask both networks multiply by.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from l2s.config import NoiseScheduleConfig
from l2s.diffusion.schedules import DiffusionSchedule, linear_schedule
from l2s.errors import InputError

SCHEDULE_KINDS = ("linear", "cosine")


def build_schedule(config: NoiseScheduleConfig) -> DiffusionSchedule:
    """The schedule described by ``config`` (``linear``: LipVoicer's; ``cosine``: diffusers' squaredcos_cap_v2)."""
    if config.kind == "linear":
        return linear_schedule(config.num_steps, config.beta_0, config.beta_T)
    if config.kind == "cosine":
        from diffusers.schedulers.scheduling_ddpm import betas_for_alpha_bar

        return DiffusionSchedule.from_betas(betas_for_alpha_bar(config.num_steps, alpha_transform_type="cosine"))
    raise InputError(f"unknown noise schedule {config.kind!r}; expected one of {SCHEDULE_KINDS}")


def as_step_vector(t: torch.Tensor | float | int, batch: int, device: torch.device) -> torch.Tensor:
    """Step indices as a ``(B,)`` float tensor from a scalar, ``(B,)`` or the sampler's ``(B, 1)``."""
    t = torch.as_tensor(t, device=device, dtype=torch.float32).reshape(-1)
    if t.numel() == 1:
        t = t.expand(batch)
    if t.shape[0] != batch:
        raise InputError(f"need one diffusion step per batch item ({batch}), got {t.shape[0]}")
    return t


def mel_mask(lengths: Optional[torch.Tensor], frames: int, batch: int, device: torch.device) -> torch.Tensor:
    """``(B, 1, T)`` float mask, 1 on valid mel frames (all ones when ``lengths`` is None)."""
    if lengths is None:
        return torch.ones(batch, 1, frames, device=device)
    return (torch.arange(frames, device=device)[None] < lengths.to(device)[:, None]).float()[:, None]


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """``(B,)`` step indices -> ``(B, dim)`` ``[sin(t f_i), cos(t f_i)]``, ``f_i = 10000^(-i / (dim/2 - 1))``
    (DiffWave, Kong et al. 2021)."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=t.device, dtype=torch.float32) * -(math.log(10000.0) / (half - 1)))
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class StepEmbedding(nn.Module):
    """Sinusoidal step embedding -> Linear, SiLU, Linear, SiLU: ``(B,)`` steps to ``(B, hidden)``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        if dim % 2 or dim < 4:
            raise ValueError(f"the step embedding width must be even and >= 4, got {dim}")
        self.dim = dim
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, hidden)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return F.silu(self.fc2(F.silu(self.fc1(sinusoidal_embedding(t, self.dim)))))


def q_sample(x0: torch.Tensor, t: torch.Tensor, schedule: DiffusionSchedule,
             noise: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Forward diffusion of a batch: ``sqrt(abar_t) x0 + sqrt(1 - abar_t) noise``.

    Args:
        x0: ``(B, 80, T)`` clean model-space mels.
        t: ``(B,)`` integer steps.
        schedule: the schedule (its ``alpha_bars``, exactly what the sampler uses).
        noise: ``(B, 80, T)`` standard normal noise (drawn when None).
    """
    noise = torch.randn_like(x0) if noise is None else noise
    abar = schedule.alpha_bars.to(x0.device)[t.long()].to(x0.dtype)[:, None, None]
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise
