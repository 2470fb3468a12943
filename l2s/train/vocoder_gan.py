"""The GAN objectives of vocoder training, weighted as each paper weighs them.

* HiFi-GAN (Kong et al. 2020, eqs. 1-6): least-squares adversarial losses summed over
  every sub-discriminator, feature matching x2, mel L1 x45.
* Vocos (Siuzdak 2023, section 3.4 and its public training configuration): hinge losses
  and feature matching averaged over the sub-discriminators of each discriminator,
  the multi-resolution discriminator's terms weighted 0.1, mel L1 x45.

Discriminator outputs arrive grouped by discriminator (``{"mpd": [...], "mrd": [...]}``),
each a list of :data:`~l2s.vocoder.discriminators.Judgement`. The terms common to both
papers (LSGAN, feature matching, mel L1) come from :mod:`l2s.vocoder.losses`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

import torch

from l2s.vocoder.discriminators import Judgement
from l2s.vocoder.losses import discriminator_loss, feature_matching_loss, generator_adversarial_loss

ADVERSARIAL_KINDS = ("lsgan", "hinge")

# Per discriminator: (judgements of real audio, judgements of generated audio).
JudgedGroups = Mapping[str, Tuple[List[Judgement], List[Judgement]]]


@dataclass(frozen=True)
class GANObjective:
    """How the generator and discriminator losses are built (defaults: HiFi-GAN).

    Attributes:
        adversarial: ``"lsgan"`` (HiFi-GAN) or ``"hinge"`` (Vocos).
        average: divide each discriminator's adversarial and feature-matching terms by
            its number of sub-discriminators (Vocos) rather than summing them (HiFi-GAN).
        feature_matching: weight of the feature-matching term.
        mel: weight of the mel L1 term.
        mpd: weight of the multi-period discriminator's terms.
        mrd: weight of the multi-resolution discriminator's terms.
        stft: weight of a multi-resolution STFT loss (Parallel WaveGAN's auxiliary loss; 0 in both
            papers). It gives a mel-only warm-up, or a CPU budget that allows no GAN, a phase-aware target.
    """

    adversarial: str = "lsgan"
    average: bool = False
    feature_matching: float = 2.0
    mel: float = 45.0
    mpd: float = 1.0
    mrd: float = 1.0
    stft: float = 0.0

    def __post_init__(self) -> None:
        if self.adversarial not in ADVERSARIAL_KINDS:
            raise ValueError(f"adversarial must be one of {ADVERSARIAL_KINDS}, got {self.adversarial!r}")

    def group_weight(self, name: str, count: int) -> float:
        """The factor on a discriminator's terms: its weight, over its size when averaging."""
        weight = float(getattr(self, name))
        return weight / max(count, 1) if self.average else weight


HIFIGAN_OBJECTIVE = GANObjective()
VOCOS_OBJECTIVE = GANObjective(adversarial="hinge", average=True, feature_matching=1.0, mrd=0.1)


def _hinge_discriminator(real: List[Judgement], fake: List[Judgement]) -> torch.Tensor:
    loss = real[0][0].new_zeros(())
    for (r, _), (g, _) in zip(real, fake):
        loss = loss + torch.relu(1.0 - r).mean() + torch.relu(1.0 + g).mean()
    return loss


def _hinge_generator(fake: List[Judgement]) -> torch.Tensor:
    loss = fake[0][0].new_zeros(())
    for g, _ in fake:
        loss = loss + torch.relu(1.0 - g).mean()
    return loss


def discriminator_objective(groups: JudgedGroups, objective: GANObjective) -> torch.Tensor:
    """The discriminators' loss; ``groups`` must judge *detached* generator output."""
    total = None
    for name, (real, fake) in groups.items():
        if objective.adversarial == "lsgan":
            term = discriminator_loss(real, fake)
        else:
            term = _hinge_discriminator(real, fake)
        term = objective.group_weight(name, len(real)) * term
        total = term if total is None else total + term
    if total is None:
        raise ValueError("no discriminator outputs")
    return total


def generator_objective(groups: JudgedGroups, mel_l1: torch.Tensor, objective: GANObjective,
                        stft: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
    """The generator's total loss and its terms (``total``, ``adversarial``, ``feature_matching``, ``mel``,
    ``stft``).

    Args:
        groups: judgements of real audio and of the (not detached) generated audio; empty
            during a mel-only warm-up, when only the mel (and STFT) terms count.
        mel_l1: mel L1 of the generated against the real audio.
        objective: the weights.
        stft: the multi-resolution STFT loss, when ``objective.stft > 0``.
    """
    adv = mel_l1.new_zeros(())
    fm = mel_l1.new_zeros(())
    for name, (real, fake) in groups.items():
        weight = objective.group_weight(name, len(real))
        gen = generator_adversarial_loss(fake) if objective.adversarial == "lsgan" else _hinge_generator(fake)
        adv = adv + weight * gen
        fm = fm + weight * feature_matching_loss(real, fake)
    total = adv + objective.feature_matching * fm + objective.mel * mel_l1
    stft = mel_l1.new_zeros(()) if stft is None else stft
    if objective.stft > 0:
        total = total + objective.stft * stft
    return {"total": total, "adversarial": adv, "feature_matching": fm, "mel": mel_l1, "stft": stft}
