"""Vocoder GAN losses: least-squares adversarial terms, feature matching, mel L1.

As in HiFi-GAN (Kong et al. 2020, eqs. 1-6): least-squares GAN losses (Mao et al. 2017),
feature matching (L1 between discriminator feature maps of real and generated audio)
and an L1 loss between log-mel spectrograms, the contract mel here. The weights
default to HiFi-GAN's (``lambda_fm = 2``, ``lambda_mel = 45``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence

import torch
from torch import nn

from l2s.features.mel import MelSpectrogram
from l2s.vocoder.discriminators import Judgement


@dataclass(frozen=True)
class GANLossWeights:
    """Weights of the generator's loss terms (HiFi-GAN's defaults)."""

    adversarial: float = 1.0
    feature_matching: float = 2.0
    mel: float = 45.0


def discriminator_loss(real: Sequence[Judgement], fake: Sequence[Judgement]) -> torch.Tensor:
    """LSGAN discriminator loss, summed over sub-discriminators: ``E[(1 - D(x))^2] + E[D(G(s))^2]``.

    ``fake`` must be judged on detached generator output.
    """
    loss = real[0][0].new_zeros(())
    for (r, _), (g, _) in zip(real, fake):
        loss = loss + torch.mean((1.0 - r) ** 2) + torch.mean(g ** 2)
    return loss


def generator_adversarial_loss(fake: Sequence[Judgement]) -> torch.Tensor:
    """LSGAN generator loss, summed over sub-discriminators: ``E[(1 - D(G(s)))^2]``."""
    loss = fake[0][0].new_zeros(())
    for g, _ in fake:
        loss = loss + torch.mean((1.0 - g) ** 2)
    return loss


def feature_matching_loss(real: Sequence[Judgement], fake: Sequence[Judgement]) -> torch.Tensor:
    """Mean L1 between feature maps of real (held constant) and generated audio, summed over layers."""
    loss = real[0][0].new_zeros(())
    for (_, real_maps), (_, fake_maps) in zip(real, fake):
        for r, g in zip(real_maps, fake_maps):
            loss = loss + torch.mean(torch.abs(r.detach() - g))
    return loss


class MelL1Loss(nn.Module):
    """Mean L1 between natural-log contract mels of two waveforms ``(B, T)``.

    No peak normalisation: the generator must reproduce the level as well.
    """

    def __init__(self):
        super().__init__()
        self.mel = MelSpectrogram()

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return torch.mean(torch.abs(self.mel(fake) - self.mel(real)))


def generator_loss(real: Sequence[Judgement], fake: Sequence[Judgement], mel_l1: torch.Tensor,
                   weights: GANLossWeights = GANLossWeights()) -> Dict[str, torch.Tensor]:
    """The generator's total loss and its terms (``total``, ``adversarial``, ``feature_matching``, ``mel``).

    Args:
        real: judgements of the real audio (from all discriminators, concatenated).
        fake: judgements of the generated audio, not detached.
        mel_l1: :class:`MelL1Loss` of generated against real audio.
    """
    adv = generator_adversarial_loss(fake)
    fm = feature_matching_loss(real, fake)
    total = weights.adversarial * adv + weights.feature_matching * fm + weights.mel * mel_l1
    return {"total": total, "adversarial": adv, "feature_matching": fm, "mel": mel_l1}


def judge_all(discriminators: List[nn.Module], wav: torch.Tensor) -> List[Judgement]:
    """Concatenated judgements of ``wav`` ``(B, T)`` by every discriminator (MPD, MRD...)."""
    out: List[Judgement] = []
    for d in discriminators:
        out.extend(d(wav))
    return out
