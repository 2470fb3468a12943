"""Multi-resolution STFT loss (Yamamoto et al., Parallel WaveGAN, 2020; as used to train DDSP).

At each resolution: spectral convergence ``||S_t| - |S_p||_F / ||S_t||_F`` plus the
mean absolute difference of log magnitudes; both averaged over the resolutions.
The default FFT sizes (256/512/1024) are the usual 512/1024/2048 scaled to 16 kHz.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple

import torch
from torch import nn


@dataclass(frozen=True)
class STFTLossTerms:
    """Scalar loss terms: ``total = sc_weight * spectral_convergence + mag_weight * log_magnitude``."""

    total: torch.Tensor
    spectral_convergence: torch.Tensor
    log_magnitude: torch.Tensor


class MultiResolutionSTFTLoss(nn.Module):
    """Spectral convergence + log-magnitude L1 over several STFT resolutions.

    Args:
        fft_sizes: FFT sizes, one per resolution.
        hop_sizes: hops (default: a quarter of each FFT size).
        win_sizes: Hann window lengths (default: the FFT sizes).
        sc_weight: weight of the spectral convergence term.
        mag_weight: weight of the log-magnitude term.
        eps: floor of the magnitudes (the log's domain and the gradient at 0).
    """

    def __init__(
        self,
        fft_sizes: Sequence[int] = (256, 512, 1024),
        hop_sizes: Sequence[int] = (),
        win_sizes: Sequence[int] = (),
        sc_weight: float = 1.0,
        mag_weight: float = 1.0,
        eps: float = 1e-7,
    ):
        super().__init__()
        hop_sizes = tuple(hop_sizes) or tuple(n // 4 for n in fft_sizes)
        win_sizes = tuple(win_sizes) or tuple(fft_sizes)
        if not len(fft_sizes) == len(hop_sizes) == len(win_sizes):
            raise ValueError("fft_sizes, hop_sizes and win_sizes must have the same length")
        self.resolutions: Tuple[Tuple[int, int, int], ...] = tuple(zip(fft_sizes, hop_sizes, win_sizes))
        self.sc_weight = sc_weight
        self.mag_weight = mag_weight
        self.eps = eps

    def _magnitude(self, wav: torch.Tensor, n_fft: int, hop: int, win: int) -> torch.Tensor:
        window = torch.hann_window(win, dtype=wav.dtype, device=wav.device)
        spec = torch.stft(wav, n_fft, hop_length=hop, win_length=win, window=window, center=True,
                          pad_mode="reflect" if wav.shape[-1] > n_fft // 2 else "constant", return_complex=True)
        return torch.sqrt(spec.real.square() + spec.imag.square() + self.eps ** 2)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> STFTLossTerms:
        """Compare waveforms.

        Args:
            pred: ``(B, N)`` predicted waveform.
            target: ``(B, N)`` reference waveform.

        Returns:
            :class:`STFTLossTerms` (scalars).
        """
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
        sc_total = pred.new_zeros(())
        mag_total = pred.new_zeros(())
        for n_fft, hop, win in self.resolutions:
            p = self._magnitude(pred, n_fft, hop, win)
            t = self._magnitude(target, n_fft, hop, win)
            sc_total = sc_total + torch.linalg.norm(t - p) / torch.linalg.norm(t).clamp_min(self.eps)
            mag_total = mag_total + (t.log() - p.log()).abs().mean()
        sc = sc_total / len(self.resolutions)
        mag = mag_total / len(self.resolutions)
        return STFTLossTerms(total=self.sc_weight * sc + self.mag_weight * mag, spectral_convergence=sc,
                             log_magnitude=mag)
