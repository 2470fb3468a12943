"""Differentiable harmonic-plus-noise synthesis (DDSP) and the coarse prior built on it: the ``ddsp``
architecture of the ``prior`` stage (:data:`ARCHITECTURE`).

Reimplemented from the paper (Engel et al., "DDSP: Differentiable Digital Signal
Processing", ICLR 2020) as NaturalL2S uses it: an additive synthesiser of the F0's
harmonics plus white noise through a time-varying FIR filter. Controls are given
per frame at the F0 rate (hop 160, frame ``k`` centred on sample ``k * hop``) and
the output has exactly ``T_m * hop`` samples.

* Harmonics: the F0 and amplitudes are interpolated linearly between frame centres;
  the phase is the running sum of ``2 pi f0 / sr`` at the sample rate, accumulated per
  frame in float64 and wrapped to ``[0, 2 pi)`` so float32 keeps its precision on long
  clips. A harmonic whose frequency reaches Nyquist anywhere in a frame-to-frame segment
  is dropped for that segment (faded out over the last 5% of the band, so it leaves
  without a click) and the distribution is renormalised over the rest.
* Noise: each frame's magnitudes (linear bands from 0 Hz to Nyquist) become a
  zero-phase, Hann-windowed FIR by frequency sampling; hop-long blocks of white noise
  are convolved with it by FFT and overlap-added (the filter's delay is removed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from l2s.arch import Architecture
from l2s.config import HOP_LENGTH, MEL_FRAMES_PER_VIDEO_FRAME, SAMPLE_RATE
from l2s.features.mel import wav_to_mel
from l2s.models.prior.f0 import (F0_MODEL_BASE, F0_MODEL_MICRO, F0_MODEL_TINY, ConvBlock, F0ModelConfig, F0Output,
                                 F0Predictor, SpeakerConditioning, continuous_f0, decode_f0, length_mask,
                                 match_f0_level, upsample_frames)

TWO_PI = 2.0 * math.pi
LOG_F0_CENTRE = 5.0  # ln(148 Hz): centres the decoder's log-F0 input in the speech range


@dataclass(frozen=True)
class DDSPConfig:
    """Control network of the harmonic-plus-noise synthesiser (:class:`DDSPDecoder`).

    Attributes:
        feature_dim: width ``D`` of the visual features it reads.
        hidden_dim: channels of the network (at the mel frame rate).
        num_layers: residual dilated conv blocks.
        kernel_size: temporal kernel of those blocks (odd).
        n_harmonics: harmonics ``K`` of the F0 (those at or above Nyquist are dropped per frame).
        n_noise_bands: filter magnitudes ``F`` of the noise, linear from 0 Hz to Nyquist.
        speaker_dim: width ``E`` of the optional speaker embedding.
        dropout: dropout inside the blocks.
    """

    feature_dim: int = 256
    hidden_dim: int = 128
    num_layers: int = 4
    kernel_size: int = 5
    n_harmonics: int = 64
    n_noise_bands: int = 65
    speaker_dim: int = 256
    dropout: float = 0.1


@dataclass(frozen=True)
class CoarsePriorConfig:
    """F0 predictor and DDSP decoder together (:class:`CoarsePrior`)."""

    f0: F0ModelConfig = field(default_factory=F0ModelConfig)
    ddsp: DDSPConfig = field(default_factory=DDSPConfig)


# feature_dim follows the VSR presets' d_model (tiny 128, base 768, micro 32): they read its features.
DDSP_TINY = DDSPConfig(feature_dim=128)
DDSP_BASE = DDSPConfig(feature_dim=768, hidden_dim=256, num_layers=6, n_harmonics=100)
DDSP_MICRO = DDSPConfig(feature_dim=32, hidden_dim=16, num_layers=1, n_harmonics=16, n_noise_bands=17)
COARSE_PRIOR_TINY = CoarsePriorConfig(f0=F0_MODEL_TINY, ddsp=DDSP_TINY)
COARSE_PRIOR_BASE = CoarsePriorConfig(f0=F0_MODEL_BASE, ddsp=DDSP_BASE)
COARSE_PRIOR_MICRO = CoarsePriorConfig(f0=F0_MODEL_MICRO, ddsp=DDSP_MICRO)
COARSE_PRIOR_PRESETS = {"tiny": COARSE_PRIOR_TINY, "base": COARSE_PRIOR_BASE, "micro": COARSE_PRIOR_MICRO}


def _segment_ramp(hop: int, like: torch.Tensor) -> torch.Tensor:
    """``(hop,)`` interpolation weights ``n / hop`` for the samples of one frame-to-frame segment."""
    return torch.arange(hop, dtype=like.dtype, device=like.device) / hop


def _next_frame(x: torch.Tensor) -> torch.Tensor:
    """Frame ``k + 1`` beside frame ``k`` along dim 1, the last frame held: ``(B, T, ...)``."""
    return torch.cat([x[:, 1:], x[:, -1:]], dim=1)


def upsample_linear(x: torch.Tensor, hop: int = HOP_LENGTH) -> torch.Tensor:
    """Frame-rate controls ``(B, T)`` to the sample rate ``(B, T * hop)``.

    Sample ``n`` lies between the centres of frames ``n // hop`` and ``n // hop + 1``;
    after the last centre the last value is held.
    """
    w = _segment_ramp(hop, x)
    return (x[..., None] + (_next_frame(x) - x)[..., None] * w).reshape(x.shape[0], -1)


def accumulate_phase(f0_hz: torch.Tensor, sample_rate: int = SAMPLE_RATE, hop: int = HOP_LENGTH) -> torch.Tensor:
    """Instantaneous phase ``(B, T, hop)`` in ``[0, 2 pi)`` of a frame-rate F0 ``(B, T)``.

    The F0 is interpolated to the sample rate and integrated there (phase starts at 0).
    Within a frame the sum stays small (float32 is exact enough); the per-frame offsets
    are summed in float64 and wrapped, which keeps the precision on clips of any length.
    """
    w = _segment_ramp(hop, f0_hz)
    f0_s = f0_hz[..., None] + (_next_frame(f0_hz) - f0_hz)[..., None] * w  # (B, T, hop)
    omega = f0_s * (TWO_PI / sample_rate)
    local = torch.cumsum(omega, dim=-1) - omega  # phase since the frame's first sample
    totals = omega.sum(dim=-1).double()
    offsets = torch.remainder(torch.cumsum(totals, dim=1) - totals, TWO_PI).to(omega.dtype)
    return torch.remainder(offsets[..., None] + local, TWO_PI)


def nyquist_gain(freq_hz: torch.Tensor, sample_rate: int = SAMPLE_RATE, taper: float = 0.05) -> torch.Tensor:
    """Gain of a harmonic at ``freq_hz``: 1 below ``(1 - taper) * nyquist``, a raised-cosine fade to 0 at Nyquist.

    Exactly 0 at and above Nyquist (nothing folds back); the fade keeps a harmonic that
    approaches Nyquist from dropping out with a click. ``taper=0`` is a hard cut.
    """
    nyquist = sample_rate / 2.0
    if taper <= 0:
        return (freq_hz < nyquist).to(freq_hz.dtype)
    start = (1.0 - taper) * nyquist
    x = ((freq_hz - start) / (nyquist - start)).clamp(0.0, 1.0)
    return torch.where(freq_hz < nyquist, 0.5 * (1.0 + torch.cos(math.pi * x)), torch.zeros_like(x))


def harmonic_synth(
    f0_hz: torch.Tensor,
    amplitude: torch.Tensor,
    harmonic_distribution: torch.Tensor,
    sample_rate: int = SAMPLE_RATE,
    hop: int = HOP_LENGTH,
    nyquist_taper: float = 0.05,
) -> torch.Tensor:
    """Additive synthesis of the F0's harmonics, free of aliasing.

    Args:
        f0_hz: ``(B, T)`` fundamental in Hz per frame.
        amplitude: ``(B, T)`` overall amplitude per frame (linear).
        harmonic_distribution: ``(B, T, K)`` non-negative weights of harmonics ``1..K``
            (renormalised to sum to 1 over the harmonics kept below Nyquist).
        sample_rate: output rate in Hz.
        hop: samples per frame.
        nyquist_taper: fraction of the band below Nyquist over which harmonics fade out
            (see :func:`nyquist_gain`).

    Returns:
        ``(B, T * hop)`` waveform.
    """
    b, t, k = harmonic_distribution.shape
    if f0_hz.shape != (b, t) or amplitude.shape != (b, t):
        raise ValueError(f"f0 {tuple(f0_hz.shape)} and amplitude {tuple(amplitude.shape)} must be (B, T) = {(b, t)}")
    numbers = torch.arange(1, k + 1, dtype=f0_hz.dtype, device=f0_hz.device)
    # Between two frame centres F0 is linear, so a harmonic's highest frequency in that
    # segment is at one end: gating both ends by it keeps the whole segment below Nyquist.
    seg_f0_max = torch.maximum(f0_hz, _next_frame(f0_hz)).detach()
    gain = nyquist_gain(numbers * seg_f0_max[..., None], sample_rate, nyquist_taper).to(harmonic_distribution.dtype)
    # Harmonics silent everywhere in the batch cost sines for nothing: drop them (exact).
    audible = torch.nonzero(gain.flatten(0, -2).amax(dim=0))
    k_eff = int(audible.max()) + 1 if audible.numel() else 1
    if k_eff < k:
        numbers, gain, harmonic_distribution = numbers[:k_eff], gain[..., :k_eff], harmonic_distribution[..., :k_eff]

    def weights(dist: torch.Tensor, amp: torch.Tensor) -> torch.Tensor:
        kept = dist * gain
        return amp[..., None] * kept / kept.sum(dim=-1, keepdim=True).clamp_min(1e-7)

    start = weights(harmonic_distribution, amplitude)  # segment start (frame k), under segment k's gain
    end = weights(_next_frame(harmonic_distribution), _next_frame(amplitude))  # segment end (frame k + 1)
    phase = accumulate_phase(f0_hz, sample_rate, hop)  # (B, T, hop)
    sines = torch.sin(numbers[:, None] * phase[..., None, :])  # (B, T, K, hop)
    # Amplitudes are linear in the ramp w, so the sum over harmonics is one small matmul
    # per frame: (2, K) @ (K, hop) gives the start-weighted and the slope-weighted sums.
    coeffs = torch.stack([start, end - start], dim=-2)  # (B, T, 2, K)
    parts = torch.matmul(coeffs, sines)  # (B, T, 2, hop)
    w = _segment_ramp(hop, f0_hz)
    return (parts[..., 0, :] + parts[..., 1, :] * w).reshape(b, t * hop)


def noise_filter_ir(filter_magnitudes: torch.Tensor, window_size: Optional[int] = None) -> torch.Tensor:
    """Zero-phase frequency-sampled FIR filters, made causal and windowed.

    Args:
        filter_magnitudes: ``(B, T, F)`` linear gains at ``F`` bands from 0 Hz to Nyquist.
        window_size: taps kept (default ``2 * (F - 1)``); the delay is ``window_size // 2``.

    Returns:
        ``(B, T, window_size)`` impulse responses, centred on tap ``window_size // 2``.
    """
    n_bands = filter_magnitudes.shape[-1]
    ir = torch.fft.irfft(filter_magnitudes, dim=-1)  # real spectrum: a zero-phase filter centred on tap 0
    n_ir = ir.shape[-1]  # 2 * (F - 1)
    size = window_size or n_ir
    if not 1 < size <= n_ir:
        raise ValueError(f"window_size must be in 2..{n_ir} for {n_bands} bands, got {size}")
    ir = torch.roll(ir, shifts=size // 2, dims=-1)[..., :size]
    window = torch.hann_window(size, periodic=False, dtype=ir.dtype, device=ir.device)
    return ir * window


def filtered_noise(
    filter_magnitudes: torch.Tensor,
    hop: int = HOP_LENGTH,
    window_size: Optional[int] = None,
    generator: Union[torch.Generator, Sequence[torch.Generator], None] = None,
) -> torch.Tensor:
    """White noise in ``[-1, 1)`` shaped by a time-varying FIR filter, one filter per frame.

    Args:
        filter_magnitudes: ``(B, T, F)`` linear gains at ``F`` bands from 0 Hz to Nyquist.
        hop: samples per frame.
        window_size: FIR length (see :func:`noise_filter_ir`).
        generator: random source (None: torch's global one), or one per batch item (each item then gets
            the noise it would get alone: a batch of chunks reproduces the chunks run one by one).

    Returns:
        ``(B, T * hop)`` waveform; frame ``k``'s filter shapes samples ``k * hop`` to ``(k + 1) * hop``.
    """
    b, t, _ = filter_magnitudes.shape
    ir = noise_filter_ir(filter_magnitudes, window_size)
    size = ir.shape[-1]
    if isinstance(generator, (list, tuple)):
        if len(generator) != b:
            raise ValueError(f"{len(generator)} generators for a batch of {b}")
        noise = torch.cat([torch.rand(1, t, hop, generator=g, dtype=ir.dtype, device=ir.device) for g in generator])
    else:
        noise = torch.rand(b, t, hop, generator=generator, dtype=ir.dtype, device=ir.device)
    noise = noise * 2.0 - 1.0
    conv_len = hop + size - 1
    n_fft = 1 << (conv_len - 1).bit_length()
    blocks = torch.fft.irfft(torch.fft.rfft(noise, n_fft) * torch.fft.rfft(ir, n_fft), n_fft)[..., :conv_len]
    # Overlap-add: a block of conv_len samples spans ceil(conv_len / hop) hops.
    n_parts = -(-conv_len // hop)
    blocks = F.pad(blocks, (0, n_parts * hop - conv_len)).reshape(b, t, n_parts, hop)
    out = blocks.new_zeros(b, t + n_parts, hop)
    for p in range(n_parts):
        out[:, p:p + t] = out[:, p:p + t] + blocks[:, :, p]
    delay = size // 2
    return out.reshape(b, -1)[:, delay:delay + t * hop]


def exp_sigmoid(
    x: torch.Tensor, exponent: float = 10.0, max_value: float = 2.0, threshold: float = 1e-7
) -> torch.Tensor:
    """DDSP's positive output nonlinearity: ``max * sigmoid(x) ** ln(exponent) + threshold``."""
    return max_value * torch.sigmoid(x) ** math.log(exponent) + threshold


@dataclass(frozen=True)
class DDSPControls:
    """Synthesiser controls per frame.

    Attributes:
        amplitude: ``(B, T)`` overall harmonic amplitude.
        harmonic_distribution: ``(B, T, K)`` weights of the harmonics (sum to 1).
        noise_magnitudes: ``(B, T, F)`` noise filter gains.
    """

    amplitude: torch.Tensor
    harmonic_distribution: torch.Tensor
    noise_magnitudes: torch.Tensor


@dataclass(frozen=True)
class SynthOutput:
    """``wav = harmonic + noise``, each ``(B, T * hop)``."""

    wav: torch.Tensor
    harmonic: torch.Tensor
    noise: torch.Tensor


class HarmonicPlusNoise(nn.Module):
    """Harmonic and filtered-noise synthesis with a voicing mask (no trainable weights).

    Unvoiced frames silence the harmonic part; the noise part sounds everywhere (its
    level is a control), so unvoiced stretches are noise, never silence.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, hop: int = HOP_LENGTH):
        super().__init__()
        self.sample_rate = sample_rate
        self.hop = hop

    def forward(
        self,
        f0_hz: torch.Tensor,
        voiced: torch.Tensor,
        controls: DDSPControls,
        generator: Union[torch.Generator, Sequence[torch.Generator], None] = None,
    ) -> SynthOutput:
        """Synthesise.

        Args:
            f0_hz: ``(B, T)`` F0 in Hz (its value on unvoiced frames only steers the fade at boundaries).
            voiced: ``(B, T)`` bool or float in [0, 1].
            controls: amplitudes, harmonic distribution and noise filter.
            generator: random source of the noise, or one per batch item (see :func:`filtered_noise`).

        Returns:
            :class:`SynthOutput` of ``T * hop`` samples.
        """
        amplitude = controls.amplitude * voiced.to(controls.amplitude.dtype)
        harmonic = harmonic_synth(f0_hz, amplitude, controls.harmonic_distribution, self.sample_rate, self.hop)
        noise = filtered_noise(controls.noise_magnitudes, self.hop, generator=generator)
        return SynthOutput(wav=harmonic + noise, harmonic=harmonic, noise=noise)


class DDSPDecoder(nn.Module):
    """Visual features, log-F0 and voicing to :class:`DDSPControls` at the F0 rate."""

    def __init__(self, config: DDSPConfig = DDSPConfig()):
        super().__init__()
        self.config = config
        h = config.hidden_dim
        self.input = nn.Linear(config.feature_dim, h)
        self.pitch = nn.Linear(2, h)
        self.speaker = SpeakerConditioning(config.speaker_dim, h)
        self.blocks = nn.ModuleList(
            ConvBlock(h, config.kernel_size, dilation=2 ** (i % 4), dropout=config.dropout)
            for i in range(config.num_layers)
        )
        self.norm = nn.LayerNorm(h)
        self.head = nn.Linear(h, 1 + config.n_harmonics + config.n_noise_bands)
        with torch.no_grad():
            # Start with quiet noise so early training hears the harmonics.
            self.head.bias[1 + config.n_harmonics:] = -5.0

    def forward(
        self,
        features: torch.Tensor,
        log_f0: torch.Tensor,
        voiced: torch.Tensor,
        lengths: Optional[torch.Tensor] = None,
        speaker: Optional[torch.Tensor] = None,
    ) -> DDSPControls:
        """Predict the controls.

        Args:
            features: ``(B, T_v, D)`` visual features at 25 fps.
            log_f0: ``(B, T_m)`` natural log of F0 (any finite value on unvoiced frames).
            voiced: ``(B, T_m)`` voicing, bool or float.
            lengths: ``(B,)`` valid video frames (None: all).
            speaker: ``(B, E)`` speaker embedding or None.

        Returns:
            :class:`DDSPControls` with ``T_m = 4 * T_v`` frames.
        """
        b, t_v, _ = features.shape
        t_m = t_v * MEL_FRAMES_PER_VIDEO_FRAME
        if log_f0.shape != (b, t_m) or voiced.shape != (b, t_m):
            raise ValueError(f"log_f0 {tuple(log_f0.shape)} and voiced {tuple(voiced.shape)} must be {(b, t_m)}")
        mask = length_mask(None if lengths is None else lengths * MEL_FRAMES_PER_VIDEO_FRAME, t_m, b, features.device)
        v = voiced.to(features.dtype)
        pitch = torch.stack([(log_f0 - LOG_F0_CENTRE) * v, v], dim=-1)
        x = upsample_frames(self.input(features)) + self.pitch(pitch) + self.speaker(speaker, b)[:, None, :]
        x = x * mask[..., None]
        for block in self.blocks:
            x = block(x, mask)
        raw = self.head(self.norm(x))
        k = self.config.n_harmonics
        return DDSPControls(
            amplitude=exp_sigmoid(raw[..., 0]) * mask,
            harmonic_distribution=torch.softmax(raw[..., 1:1 + k], dim=-1),
            noise_magnitudes=exp_sigmoid(raw[..., 1 + k:]) * mask[..., None],
        )


@dataclass(frozen=True)
class PriorOutput:
    """The coarse prior of a batch.

    Attributes:
        wav: ``(B, T_m * 160)`` synthesised waveform (zero past each item's length).
        mel_norm: ``(B, 80, T_m)`` its contract mel in model space (the prior mel).
        f0: ``(B, T_m)`` F0 in Hz used for synthesis, 0 where unvoiced.
        voiced: ``(B, T_m)`` bool voicing used for synthesis.
        f0_output: the F0 predictor's raw output (for :func:`l2s.models.prior.f0.f0_loss`).
        controls: the synthesiser controls.
    """

    wav: torch.Tensor
    mel_norm: torch.Tensor
    f0: torch.Tensor
    voiced: torch.Tensor
    f0_output: F0Output
    controls: DDSPControls


class CoarsePrior(nn.Module):
    """F0 predictor + DDSP decoder + synthesiser: visual features to a prosody-bearing coarse waveform and mel."""

    def __init__(self, config: CoarsePriorConfig = CoarsePriorConfig()):
        super().__init__()
        self.config = config
        self.f0 = F0Predictor(config.f0)
        self.decoder = DDSPDecoder(config.ddsp)
        self.synth = HarmonicPlusNoise()

    def forward(
        self,
        features: torch.Tensor,
        lengths: Optional[torch.Tensor] = None,
        speaker: Optional[torch.Tensor] = None,
        f0_override: Optional[torch.Tensor] = None,
        voiced_override: Optional[torch.Tensor] = None,
        generator: Union[torch.Generator, Sequence[torch.Generator], None] = None,
        ref_log_f0: Optional[torch.Tensor] = None,
    ) -> PriorOutput:
        """Predict F0, controls, waveform and prior mel.

        Args:
            features: ``(B, T_v, D)`` visual features at 25 fps.
            lengths: ``(B,)`` valid video frames (None: all).
            speaker: ``(B, E)`` speaker embedding or None.
            f0_override: ``(B, T_m)`` F0 in Hz, 0 where unvoiced, to synthesise with instead of the
                prediction (teacher forcing with ground truth during training).
            voiced_override: ``(B, T_m)`` voicing to use (default with ``f0_override``: ``f0_override > 0``).
            generator: random source of the noise, or one per batch item (see :func:`filtered_noise`).
            ref_log_f0: ``(B,)`` pitch level of a reference recording (mean voiced log-F0): the predicted
                log-F0 is shifted to it (:func:`l2s.models.prior.f0.match_f0_level`); NaN items are left as they are.

        Returns:
            :class:`PriorOutput`. The F0 predictor is still run (its output feeds its loss),
            but the synthesiser reads its F0 detached: F0 learns from its own loss only.
        """
        f0_out = self.f0(features, lengths, speaker)
        if ref_log_f0 is not None:
            f0_out = match_f0_level(f0_out, ref_log_f0)
        if f0_override is not None:
            voiced = f0_override > 0 if voiced_override is None else voiced_override.bool()
            voiced = voiced & f0_out.mask
            # Unvoiced frames have no F0 (0 Hz); fill them with the prediction so the harmonics
            # fade out at a boundary instead of gliding down to 0 Hz while they fade.
            f0_hz = torch.where(f0_override > 0, f0_override.to(f0_out.log_f0), continuous_f0(f0_out).detach())
        else:
            _, voiced = decode_f0(f0_out)
            if voiced_override is not None:
                voiced = voiced_override.bool() & f0_out.mask
            f0_hz = continuous_f0(f0_out).detach()
        controls = self.decoder(features, f0_hz.log(), voiced, lengths, speaker)
        synth = self.synth(f0_hz, voiced, controls, generator=generator)
        t_m = f0_hz.shape[1]
        sample_mask = upsample_frames(f0_out.mask[..., None], self.synth.hop).reshape(f0_hz.shape[0], -1)
        wav = synth.wav * sample_mask
        mel_norm = wav_to_mel(wav)[..., :t_m]  # the contract mel has 1 + N // hop frames
        return PriorOutput(wav=wav, mel_norm=mel_norm, f0=f0_hz * voiced, voiced=voiced,
                           f0_output=f0_out, controls=controls)


ARCHITECTURE = Architecture(family="prior", name="ddsp", model_cls=CoarsePrior, config_cls=CoarsePriorConfig,
                            presets=COARSE_PRIOR_PRESETS,
                            description="F0 and voicing from the lips + a DDSP harmonic-plus-noise coarse prior "
                                        "(NaturalL2S)")
