"""The contract mel spectrogram: one implementation, in torch, batched and differentiable.

Recipe (LipVoicer's Tacotron-2 front-end, see ``l2s.config.MelConfig``): peak-normalise
the waveform to ``1/1.1``; STFT with a periodic Hann window, centred with reflect
padding; magnitude (power 1); Slaney-scale, Slaney-normalised mel filterbank;
``log_mel = ln(max(mel, 1e-5))``; model space ``mel_norm = log_mel / 5.756463 + 1``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Optional

import numpy as np
import torch
from torch import nn

from l2s.config import CONTRACT, AudioConfig, MelConfig


def _hz_to_mel_slaney(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3
    mel = hz / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    log_region = hz >= min_log_hz
    mel = np.where(log_region, min_log_mel + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep, mel)
    return mel


def _mel_to_hz_slaney(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3
    hz = f_sp * mel
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), hz)


def slaney_mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    """Slaney mel filterbank with area normalisation, shape ``(n_mels, n_fft // 2 + 1)``, float32.

    Same construction as ``librosa.filters.mel(htk=False, norm="slaney")``.
    """
    fft_freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    mel_points = _mel_to_hz_slaney(
        np.linspace(_hz_to_mel_slaney(f_min), _hz_to_mel_slaney(f_max), n_mels + 2)
    )
    widths = np.diff(mel_points)
    ramps = mel_points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_points[2:] - mel_points[:-2]))[:, None]
    return weights.astype(np.float32)


def mel_band_centres_hz(mel: MelConfig = CONTRACT.mel) -> np.ndarray:
    """``(n_mels,)`` centre frequency in Hz of each contract mel band (for a figure's frequency axis)."""
    points = _mel_to_hz_slaney(np.linspace(_hz_to_mel_slaney(mel.f_min), _hz_to_mel_slaney(mel.f_max), mel.n_mels + 2))
    return points[1:-1]


def peak_normalize(wav: torch.Tensor, peak: float = CONTRACT.mel.peak, eps: float = 1e-8) -> torch.Tensor:
    """Scale each waveform so that its largest absolute sample is ``peak``.

    Args:
        wav: ``(..., N)`` waveforms.
    """
    return wav * (peak / wav.abs().amax(dim=-1, keepdim=True).clamp_min(eps))


class MelSpectrogram(nn.Module):
    """Waveform ``(B, N)`` or ``(N,)`` to natural-log mel ``(B, 80, 1 + N // 160)``.

    The input is used as it is (no peak normalisation): call :func:`peak_normalize`
    first, or use :func:`wav_to_mel` which does both.
    """

    def __init__(self, mel: MelConfig = CONTRACT.mel, audio: AudioConfig = CONTRACT.audio):
        super().__init__()
        self.mel = mel
        self.register_buffer("window", torch.hann_window(mel.win_length, periodic=True), persistent=False)
        fbank = slaney_mel_filterbank(audio.sample_rate, mel.n_fft, mel.n_mels, mel.f_min, mel.f_max)
        self.register_buffer("filterbank", torch.from_numpy(fbank), persistent=False)

    def magnitude(self, wav: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` to STFT magnitude ``(B, n_fft // 2 + 1, frames)``."""
        spec = torch.stft(
            wav,
            n_fft=self.mel.n_fft,
            hop_length=self.mel.hop_length,
            win_length=self.mel.win_length,
            window=self.window.to(wav.dtype),
            center=True,
            # Reflect padding needs more than n_fft / 2 samples; tiny clips get zeros instead.
            pad_mode="reflect" if wav.shape[-1] > self.mel.n_fft // 2 else "constant",
            return_complex=True,
        )
        # sqrt(re^2 + im^2) with a zero-safe gradient (|z| has none at 0).
        return torch.sqrt(spec.real.square() + spec.imag.square() + 1e-18)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        squeeze = wav.dim() == 1
        if squeeze:
            wav = wav.unsqueeze(0)
        mel = torch.matmul(self.filterbank.to(wav.dtype), self.magnitude(wav))
        log_mel = torch.log(torch.clamp(mel, min=self.mel.log_floor))
        return log_mel.squeeze(0) if squeeze else log_mel


def normalize_log_mel(log_mel: torch.Tensor, mel: MelConfig = CONTRACT.mel) -> torch.Tensor:
    """Natural-log mel to model space (``-1`` at the floor)."""
    return log_mel / mel.norm_scale + 1.0


def denormalize_mel(mel_norm: torch.Tensor, mel: MelConfig = CONTRACT.mel) -> torch.Tensor:
    """Model-space mel back to natural-log mel (what HiFi-GAN-style vocoders take)."""
    return (mel_norm - 1.0) * mel.norm_scale


@lru_cache(maxsize=4)
def _module(device: str) -> MelSpectrogram:
    return MelSpectrogram().to(device)


def wav_to_mel(wav: torch.Tensor, normalized: bool = True, peak: Optional[float] = CONTRACT.mel.peak) -> torch.Tensor:
    """The contract mel of a waveform: peak-normalise, log-mel, optionally model space.

    Args:
        wav: ``(B, N)`` or ``(N,)`` float waveform at the contract sample rate.
        normalized: return ``mel_norm`` (model space) rather than the natural-log mel.
        peak: peak level to normalise to first; ``None`` uses the waveform as it is.

    Returns:
        ``(B, 80, 1 + N // 160)`` (or without the batch axis for 1-D input).
    """
    if peak is not None:
        wav = peak_normalize(wav, peak)
    log_mel = _module(str(wav.device))(wav)
    return normalize_log_mel(log_mel) if normalized else log_mel


def mel_mask(lengths: Optional[torch.Tensor], frames: int, batch: int, device: torch.device) -> torch.Tensor:
    """``(B, 1, T)`` float mask, 1 on the valid frames of a padded mel batch (all ones when ``lengths`` is None)."""
    if lengths is None:
        return torch.ones(batch, 1, frames, device=device)
    return (torch.arange(frames, device=device)[None] < lengths.to(device)[:, None]).float()[:, None]
