"""Deterministic test signals shared by several test modules."""

import math

import torch

from l2s.config import SAMPLE_RATE


def harmonic(seconds: float = 1.0, f0: float = 140.0, seed: int = 0) -> torch.Tensor:
    """A vibrato harmonic tone with a syllable-rate envelope (speech-like, deterministic), ``(N,)`` float32."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * SAMPLE_RATE), dtype=torch.float64) / SAMPLE_RATE
    inst_f0 = f0 + 25 * torch.sin(2 * math.pi * 1.5 * t)
    phase = 2 * math.pi * torch.cumsum(inst_f0, 0) / SAMPLE_RATE
    x = sum((0.5 / k) * torch.sin(k * phase + k) for k in range(1, 20))
    x = x * (0.6 + 0.4 * torch.sin(2 * math.pi * 3 * t)) + 1e-3 * torch.randn(t.shape, generator=gen, dtype=t.dtype)
    return x.float()
