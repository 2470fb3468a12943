"""l2s's diffusion mel generator (the ``denoiser`` architecture of the ``generator`` stage):
``eps = Denoiser(x_t, t, features, prior_mel, speaker, lengths)``, sampled by :class:`DenoiserGenerator`.

The network's own output is in the parameterisation its config names (``prediction``: ``epsilon`` as
LipVoicer, or ``v_prediction``); :meth:`Denoiser.denoise` and ``forward`` always return eps, which is all
the sampler and the guidance terms see; the trainer reads the raw output (``raw=True``),
:meth:`Denoiser.target` and :meth:`Denoiser.eps_from_raw`. With ``residual_prior`` the network works
relative to the prior it is given (the null prior for a dropped condition): it reads
``x_t - sqrt(abar_t) prior`` and its target is that of ``mel - prior``, while its eps is still the noise of
the mel-space process the sampler runs.

A DiffWave-style stack (Kong et al. 2021, as LipVoicer's MelGen uses it on mels): a 1x1 input conv,
``layers`` gated residual layers of dilated 1-D convolutions over time (dilation ``2 ** (i % cycle)``),
each adding a projection of the step embedding to its input and a projection of the conditioner
to its pre-activation, ``tanh(a) * sigmoid(b)`` gating, residual and skip outputs; the summed skips
go through ReLU, 1x1, ReLU, 1x1 (zero-initialised) to ``eps``, plus a step-scaled linear 1x1 map of ``x_t``
itself (zero-initialised; the tiny stack is narrower than the 80 bands, and at large ``t`` eps ~ x_t).

Conditioner (at the mel rate, computed once per clip by :meth:`Denoiser.condition`, since it does
not depend on ``x_t`` or ``t``; the sampler then calls :meth:`Denoiser.denoise` per step):
visual features ``(B, T_v, D)`` -> Linear -> repeated ``MEL_FRAMES_PER_VIDEO_FRAME`` times; concatenated
with the DDSP prior mel ``(B, 80, T_m)``; two k=3 convs; plus a projection of the speaker embedding.

Classifier-free guidance: a dropped item has its projected features replaced by a learned null
vector and its prior by a learned null mel, because the prior is itself computed from the video:
keeping it would leave the video in the "unconditional" branch. ``prior_mel=None`` means the null
prior too. Padded frames (past ``lengths``) are zeroed
before every convolution, so a valid frame's output does not depend on the padding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from l2s.arch import Architecture
from l2s.config import MEL_FRAMES_PER_VIDEO_FRAME, N_MELS
from l2s.diffusion.guidance import Guidance
from l2s.diffusion.sampler import (DiffusionSettings, EpsFn, LossFn, NoiseSource, SampleResult, StepRecord,
                                   sample)
from l2s.diffusion.schedules import DiffusionSchedule, NoiseScheduleConfig, build_schedule
from l2s.diffusion.steps import (PREDICTIONS, StepEmbedding, as_step_vector, eps_from_prediction,
                                 prediction_target, step_alpha_bars)
from l2s.errors import InputError, ModelError
from l2s.features.mel import mel_mask
from l2s.models.generator.base import GeneratorInputs

__all__ = ["Denoiser", "DenoiserConfig", "Conditioning", "BoundDenoiser", "bind", "sample_mel", "DenoiserGenerator",
           "ARCHITECTURE"]

DropMask = Union[bool, torch.Tensor]


@dataclass(frozen=True)
class DenoiserConfig:
    """DiffWave-style mel denoiser (:class:`Denoiser`).

    Attributes:
        feature_dim: width ``D`` of the visual features (the VSR preset's d_model).
        channels: residual channels ``C``.
        layers: gated residual layers.
        dilation_cycle: dilations ``2 ** (i % dilation_cycle)``.
        kernel_size: kernel of the dilated convolutions (odd).
        cond_channels: channels of the conditioner (features + prior mel [+ speaker]) at the mel rate.
        step_dim: sinusoidal step embedding width (even).
        step_hidden: width of the step MLP.
        speaker_dim: width ``E`` of the optional speaker embedding (0: none).
        use_prior: read the coarse prior mel (else only the visual features).
        cond_dropout: training probability of dropping the video condition, per sample.
        schedule: the diffusion schedule it is trained for.
        prediction: what the network outputs: ``"epsilon"`` (the noise, as LipVoicer) or ``"v_prediction"``
            (``sqrt(abar) eps - sqrt(1 - abar) x_0``); the sampler always receives eps.
        residual_prior: model the mel *relative to* the prior (PriorGrad-style mean shift, Lee et al. 2022):
            the network reads ``x_t - sqrt(abar_t) prior`` and its target is that of ``mel - prior``, so it
            only has the residual to learn (the prior already holds the pitch, the energy and a coarse
            envelope); the diffusion process, the sampler and the guide stay in mel space. Needs ``use_prior``.
    """

    feature_dim: int = 128
    channels: int = 64
    layers: int = 8
    dilation_cycle: int = 4
    kernel_size: int = 3
    cond_channels: int = 64
    step_dim: int = 64
    step_hidden: int = 128
    speaker_dim: int = 0
    use_prior: bool = True
    cond_dropout: float = 0.2
    schedule: NoiseScheduleConfig = field(default_factory=NoiseScheduleConfig)
    prediction: str = "epsilon"
    residual_prior: bool = False

    def __post_init__(self) -> None:
        if self.kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction type {self.prediction!r}; expected one of {PREDICTIONS}")
        if self.residual_prior and not self.use_prior:
            raise ValueError("residual_prior needs use_prior (a prior model)")


# feature_dim follows the VSR presets' d_model (tiny 128, base 768, micro 32).
DENOISER_TINY = DenoiserConfig()
DENOISER_BASE = DenoiserConfig(feature_dim=768, channels=256, layers=24, dilation_cycle=8, cond_channels=256,
                               step_dim=128, step_hidden=512)
DENOISER_MICRO = replace(DENOISER_TINY, feature_dim=32, channels=16, layers=2, cond_channels=16, step_dim=16,
                         step_hidden=32)
DENOISER_PRESETS = {"tiny": DENOISER_TINY, "base": DENOISER_BASE, "micro": DENOISER_MICRO}


def _drop_vector(drop: DropMask, batch: int, device: torch.device) -> torch.Tensor:
    """``(B, 1, 1)`` float, 1 where the condition is dropped."""
    drop = torch.as_tensor(drop, device=device, dtype=torch.bool).reshape(-1)
    if drop.numel() == 1:
        drop = drop.expand(batch)
    if drop.shape[0] != batch:
        raise InputError(f"drop_video needs one flag per batch item ({batch}), got {drop.shape[0]}")
    return drop.float()[:, None, None]


@dataclass(frozen=True)
class Conditioning:
    """What the residual layers read of the conditions, for one batch (independent of ``x_t`` and ``t``).

    Attributes:
        layers: ``(L, B, 2C, T_m)`` per-layer conditioner terms.
        mask: ``(B, 1, T_m)`` valid mel frames.
        offset: ``(B, 80, T_m)`` the mel the network models relative to (the prior, or the null prior where
            the condition is dropped), or None (``residual_prior`` off).
    """

    layers: torch.Tensor
    mask: torch.Tensor
    offset: Optional[torch.Tensor] = None


class ResidualLayer(nn.Module):
    """One gated residual layer (dilated conv + step + conditioner, tanh x sigmoid, residual/skip split)."""

    def __init__(self, channels: int, cond_channels: int, step_hidden: int, kernel_size: int, dilation: int):
        super().__init__()
        self.channels = channels
        self.step_proj = nn.Linear(step_hidden, channels)
        self.dilated = nn.Conv1d(channels, 2 * channels, kernel_size, dilation=dilation,
                                 padding=dilation * (kernel_size - 1) // 2)
        self.cond_proj = nn.Conv1d(cond_channels, 2 * channels, 1)
        self.out = nn.Conv1d(channels, 2 * channels, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, emb: torch.Tensor, mask: torch.Tensor):
        """``x (B, C, T)``, ``cond (B, 2C, T)``, ``emb (B, H)``, ``mask (B, 1, T)`` -> ``(x', skip)``."""
        y = self.dilated((x + self.step_proj(emb)[:, :, None]) * mask) + cond
        gate = torch.tanh(y[:, :self.channels]) * torch.sigmoid(y[:, self.channels:])
        res, skip = self.out(gate).chunk(2, dim=1)
        return (x + res) * (mask / math.sqrt(2.0)), skip


class Denoiser(nn.Module):
    """Noise prediction on model-space mels, conditioned on the step, the video, the prior and a speaker.

    Args:
        config: sizes (:data:`DENOISER_TINY` / :data:`DENOISER_BASE`) and the training schedule.
    """

    def __init__(self, config: DenoiserConfig = DenoiserConfig()):
        super().__init__()
        self.config = config
        # abar per step, for converting the network's output to eps (derived from the config, not saved)
        self.register_buffer("alpha_bars", build_schedule(config.schedule).alpha_bars.float(), persistent=False)
        c, cc = config.channels, config.cond_channels
        self.step = StepEmbedding(config.step_dim, config.step_hidden)
        self.input = nn.Conv1d(N_MELS, c, 1)
        self.feature_proj = nn.Linear(config.feature_dim, cc)
        self.null_video = nn.Parameter(torch.zeros(cc))
        prior_channels = N_MELS if config.use_prior else 0
        # initialised at the log floor (-1 in model space): "no prior" starts out as silence
        self.null_prior = nn.Parameter(torch.full((N_MELS,), -1.0)) if config.use_prior else None
        self.speaker_proj = nn.Linear(config.speaker_dim, cc) if config.speaker_dim > 0 else None
        self.cond_in = nn.Conv1d(cc + prior_channels, cc, 3, padding=1)
        self.cond_mid = nn.Conv1d(cc, cc, 3, padding=1)
        self.layers = nn.ModuleList(
            ResidualLayer(c, cc, config.step_hidden, config.kernel_size, 2 ** (i % config.dilation_cycle))
            for i in range(config.layers))
        self.skip_proj = nn.Conv1d(c, c, 1)
        self.output = nn.Conv1d(c, N_MELS, 1)
        # A linear 80 -> 80 path from x_t to eps, scaled per step: the residual stack is narrower than
        # the 80 mel bands in the tiny preset, and at large t eps is mostly x_t itself.
        self.direct = nn.Conv1d(N_MELS, N_MELS, 1)
        self.direct_gain = nn.Linear(config.step_hidden, 1)
        # zero output layers: the untrained network predicts eps = 0 (DiffWave's choice, stable start)
        for layer in (self.output, self.direct, self.direct_gain):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def schedule(self) -> DiffusionSchedule:
        """The noise schedule this denoiser was trained with (the sampler must use it)."""
        return build_schedule(self.config.schedule)

    def condition(self, features: torch.Tensor, frames: int, prior_mel: Optional[torch.Tensor] = None,
                  speaker: Optional[torch.Tensor] = None, lengths: Optional[torch.Tensor] = None,
                  drop_video: DropMask = False) -> Conditioning:
        """Pre-compute the conditioner terms of every layer.

        Args:
            features: ``(B, T_v, D)`` visual features at the video rate.
            frames: ``T_m`` mel frames (normally ``4 T_v``; the upsampled features are cut or edge-padded).
            prior_mel: ``(B, 80, T_m)`` model-space DDSP prior mel, or None (the null prior); ignored by a
                model trained without a prior (``use_prior`` False).
            speaker: ``(B, E)`` speaker embedding, or None; kept in the unconditional pass (guidance is on the
                video only); ignored by a model trained without one (``speaker_dim`` 0).
            lengths: ``(B,)`` valid mel frames, or None.
            drop_video: True, or a ``(B,)`` bool mask: replace those items' video and prior by the learned
                null condition (the unconditional pass of classifier-free guidance).
        """
        if features.dim() != 3 or features.shape[-1] != self.config.feature_dim:
            raise InputError(f"features must be (B, T_v, {self.config.feature_dim}), got {tuple(features.shape)}")
        b, device = features.shape[0], features.device
        mask = mel_mask(lengths, frames, b, device)
        drop = _drop_vector(drop_video, b, device)
        feats = self.feature_proj(features).transpose(1, 2)  # (B, Cc, T_v)
        feats = feats.repeat_interleave(MEL_FRAMES_PER_VIDEO_FRAME, dim=2)
        if feats.shape[2] < frames:
            feats = F.pad(feats, (0, frames - feats.shape[2]), mode="replicate")
        feats = feats[:, :, :frames]
        feats = feats * (1 - drop) + self.null_video[None, :, None] * drop
        prior = self._prior_input(prior_mel, drop, frames)
        parts = [feats] if prior is None else [feats, prior]
        h = F.silu(self.cond_in(torch.cat(parts, dim=1) * mask))
        h = self.cond_mid(h * mask)
        if self.speaker_proj is not None and speaker is not None:
            h = h + self.speaker_proj(speaker)[:, :, None]
        h = h * mask
        offset = prior * mask if self.config.residual_prior else None
        return Conditioning(layers=torch.stack([layer.cond_proj(h) for layer in self.layers]), mask=mask,
                            offset=offset)

    def _prior_input(self, prior_mel: Optional[torch.Tensor], drop: torch.Tensor, frames: int):
        """The ``(B, 80, T_m)`` prior the network reads: ``prior_mel``, with the learned null prior where it is
        None or dropped; None for a model without a prior. ``drop``: ``(B, 1, 1)`` float, 1 where dropped."""
        if self.null_prior is None:
            return None
        b = drop.shape[0]
        null = self.null_prior[None, :, None].expand(b, N_MELS, frames)
        if prior_mel is None:
            return null
        if prior_mel.shape != (b, N_MELS, frames):
            raise InputError(f"prior_mel must be {(b, N_MELS, frames)}, got {tuple(prior_mel.shape)}")
        return prior_mel * (1 - drop) + null * drop

    def offset(self, prior_mel: Optional[torch.Tensor], frames: int, lengths: Optional[torch.Tensor] = None,
               drop_video: DropMask = False) -> Optional[torch.Tensor]:
        """What a ``residual_prior`` network models the mel relative to (:attr:`Conditioning.offset`, without
        the conditioner's convolutions: the trainer's target needs only this); None otherwise.
        ``prior_mel`` must be a tensor here (its batch size sets the batch)."""
        if not self.config.residual_prior:
            return None
        b, device = prior_mel.shape[0], prior_mel.device
        prior = self._prior_input(prior_mel, _drop_vector(drop_video, b, device), frames)
        return prior * mel_mask(lengths, frames, b, device)

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor,
               offset: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The training target of the raw output for ``x_t = q_sample(x0, t, noise)`` (``t``: ``(B,)`` steps;
        ``offset``: the batch's :attr:`Conditioning.offset` or :meth:`offset`, needed with ``residual_prior``)."""
        if self.config.residual_prior:
            if offset is None:
                raise ValueError("a residual_prior denoiser's target needs the batch's offset (the prior)")
            x0 = x0 - offset.detach()
        return prediction_target(self.config.prediction, x0, noise, step_alpha_bars(self.alpha_bars, t, x0))

    def _network_input(self, x_t: torch.Tensor, t: torch.Tensor, cond: Conditioning):
        """``(steps (B,), abar (B, 1, 1), x_in)``: ``x_in`` is ``x_t``, or with ``residual_prior`` the noisy
        residual ``x_t - sqrt(abar) prior = sqrt(abar) (mel - prior) + sqrt(1 - abar) eps``."""
        if x_t.dim() != 3 or x_t.shape[1] != N_MELS or x_t.shape[2] != cond.mask.shape[2]:
            raise InputError(f"x_t must be (B, {N_MELS}, {cond.mask.shape[2]}), got {tuple(x_t.shape)}")
        steps = as_step_vector(t, x_t.shape[0], x_t.device)
        abar = step_alpha_bars(self.alpha_bars, steps, x_t)
        x_in = x_t if cond.offset is None else x_t - abar.sqrt() * cond.offset
        return steps, abar, x_in

    def denoise(self, x_t: torch.Tensor, t: torch.Tensor, cond: Conditioning, raw: bool = False) -> torch.Tensor:
        """``eps`` for noisy mels ``x_t (B, 80, T_m)`` at steps ``t`` (``(B,)``, ``(B, 1)`` or a scalar);
        ``raw``: the network's output in its own parameterisation instead (the same for ``epsilon``;
        :meth:`eps_from_raw` converts it)."""
        mask = cond.mask
        steps, abar, x_in = self._network_input(x_t, t, cond)
        emb = self.step(steps)
        x = F.relu(self.input(x_in * mask))
        skips = 0.0
        for layer, c in zip(self.layers, cond.layers):
            x, skip = layer(x, c, emb, mask)
            skips = skips + skip
        h = F.relu(self.skip_proj(skips * (mask / math.sqrt(len(self.layers)))))
        direct = self.direct(x_in) * (1.0 + self.direct_gain(emb))[:, :, None]
        out = (self.output(h) + direct) * mask
        return out if raw else eps_from_prediction(self.config.prediction, out, x_in, abar) * mask

    def eps_from_raw(self, raw: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        """The eps :meth:`denoise` returns, from its ``raw=True`` output for the same inputs (no second pass)."""
        _, abar, x_in = self._network_input(x_t, t, cond)
        return eps_from_prediction(self.config.prediction, raw, x_in, abar) * cond.mask

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, features: torch.Tensor,
                prior_mel: Optional[torch.Tensor] = None, speaker: Optional[torch.Tensor] = None,
                lengths: Optional[torch.Tensor] = None, drop_video: DropMask = False,
                raw: bool = False) -> torch.Tensor:
        """Predict the noise (training entry point; see :meth:`condition` for the arguments).

        Returns:
            ``(B, 80, T_m)`` predicted ``eps`` (``raw``: the output in the config's parameterisation,
            compared with :meth:`target` in training), zero past each length.
        """
        cond = self.condition(features, x_t.shape[-1], prior_mel, speaker, lengths, drop_video)
        return self.denoise(x_t, t, cond, raw)


@dataclass(frozen=True)
class BoundDenoiser:
    """A denoiser with one batch's conditions bound, in the sampler's callable form.

    Attributes:
        eps_cond: ``(x (B, 80, T), t (B, 1)) -> eps`` with the video (and prior) condition.
        eps_uncond: the same with the null condition (classifier-free guidance's second pass).
    """

    eps_cond: EpsFn
    eps_uncond: EpsFn


def bind(model: Denoiser, features: torch.Tensor, frames: int, prior_mel: Optional[torch.Tensor] = None,
         speaker: Optional[torch.Tensor] = None, lengths: Optional[torch.Tensor] = None) -> BoundDenoiser:
    """Pre-compute both conditionings once and return the callables :func:`l2s.diffusion.sample` takes."""
    with torch.no_grad():
        cond = model.condition(features, frames, prior_mel, speaker, lengths, drop_video=False)
        null = model.condition(features, frames, prior_mel, speaker, lengths, drop_video=True)
    return BoundDenoiser(eps_cond=lambda x, t: model.denoise(x, t, cond),
                         eps_uncond=lambda x, t: model.denoise(x, t, null))


def sample_mel(
    model: Denoiser,
    features: torch.Tensor,
    settings: DiffusionSettings,
    guidance: Guidance = Guidance(),
    prior_mel: Optional[torch.Tensor] = None,
    speaker: Optional[torch.Tensor] = None,
    asr_loss: Optional[LossFn] = None,
    noise: Optional[NoiseSource] = None,
    on_step: Optional[Callable[[StepRecord], None]] = None,
    progress=None,
) -> SampleResult:
    """Sample mels for a batch of clips with this denoiser through the shared sampler.

    Args:
        model: the denoiser (eval mode); its own training schedule is used.
        features: ``(B, T_v, D)`` visual features (unpadded clips of equal length; B = 1 in the pipeline).
        settings: solver, steps, ``start_step`` (shallow diffusion from the noised prior), the guide's step range.
        guidance: ``w_video`` and ``w_asr``.
        prior_mel: ``(B, 80, 4 T_v)`` coarse prior mel (conditioning, and the start of shallow diffusion).
        speaker: ``(B, E)`` speaker embedding or None.
        asr_loss: ``(x, t) -> scalar`` guide loss toward the text
            (:func:`l2s.models.guide.ctc.guidance_loss`), or None.
        noise: random draws (:class:`~l2s.diffusion.sampler.GaussianNoise` with a seed for reproducibility).
        on_step: per-step trace callback; progress: wraps the list of steps.

    Returns:
        ``SampleResult`` with ``mel (B, 80, 4 T_v)`` in model space and its network-evaluation counts.
    """
    device = next(model.parameters()).device
    frames = features.shape[1] * MEL_FRAMES_PER_VIDEO_FRAME
    bound = bind(model, features.to(device), frames, None if prior_mel is None else prior_mel.to(device), speaker)
    return sample(bound.eps_cond, model.schedule(), (features.shape[0], N_MELS, frames), settings, guidance,
                  eps_uncond=bound.eps_uncond, asr_loss=asr_loss, prior=prior_mel, noise=noise, on_step=on_step,
                  device=device, progress=progress)


class DenoiserGenerator:
    """The pipeline's generator stage for a :class:`Denoiser`: VSR features, the coarse prior mel and an
    optional speaker embedding in; the denoiser's training schedule and these sampler settings."""

    arch = "denoiser"
    needs_features = True
    batches = True
    needs_alignment = False

    def __init__(self, model: Denoiser, settings: DiffusionSettings = DiffusionSettings()):
        self.model, self.settings = model, settings
        self.schedule: Optional[NoiseScheduleConfig] = model.config.schedule
        self.takes_speaker = model.config.speaker_dim > 0

    def with_settings(self, settings: DiffusionSettings) -> "DenoiserGenerator":
        return DenoiserGenerator(self.model, settings)

    def sample(self, inputs: GeneratorInputs, guidance: Guidance, asr_loss: Optional[LossFn],
               noise: Optional[NoiseSource]) -> SampleResult:
        if inputs.features is None:
            raise ModelError("the denoiser needs the VSR features: the pipeline has no lip reader (vsr)")
        settings = self.settings
        if settings.start_step is not None and inputs.prior_mel is None:
            settings = replace(settings, start_step=None)
        speaker = inputs.speaker if self.takes_speaker else None
        return sample_mel(self.model, inputs.features, settings, guidance, prior_mel=inputs.prior_mel,
                          speaker=speaker, asr_loss=asr_loss, noise=noise)


ARCHITECTURE = Architecture(family="generator", name="denoiser", model_cls=Denoiser, config_cls=DenoiserConfig,
                            presets=DENOISER_PRESETS, stage=DenoiserGenerator, settings_cls=DiffusionSettings,
                            description="DiffWave-style diffusion denoiser on the lip reader's features and the "
                                        "coarse prior mel")
