"""A toy generator and a toy vocoder that join the stage tables from this module alone.

Nothing in ``l2s/`` names them: :mod:`tests.test_stage_seams` registers this module (with
:func:`l2s.arch.register`, or as an ``l2s.architectures`` entry point) and writes a ``pipeline.yaml``.
The generator has no diffusion (no schedule, no solver): its settings are its own, and so is its trainer
(:func:`train`, which ``l2s train`` runs for a recipe with ``arch: toy``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, Optional

import torch
from torch import nn

from l2s.arch import Architecture
from l2s.config import HOP_LENGTH, MEL_FRAMES_PER_VIDEO_FRAME, N_MELS, SAMPLE_RATE
from l2s.diffusion.guidance import Guidance
from l2s.diffusion.sampler import LossFn, NoiseSource, SampleResult
from l2s.models.generator.base import GeneratorInputs
from l2s.vocoder.base import MEL_NORM


@dataclass(frozen=True)
class ToyGeneratorConfig:
    """A linear map from the lip reader's features to the mel bands."""

    feature_dim: int = 32


@dataclass(frozen=True)
class ToySettings:
    """How the toy samples: the scale of the noise added to its mel, and how many passes it counts."""

    noise_scale: float = 0.1
    passes: int = 1


class ToyNet(nn.Module):
    def __init__(self, config: ToyGeneratorConfig = ToyGeneratorConfig()):
        super().__init__()
        self.config = config
        self.proj = nn.Linear(config.feature_dim, N_MELS)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, T, D)`` features -> ``(B, 80, 4 T)`` model-space mel."""
        return torch.tanh(self.proj(features)).transpose(1, 2).repeat_interleave(MEL_FRAMES_PER_VIDEO_FRAME, -1)


class ToyGenerator:
    """The generator stage of a :class:`ToyNet`."""

    arch = "toy"
    takes_speaker = False
    needs_features = True
    needs_alignment = False
    schedule = None

    def __init__(self, model: ToyNet, settings: ToySettings = ToySettings()):
        self.model, self.settings = model, settings

    def with_settings(self, settings: ToySettings) -> "ToyGenerator":
        return ToyGenerator(self.model, settings)

    def sample(self, inputs: GeneratorInputs, guidance: Guidance, asr_loss: Optional[LossFn],
               noise: Optional[NoiseSource]) -> SampleResult:
        with torch.no_grad():
            mel = self.model(inputs.features)
        mel = mel + self.settings.noise_scale * noise.initial(mel.shape, mel)
        return SampleResult(mel=mel, timesteps=tuple(range(self.settings.passes)),
                            generator_evals=self.settings.passes, guide_evals=0)


@dataclass(frozen=True)
class ToyVocoderConfig:
    """One transposed convolution from the mel to the waveform, a hop per frame."""

    gain: float = 0.5


class ToyVocoder(nn.Module):
    """Model-space mel ``(B, 80, T)`` -> ``(B, T * 160)``; satisfies :class:`l2s.vocoder.base.Vocoder`."""

    mel_space = MEL_NORM
    sample_rate = SAMPLE_RATE
    hop_length = HOP_LENGTH
    context_frames = 0

    def __init__(self, config: ToyVocoderConfig = ToyVocoderConfig()):
        super().__init__()
        self.config = config
        self.up = nn.ConvTranspose1d(N_MELS, 1, HOP_LENGTH, stride=HOP_LENGTH)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.config.gain * torch.tanh(self.up(mel))[:, 0]


def train(hparams: Dict[str, Any], run_opts: Dict[str, Any]) -> Dict[str, Any]:
    """The toy's trainer: no data, one step pulling the mel of zero features toward silence; exports the model."""
    from l2s.arch import save_model
    from l2s.train.common import model_config

    entry, config = model_config(hparams, "generator", ("toy",))
    model = entry.build(config)
    loss = (model(torch.zeros(1, 2, config.feature_dim)) + 1).square().mean()
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad
    save_model(model, Path(hparams["output_folder"]) / "model")
    return {"loss": float(loss.detach())}


ARCHITECTURES = (
    Architecture(family="generator", name="toy", model_cls=ToyNet, config_cls=ToyGeneratorConfig,
                 presets={"micro": ToyGeneratorConfig(feature_dim=32)}, stage=ToyGenerator, settings_cls=ToySettings,
                 trainer=__name__, description="a linear map from lip features to mels (tests)"),
    Architecture(family="vocoder", name="toy", model_cls=ToyVocoder, config_cls=ToyVocoderConfig,
                 presets={"loud": replace(ToyVocoderConfig(), gain=0.9)}, description="one transposed conv (tests)"),
)
