"""Training-free baseline: pseudo-inverse of the mel filterbank, then fast Griffin-Lim.

Magnitude from the natural-log contract mel by the Moore-Penrose pseudo-inverse of
the Slaney filterbank (clamped at zero), then phase by the fast Griffin-Lim
algorithm (Perraudin, Balazs & Sondergaard, 2013: "A fast Griffin-Lim algorithm"),
i.e. Griffin & Lim (1984) with a momentum term, batched in torch. The STFT is the
contract's (periodic Hann, n_fft 640, hop 160, centred).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from l2s.arch import Architecture
from l2s.config import CONTRACT, AudioConfig, MelConfig
from l2s.vocoder.base import MEL_LOG


@dataclass(frozen=True)
class GriffinLimOptions:
    """Fast Griffin-Lim settings.

    Attributes:
        n_iter: projection iterations.
        momentum: the FGLA acceleration ``alpha`` (0 is plain Griffin-Lim; 0.99 is the paper's choice).
        seed: seed of the initial random phase (each item gets the same draw, so batching
            does not change the result).
    """

    n_iter: int = 64
    momentum: float = 0.99
    seed: int = 0


class GriffinLim(nn.Module):
    """Natural-log contract mel ``(B, 80, T)`` to waveform ``(B, T * 160)``; satisfies the Vocoder protocol."""

    mel_space = MEL_LOG
    # Phase is solved per chunk, so neighbouring chunks need enough shared material
    # to agree on the overlap; more context only costs time.
    context_frames = 16

    def __init__(self, options: GriffinLimOptions = GriffinLimOptions(), mel: MelConfig = CONTRACT.mel,
                 audio: AudioConfig = CONTRACT.audio):
        super().__init__()
        from l2s.features.mel import MelSpectrogram  # the contract filterbank and window, built once

        self.options = self.config = options
        self.mel = mel
        self.sample_rate = audio.sample_rate
        self.hop_length = mel.hop_length
        spec = MelSpectrogram(mel, audio)
        self.register_buffer("window", spec.window.clone(), persistent=False)
        self.register_buffer("inverse_filterbank", torch.linalg.pinv(spec.filterbank.double()).float(),
                             persistent=False)

    def magnitude(self, log_mel: torch.Tensor) -> torch.Tensor:
        """``(B, 80, T)`` log mel to a linear STFT magnitude estimate ``(B, n_fft // 2 + 1, T)``."""
        return torch.matmul(self.inverse_filterbank, log_mel.exp()).clamp_min(0.0)

    def _stft(self, wav: torch.Tensor) -> torch.Tensor:
        return torch.stft(wav, self.mel.n_fft, self.mel.hop_length, self.mel.win_length, self.window,
                          center=True, pad_mode="constant", return_complex=True)

    def _istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        return torch.istft(spec, self.mel.n_fft, self.mel.hop_length, self.mel.win_length, self.window,
                           center=True, length=length)

    def _initial_phase(self, shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.options.seed)
        angle = torch.rand(shape[1:], generator=gen, dtype=torch.float64) * (2 * torch.pi)
        phase = torch.polar(torch.ones_like(angle), angle).to(like.device)
        return phase.to(torch.complex64 if like.dtype != torch.float64 else torch.complex128).expand(shape)

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        """``(B, 80, T)`` natural-log mel to ``(B, T * hop_length)`` waveform."""
        mag = self.magnitude(log_mel)
        frames = mag.shape[-1]
        # A centred STFT of (T - 1) * hop samples has exactly T frames; the output is then
        # rendered to T * hop samples, which the last frame's window still covers.
        inner = max((frames - 1) * self.hop_length, 1)
        spec = mag * self._initial_phase(mag.shape, mag)
        alpha = self.options.momentum
        previous = torch.zeros_like(spec)
        for _ in range(self.options.n_iter):
            rebuilt = self._stft(self._istft(spec, inner))
            # FGLA: extrapolate along the last projection step, then keep only the phase.
            accelerated = rebuilt + alpha * (rebuilt - previous) if alpha else rebuilt
            previous = rebuilt
            spec = mag * accelerated / accelerated.abs().clamp_min(1e-12)
        return self._istft(spec, frames * self.hop_length)


#: Iterations of ``griffinlim-fast``: on SynthGRID copy-synthesis 32 iterations give nearly the quality
#: of 64 (PESQ 3.46 vs 3.54, STOI 0.981 vs 0.982 on 20 test-unseen clips) at half the cost.
FAST_ITERATIONS = 32


def fast_griffin_lim() -> GriffinLim:
    """``griffinlim-fast``: fast Griffin-Lim with :data:`FAST_ITERATIONS` iterations."""
    return GriffinLim(GriffinLimOptions(n_iter=FAST_ITERATIONS))


#: Training-free: a pipeline names them in place of a vocoder directory.
ARCHITECTURES = (
    Architecture(family="vocoder", name="griffinlim", model_cls=GriffinLim, config_cls=GriffinLimOptions,
                 needs_weights=False, description="mel pseudo-inverse + fast Griffin-Lim (64 iterations)"),
    Architecture(family="vocoder", name="griffinlim-fast", model_cls=GriffinLim, config_cls=GriffinLimOptions,
                 presets={"default": GriffinLimOptions(n_iter=FAST_ITERATIONS)}, needs_weights=False,
                 description=f"fast Griffin-Lim with {FAST_ITERATIONS} iterations"),
)
