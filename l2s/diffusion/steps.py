"""Diffusion-step helpers shared by the networks that read noisy mels (generators, guides) and their trainers.

* :class:`StepEmbedding`: DiffWave's sinusoidal embedding of the step index followed by an MLP;
* :func:`q_sample`: ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` for a batch of steps;
* :func:`prediction_target` / :func:`eps_from_prediction` / :func:`x0_from_eps`: the network's output
  parameterisation (``epsilon``, or ``v_prediction``: ``v = sqrt(abar) eps - sqrt(1 - abar) x_0``,
  Salimans & Ho 2022) and the conversions the sampler and the trainer need.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from l2s.diffusion.schedules import DiffusionSchedule
from l2s.errors import InputError

PREDICTIONS = ("epsilon", "v_prediction")


def as_step_vector(t: torch.Tensor | float | int, batch: int, device: torch.device) -> torch.Tensor:
    """Step indices as a ``(B,)`` float tensor from a scalar, ``(B,)`` or the sampler's ``(B, 1)``."""
    t = torch.as_tensor(t, device=device, dtype=torch.float32).reshape(-1)
    if t.numel() == 1:
        t = t.expand(batch)
    if t.shape[0] != batch:
        raise InputError(f"need one diffusion step per batch item ({batch}), got {t.shape[0]}")
    return t


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
    abar = step_alpha_bars(schedule.alpha_bars, t, x0)
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise


def step_alpha_bars(schedule_abar: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``abar_t`` as ``(B, 1, 1)`` in ``like``'s dtype and device, for ``(B,)`` steps (rounded to integers)."""
    index = t.to(schedule_abar.device).round().long().clamp(0, schedule_abar.shape[0] - 1)
    return schedule_abar[index].to(like.device, like.dtype)[:, None, None]


def check_prediction(prediction: str) -> str:
    """``prediction`` itself, or an :class:`~l2s.errors.InputError` naming the known ones."""
    if prediction not in PREDICTIONS:
        raise InputError(f"unknown prediction type {prediction!r}; expected one of {PREDICTIONS}")
    return prediction


def prediction_target(prediction: str, x0: torch.Tensor, noise: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
    """What a network of this parameterisation is trained to output for ``x_t = q_sample(x0, noise)``.

    ``epsilon``: the noise (DDPM, LipVoicer). ``v_prediction``: ``sqrt(abar) noise - sqrt(1 - abar) x0``;
    its squared error is the epsilon error divided by ``abar``, so at large ``t`` (``abar -> 0``) the network
    is taught the clean mel itself, i.e. what the condition says it is, where an epsilon network learns
    almost nothing about it (its x_0 error is scaled down by ``abar / (1 - abar)``).
    """
    if check_prediction(prediction) == "epsilon":
        return noise
    return abar.sqrt() * noise - (1 - abar).sqrt() * x0


def eps_from_prediction(prediction: str, output: torch.Tensor, x_t: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
    """The noise estimate the sampler works with, from a network output of this parameterisation."""
    if check_prediction(prediction) == "epsilon":
        return output
    return abar.sqrt() * output + (1 - abar).sqrt() * x_t


def x0_from_eps(eps: torch.Tensor, x_t: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
    """The clean-mel estimate ``(x_t - sqrt(1 - abar) eps) / sqrt(abar)`` (Tweedie's, for the trainer's metrics)."""
    return (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()
