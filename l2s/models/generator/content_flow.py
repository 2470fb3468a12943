"""The ``content-flow`` generator: the lip-read content on the timeline drives the mel.

Two networks at the mel rate (100 frames per second), both reading the same frame-level condition
(:class:`ContentInputs`): the phoneme sounding at each frame, the position inside it and the word starts (the
text placed on the video by the aligner, :func:`l2s.align.timeline.render_frames`), the lip reader's features
(repeated to the mel rate), the prior's log-F0 and voicing, and the DDSP prior's mel.

1. The **content decoder** predicts the mel's conditional mean by regression: ``mean = prior + decoder(...)``,
   trained with an L1 loss (Grad-TTS's encoder mean, DiffSinger's auxiliary decoder). It is right in content
   and timing, and blurred.
2. The **refiner** adds the detail the mean averages away, by conditional flow matching
   (:mod:`l2s.diffusion.flow`) from a source centred on the mean, ``x_0 = mean + sigma z``, in a few ODE steps.
   It predicts the clean mel relative to the mean, so a refiner that outputs zero gives back the mean.

The content condition (phonemes and lip features) is dropped together per item with probability
``content_dropout`` while the refiner trains, so classifier-free guidance on it is possible: ``w_video`` of
the pipeline's guidance weights it as for the diffusion generators (0: off, one network pass a step). The F0,
voicing and prior mel are never dropped: they carry the voice, not the words.

Both are dilated GLU convolution stacks (a receptive field of about 0.6 s at 100 Hz), small enough to train on
two CPU cores in under an hour; the refiner's blocks take the flow time through FiLM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from l2s.arch import Architecture
from l2s.config import MEL_FRAMES_PER_VIDEO_FRAME, N_MELS
from l2s.diffusion.flow import FlowSettings, flow_sample
from l2s.diffusion.guidance import Guidance, cfg
from l2s.diffusion.sampler import LossFn, NoiseSource, SampleResult
from l2s.diffusion.schedules import NoiseScheduleConfig
from l2s.errors import InputError, ModelError
from l2s.models.generator.base import GeneratorInputs
from l2s.text.phonemes import DEFAULT_INVENTORY, PhonemeInventory

#: The phoneme id that stands for "no content" (the inventory's blank: rendered frames never use it).
NULL_PHONEME = 0
#: Frame-level scalar inputs: position in the phoneme, word start, normalised log-F0, voicing.
N_SCALARS = 4


@dataclass(frozen=True)
class StackConfig:
    """A dilated GLU convolution stack.

    Attributes:
        channels: width.
        layers: residual blocks.
        kernel: convolution width (odd).
        dilations: the dilation cycle of the blocks.
        dropout: dropout on each block's output (training only).
    """

    channels: int = 128
    layers: int = 8
    kernel: int = 5
    dilations: Tuple[int, ...] = (1, 2, 4, 8)
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.kernel % 2 == 0 or self.kernel < 1:
            raise InputError(f"kernel must be odd, got {self.kernel}")
        if self.layers < 1 or self.channels < 1 or not self.dilations:
            raise InputError("a convolution stack needs layers, channels and dilations")


@dataclass(frozen=True)
class ContentFlowConfig:
    """The content decoder and the refiner.

    Attributes:
        feature_dim: width of the lip reader's features (set by the trainer).
        phonemes: the phoneme inventory the ids index (the aligner's; set by the trainer).
        log_f0_mean: log-F0 (natural log of Hz) the F0 input is centred on (the prior's; set by the trainer).
        log_f0_std: its scale.
        decoder: the content decoder's stack.
        refiner: the refiner's stack (its dropout is not used: the flow's noise regularises it).
        time_dim: width of the flow time's sinusoidal embedding.
        sigma: the source's noise scale around the mean (about twice the mean's RMS error on valid).
        content_dropout: probability of the null content condition per item while the refiner trains.
    """

    feature_dim: int = 128
    phonemes: Tuple[str, ...] = DEFAULT_INVENTORY.symbols
    log_f0_mean: float = math.log(120.0)
    log_f0_std: float = 0.3
    decoder: StackConfig = field(default_factory=StackConfig)
    refiner: StackConfig = field(default_factory=lambda: StackConfig(dropout=0.0))
    time_dim: int = 64
    sigma: float = 0.25
    content_dropout: float = 0.15

    def __post_init__(self) -> None:
        if not 0 <= self.content_dropout < 1:
            raise InputError(f"content_dropout must be in [0, 1), got {self.content_dropout}")
        if self.sigma <= 0:
            raise InputError(f"sigma must be positive, got {self.sigma}")
        if self.time_dim < 4 or self.time_dim % 2:
            raise InputError(f"time_dim must be an even number >= 4, got {self.time_dim}")


CONTENT_FLOW_PRESETS = {
    "micro": ContentFlowConfig(feature_dim=32, decoder=StackConfig(channels=16, layers=2, dilations=(1, 2)),
                               refiner=StackConfig(channels=16, layers=2, dilations=(1, 2), dropout=0.0), time_dim=8),
    "tiny": ContentFlowConfig(),
    "base": ContentFlowConfig(decoder=StackConfig(channels=256, layers=12, dilations=(1, 2, 4, 8, 16, 1)),
                              refiner=StackConfig(channels=256, layers=12, dilations=(1, 2, 4, 8, 16, 1),
                                                  dropout=0.0)),
}


@dataclass(frozen=True)
class ContentInputs:
    """The frame-level condition of a batch (``T``: mel frames, ``T_v``: video frames).

    Attributes:
        phonemes: ``(B, T)`` long phoneme ids.
        scalars: ``(B, 4, T)`` position in the phoneme, word start, normalised log-F0 (0 unvoiced), voicing.
        features: ``(B, T_v, D)`` the lip reader's features.
        prior_mel: ``(B, 80, T)`` the DDSP prior mel in model space.
        mask: ``(B, 1, T)`` 1 on valid frames.
    """

    phonemes: torch.Tensor
    scalars: torch.Tensor
    features: torch.Tensor
    prior_mel: torch.Tensor
    mask: torch.Tensor

    def without_content(self, drop: torch.Tensor) -> "ContentInputs":
        """The same with the content (phonemes, their position and word starts, lip features) nulled for the
        items where ``drop (B,)`` is True."""
        if not bool(drop.any()):
            return self
        keep = (~drop).to(self.scalars.dtype)
        phonemes = torch.where(drop[:, None], torch.full_like(self.phonemes, NULL_PHONEME), self.phonemes)
        scalars = torch.cat([self.scalars[:, :2] * keep[:, None, None], self.scalars[:, 2:]], 1)
        return ContentInputs(phonemes, scalars, self.features * keep[:, None, None], self.prior_mel, self.mask)


def frame_scalars(position: torch.Tensor, word_start: torch.Tensor, f0: torch.Tensor, voiced: torch.Tensor,
                  config: ContentFlowConfig) -> torch.Tensor:
    """``(B, 4, T)`` scalar inputs from ``(B, T)`` position, word starts, F0 in Hz and voicing."""
    voiced = voiced.to(position.dtype) * (f0 > 0).to(position.dtype)
    log_f0 = (f0.clamp_min(1.0).log() - config.log_f0_mean) / config.log_f0_std * voiced
    return torch.stack([position, word_start.to(position.dtype), log_f0, voiced], 1)


class GLUBlock(nn.Module):
    """Pre-norm residual block: dilated convolution, gated linear unit, 1x1 projection; FiLM by ``emb`` if given."""

    def __init__(self, channels: int, kernel: int, dilation: int, dropout: float, emb_dim: int = 0):
        super().__init__()
        self.norm = nn.GroupNorm(1, channels)
        self.film = nn.Linear(emb_dim, 2 * channels) if emb_dim else None
        self.conv = nn.Conv1d(channels, 2 * channels, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2)
        self.proj = nn.Conv1d(channels, channels, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, emb: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.norm(x)
        if self.film is not None:
            scale, shift = self.film(emb)[:, :, None].chunk(2, 1)
            h = h * (1 + scale) + shift
        a, gate = self.conv(h * mask).chunk(2, 1)
        return (x + self.drop(self.proj(a * torch.sigmoid(gate)))) * mask


class ContentEmbedding(nn.Module):
    """The frame-level condition summed into one ``(B, C, T)`` tensor: phoneme embeddings, scalar inputs, lip
    features (repeated to the mel rate) and a convolution of the prior mel."""

    def __init__(self, config: ContentFlowConfig, channels: int):
        super().__init__()
        self.phoneme = nn.Embedding(len(config.phonemes), channels)
        self.scalars = nn.Conv1d(N_SCALARS, channels, 1)
        self.features = nn.Linear(config.feature_dim, channels)
        self.prior = nn.Conv1d(N_MELS, channels, 3, padding=1)

    def forward(self, c: ContentInputs) -> torch.Tensor:
        frames = c.phonemes.shape[1]
        feats = self.features(c.features).transpose(1, 2).repeat_interleave(MEL_FRAMES_PER_VIDEO_FRAME, dim=2)
        if feats.shape[2] < frames:
            feats = F.pad(feats, (0, frames - feats.shape[2]))
        x = self.phoneme(c.phonemes).transpose(1, 2) + self.scalars(c.scalars) + feats[..., :frames]
        return (x + self.prior(c.prior_mel)) * c.mask


class ContentDecoder(nn.Module):
    """The mel's conditional mean relative to the prior mel (``(B, 80, T)``, zero on padding)."""

    def __init__(self, config: ContentFlowConfig):
        super().__init__()
        s = config.decoder
        self.embed = ContentEmbedding(config, s.channels)
        self.blocks = nn.ModuleList(GLUBlock(s.channels, s.kernel, s.dilations[i % len(s.dilations)], s.dropout)
                                    for i in range(s.layers))
        self.out = nn.Conv1d(s.channels, N_MELS, 1)
        nn.init.zeros_(self.out.weight)  # starts as the prior itself
        nn.init.zeros_(self.out.bias)

    def forward(self, c: ContentInputs) -> torch.Tensor:
        x = self.embed(c)
        for block in self.blocks:
            x = block(x, c.mask)
        return self.out(x) * c.mask


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """``(B, dim)`` sinusoidal embedding of flow times ``t (B,)`` in [0, 1]."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=t.device, dtype=torch.float32) * -(math.log(10000.0) / (half - 1)))
    angles = (t.float() * 1000.0)[:, None] * freqs[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], 1)


class Refiner(nn.Module):
    """The clean mel relative to the mean, from the point ``x_t`` of the flow at time ``t``."""

    def __init__(self, config: ContentFlowConfig):
        super().__init__()
        s = config.refiner
        self.time_dim = config.time_dim
        emb = 2 * config.time_dim
        self.time = nn.Sequential(nn.Linear(config.time_dim, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.embed = ContentEmbedding(config, s.channels)
        self.input = nn.Conv1d(2 * N_MELS, s.channels, 3, padding=1)
        self.blocks = nn.ModuleList(GLUBlock(s.channels, s.kernel, s.dilations[i % len(s.dilations)], s.dropout, emb)
                                    for i in range(s.layers))
        self.out = nn.Conv1d(s.channels, N_MELS, 1)
        nn.init.zeros_(self.out.weight)  # starts as the mean itself
        nn.init.zeros_(self.out.bias)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, mean: torch.Tensor, c: ContentInputs) -> torch.Tensor:
        emb = self.time(time_embedding(t, self.time_dim))
        x = self.input(torch.cat([x_t, mean], 1)) + self.embed(c)
        x = x * c.mask
        for block in self.blocks:
            x = block(x, c.mask, emb)
        return self.out(x) * c.mask


class ContentFlow(nn.Module):
    """The content decoder and its refiner (one model directory, trained by :mod:`l2s.train.content_flow`)."""

    def __init__(self, config: ContentFlowConfig = ContentFlowConfig()):
        super().__init__()
        self.config = config
        self.inventory = PhonemeInventory(tuple(config.phonemes))
        self.decoder = ContentDecoder(config)
        self.refiner = Refiner(config)

    def mean(self, c: ContentInputs) -> torch.Tensor:
        """``(B, 80, T)`` the content decoder's mean mel in model space."""
        return (c.prior_mel + self.decoder(c)) * c.mask

    def estimate(self, x_t: torch.Tensor, t: torch.Tensor, mean: torch.Tensor, c: ContentInputs) -> torch.Tensor:
        """``(B, 80, T)`` the refiner's clean-mel estimate at ``x_t``, flow times ``t (B,)``."""
        return (mean + self.refiner(x_t, t, mean, c)) * c.mask


def clip_inputs(model: ContentFlow, inputs: GeneratorInputs) -> ContentInputs:
    """One clip's :class:`ContentInputs` from the pipeline's :class:`GeneratorInputs` (the alignment rendered
    with the model's own phoneme inventory; no alignment gives silence everywhere)."""
    from l2s.align.timeline import render_frames

    if inputs.features is None or inputs.prior_mel is None or inputs.f0 is None or inputs.voiced is None:
        raise ModelError("the content-flow generator needs the lip reader's features and the prior's mel, F0 and "
                         "voicing: the pipeline lacks a vsr or prior component")
    frames = inputs.prior_mel.shape[-1]
    device = inputs.prior_mel.device
    if inputs.alignment is not None:
        rendered = render_frames(inputs.alignment, model.inventory, num_frames=frames)
        phonemes, position, starts = rendered.phoneme_ids, rendered.position, rendered.word_start
    else:
        phonemes = torch.full((frames,), 1, dtype=torch.long)  # <sil>
        position, starts = torch.zeros(frames), torch.zeros(frames)
    scalars = frame_scalars(position[None].to(device), starts[None].to(device), inputs.f0[:, :frames].float(),
                            inputs.voiced[:, :frames], model.config)
    mask = torch.ones(1, 1, frames, device=device)
    return ContentInputs(phonemes[None].to(device), scalars, inputs.features.float(), inputs.prior_mel.float(),
                         mask)


class ContentFlowGenerator:
    """The pipeline's generator stage for a :class:`ContentFlow`: the mean, then the refiner's flow
    (:class:`~l2s.diffusion.flow.FlowSettings`: ``steps`` 0 returns the mean)."""

    arch = "content-flow"
    needs_features = True
    needs_alignment = True
    batches = False  # the alignment is one clip's
    takes_speaker = False
    schedule: Optional[NoiseScheduleConfig] = None

    def __init__(self, model: ContentFlow, settings: FlowSettings = FlowSettings()):
        self.model, self.settings = model, settings

    def with_settings(self, settings: FlowSettings) -> "ContentFlowGenerator":
        return ContentFlowGenerator(self.model, settings)

    def sample(self, inputs: GeneratorInputs, guidance: Guidance, asr_loss: Optional[LossFn],
               noise: Optional[NoiseSource]) -> SampleResult:
        from l2s.diffusion.sampler import GaussianNoise

        model = self.model
        device = next(model.parameters()).device
        c = clip_inputs(model, replace(inputs, **_to(inputs, device)))
        with torch.no_grad():
            mean = model.mean(c)
        w = float(guidance.w_video)
        null = c.without_content(torch.ones(1, dtype=torch.bool, device=device)) if w > 0 else None

        def estimate(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            x1 = model.estimate(x_t, t, mean, c)
            return x1 if null is None else cfg(x1, model.estimate(x_t, t, mean, null), w)

        def clean_loss(x: torch.Tensor) -> torch.Tensor:  # the guide reads a clean estimate: its step 0
            return asr_loss(x, torch.zeros(x.shape[0], 1, device=x.device))

        speech = (c.phonemes > 1).to(mean.dtype)[:, None]  # the words' frames: the guide steers only those
        result = flow_sample(estimate, mean, model.config.sigma, self.settings,
                             noise if noise is not None else GaussianNoise(),
                             clean_loss if asr_loss is not None else None, float(guidance.w_asr), speech)
        per_eval = 1 if null is None else 2
        steps = tuple(range(self.settings.steps))
        return SampleResult(mel=result.mel, timesteps=steps, generator_evals=result.evals * per_eval,
                            guide_evals=result.asr_evals)


def _to(inputs: GeneratorInputs, device: torch.device) -> dict:
    return {k: getattr(inputs, k).to(device) for k in ("features", "prior_mel", "f0", "voiced")
            if getattr(inputs, k) is not None}


ARCHITECTURE = Architecture(family="generator", name="content-flow", model_cls=ContentFlow,
                            config_cls=ContentFlowConfig, presets=CONTENT_FLOW_PRESETS, stage=ContentFlowGenerator,
                            settings_cls=FlowSettings, trainer="l2s.train.content_flow",
                            description="content decoder (mean by regression on the aligned phonemes, lip "
                                        "features, F0 and prior) + flow-matching refiner")
