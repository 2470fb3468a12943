"""GAN discriminators for vocoder training: multi-period and multi-resolution.

* Multi-period (HiFi-GAN, Kong et al. 2020, section 2.2): the waveform folded into
  ``(T / p, p)`` for prime periods ``p``, judged by strided 2-D convolutions along time.
* Multi-resolution (UnivNet, Jang et al. 2021; used by Vocos): linear STFT magnitudes at
  several resolutions, judged by 2-D convolutions over (frequency, time).

Each discriminator returns ``(logits, feature_maps)`` per sub-discriminator, the form
:mod:`l2s.vocoder.losses` consumes. Training only: inference never imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from l2s.vocoder.weight_norm import WNConv2d

LRELU_SLOPE = 0.1

Judgement = Tuple[torch.Tensor, List[torch.Tensor]]  # (B, N) logits, feature maps


def _judge(x: torch.Tensor, convs: nn.ModuleList, conv_post: nn.Module) -> Judgement:
    """The conv stack both discriminators share: leaky-ReLU convs, then a 1-channel output conv;
    every intermediate map is kept for the feature-matching loss."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        features.append(x)
    x = conv_post(x)
    features.append(x)
    return x.flatten(1), features


class PeriodDiscriminator(nn.Module):
    """One period of the MPD: ``(B, T)`` waveform to logits ``(B, N)`` and 5 feature maps."""

    def __init__(self, period: int, channels: Tuple[int, ...] = (32, 128, 512, 1024, 1024), kernel: int = 5,
                 stride: int = 3):
        super().__init__()
        self.period = period
        c_in = (1,) + channels[:-1]
        strides = [stride] * (len(channels) - 1) + [1]
        self.convs = nn.ModuleList(
            WNConv2d(i, o, (kernel, 1), (s, 1), padding=((kernel - 1) // 2, 0))
            for i, o, s in zip(c_in, channels, strides))
        self.conv_post = WNConv2d(channels[-1], 1, (3, 1), padding=(1, 0))

    def forward(self, wav: torch.Tensor) -> Judgement:
        """``(B, T)`` to ``((B, N) logits, [feature maps (B, C, T', period)])``."""
        x = wav.unsqueeze(1)
        pad = (-x.shape[-1]) % self.period
        if pad:
            # Reflect needs pad < length; very short inputs fall back to zeros.
            x = F.pad(x, (0, pad), mode="reflect" if pad < x.shape[-1] else "constant")
        x = x.view(x.shape[0], 1, -1, self.period)
        return _judge(x, self.convs, self.conv_post)


class MultiPeriodDiscriminator(nn.Module):
    """MPD with HiFi-GAN's prime periods (2, 3, 5, 7, 11)."""

    def __init__(self, periods: Tuple[int, ...] = (2, 3, 5, 7, 11),
                 channels: Tuple[int, ...] = (32, 128, 512, 1024, 1024)):
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, channels) for p in periods)

    def forward(self, wav: torch.Tensor) -> List[Judgement]:
        """``(B, T)`` waveform to one judgement per period."""
        return [d(wav) for d in self.discriminators]


@dataclass(frozen=True)
class Resolution:
    """An STFT resolution of the MRD (samples at the contract rate)."""

    n_fft: int
    hop_length: int
    win_length: int


# UnivNet's three resolutions (1024/256, 2048/512, 512/128 at 24 kHz) scaled by 2/3 to 16 kHz,
# rounded so each hop divides our 160-sample mel hop pattern sensibly.
MRD_RESOLUTIONS_16K = (Resolution(640, 160, 640), Resolution(1280, 320, 1280), Resolution(320, 80, 320))


class ResolutionDiscriminator(nn.Module):
    """One resolution of the MRD: ``(B, T)`` to logits over the (frequency, time) plane."""

    def __init__(self, resolution: Resolution, channels: int = 32):
        super().__init__()
        self.resolution = resolution
        self.register_buffer("window", torch.hann_window(resolution.win_length), persistent=False)
        self.convs = nn.ModuleList([
            WNConv2d(1, channels, (3, 9), padding=(1, 4)),
            WNConv2d(channels, channels, (3, 9), stride=(1, 2), padding=(1, 4)),
            WNConv2d(channels, channels, (3, 9), stride=(1, 2), padding=(1, 4)),
            WNConv2d(channels, channels, (3, 9), stride=(1, 2), padding=(1, 4)),
            WNConv2d(channels, channels, (3, 3), padding=(1, 1)),
        ])
        self.conv_post = WNConv2d(channels, 1, (3, 3), padding=(1, 1))

    def forward(self, wav: torch.Tensor) -> Judgement:
        """``(B, T)`` to ``((B, N) logits, [feature maps (B, C, F, T')])``."""
        r = self.resolution
        spec = torch.stft(wav, r.n_fft, r.hop_length, r.win_length, self.window.to(wav.dtype), center=True,
                          return_complex=True)
        x = spec.abs().unsqueeze(1)  # (B, 1, F, frames)
        return _judge(x, self.convs, self.conv_post)


class MultiResolutionDiscriminator(nn.Module):
    """MRD over :data:`MRD_RESOLUTIONS_16K` (or the given resolutions)."""

    def __init__(self, resolutions: Tuple[Resolution, ...] = MRD_RESOLUTIONS_16K, channels: int = 32):
        super().__init__()
        self.discriminators = nn.ModuleList(ResolutionDiscriminator(r, channels) for r in resolutions)

    def forward(self, wav: torch.Tensor) -> List[Judgement]:
        """``(B, T)`` waveform to one judgement per resolution."""
        return [d(wav) for d in self.discriminators]
