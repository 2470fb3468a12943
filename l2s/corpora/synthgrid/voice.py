"""WORLD (pyworld) voice transforms: F0 scale, vocal-tract length warp, speaking rate.

A word is analysed once per base voice (Harvest F0, CheapTrick envelope,
D4C aperiodicity, 5 ms frames); a sentence is the concatenation of its words'
parameters with pauses, transformed per speaker and per clip, then resynthesised
once. Timing stays exact: every transform maps frame indices, and phoneme
intervals are mapped the same way by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from l2s.config import CONTRACT, SAMPLE_RATE
from l2s.features.pitch import voiced_runs

FRAME_PERIOD_MS = 5.0
FRAME_RATE = 1000.0 / FRAME_PERIOD_MS  # WORLD frames per second
_SILENT_ENVELOPE = 1e-12  # power spectrum of a pause: inaudible but finite (WORLD takes logs)


@dataclass(frozen=True)
class WorldParams:
    """WORLD parameters of a stretch of speech.

    Attributes:
        f0: (F,) Hz, 0 where unvoiced.
        sp: (F, B) spectral envelope (power), B = fft_size // 2 + 1.
        ap: (F, B) aperiodicity in [0, 1].
    """

    f0: np.ndarray
    sp: np.ndarray
    ap: np.ndarray

    @property
    def num_frames(self) -> int:
        return len(self.f0)


def analyse(wav: np.ndarray) -> WorldParams:
    """(N,) float at the contract rate -> float32 WORLD parameters at 5 ms."""
    from l2s.extras import import_pyworld
    pyworld = import_pyworld()

    x = np.ascontiguousarray(wav, dtype=np.float64)
    # Harvest, not DIO: DIO's voicing decisions drop the onsets of voiced stretches, which
    # then resynthesise as whisper-like noise and cost a lot of intelligibility.
    f0, t = pyworld.harvest(x, SAMPLE_RATE, f0_floor=CONTRACT.f0.f0_floor, f0_ceil=CONTRACT.f0.f0_ceil,
                            frame_period=FRAME_PERIOD_MS)
    f0 = _clean_f0(f0)
    sp = pyworld.cheaptrick(x, f0, t, SAMPLE_RATE)
    ap = pyworld.d4c(x, f0, t, SAMPLE_RATE)
    return WorldParams(f0.astype(np.float32), sp.astype(np.float32), ap.astype(np.float32))


def _clean_f0(f0: np.ndarray, kernel: int = 5) -> np.ndarray:
    """Median-filter F0 inside each voiced run (removes single-frame octave jumps); drop runs under 20 ms."""
    from scipy.signal import medfilt

    out = np.zeros_like(f0)
    for start, end in voiced_runs(f0 > 0):
        if (end - start) * FRAME_PERIOD_MS >= 20:
            k = min(kernel, (end - start) // 2 * 2 - 1)
            out[start:end] = medfilt(f0[start:end], k) if k >= 3 else f0[start:end]
    return out


def silence(num_frames: int, bins: int) -> WorldParams:
    """``num_frames`` frames of silence (unvoiced, near-zero envelope, fully aperiodic)."""
    return WorldParams(np.zeros(num_frames, np.float32), np.full((num_frames, bins), _SILENT_ENVELOPE, np.float32),
                       np.ones((num_frames, bins), np.float32))


def concatenate(parts: "list[WorldParams]") -> WorldParams:
    return WorldParams(np.concatenate([p.f0 for p in parts]), np.concatenate([p.sp for p in parts]),
                       np.concatenate([p.ap for p in parts]))


def stretch(p: WorldParams, factor: float) -> WorldParams:
    """Time-stretch by ``factor`` (> 1 is slower): frame ``j`` of the output reads frame ``j / factor``.

    Envelopes are interpolated linearly; F0 keeps the voicing of the nearest frame
    and interpolates in voiced stretches only, so no voicing appears from nothing.
    """
    n_out = max(1, int(round(p.num_frames * factor)))
    pos = np.minimum(np.arange(n_out) / factor, p.num_frames - 1)
    i0 = np.floor(pos).astype(int)
    i1 = np.minimum(i0 + 1, p.num_frames - 1)
    w = (pos - i0).astype(np.float32)[:, None]
    sp = p.sp[i0] * (1 - w) + p.sp[i1] * w
    ap = p.ap[i0] * (1 - w) + p.ap[i1] * w
    nearest = np.rint(pos).astype(int)
    both = (p.f0[i0] > 0) & (p.f0[i1] > 0)
    f0 = np.where(both, p.f0[i0] * (1 - w[:, 0]) + p.f0[i1] * w[:, 0], p.f0[nearest] * (p.f0[nearest] > 0))
    return WorldParams(f0.astype(np.float32), sp.astype(np.float32), ap.astype(np.float32))


def warp_frequency(p: WorldParams, alpha: float) -> WorldParams:
    """Scale the frequency axis of the envelope and aperiodicity by ``alpha``.

    ``alpha > 1`` moves formants up (a shorter vocal tract), ``alpha < 1`` down:
    the output at frequency ``f`` reads the input at ``f / alpha``.
    """
    bins = p.sp.shape[1]
    src = np.minimum(np.arange(bins) / alpha, bins - 1)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, bins - 1)
    w = (src - i0).astype(np.float32)
    sp = p.sp[:, i0] * (1 - w) + p.sp[:, i1] * w
    ap = p.ap[:, i0] * (1 - w) + p.ap[:, i1] * w
    return WorldParams(p.f0, sp.astype(np.float32), ap.astype(np.float32))


def scale_f0(p: WorldParams, factor: "float | np.ndarray") -> WorldParams:
    """Multiply F0 by ``factor`` (a scalar or an (F,) contour); unvoiced frames stay 0."""
    f0 = np.clip(p.f0 * factor, CONTRACT.f0.f0_floor, CONTRACT.f0.f0_ceil) * (p.f0 > 0)
    return WorldParams(f0.astype(np.float32), p.sp, p.ap)


def synthesize(p: WorldParams) -> np.ndarray:
    """WORLD parameters -> (N,) float32 waveform at the contract rate."""
    from l2s.extras import import_pyworld
    pyworld = import_pyworld()

    wav = pyworld.synthesize(p.f0.astype(np.float64), np.ascontiguousarray(p.sp, np.float64),
                             np.ascontiguousarray(p.ap, np.float64), SAMPLE_RATE, FRAME_PERIOD_MS)
    return wav.astype(np.float32)


def normalize_loudness(wav: np.ndarray, target_dbfs: float = -23.0, peak: float = 0.95) -> np.ndarray:
    """Scale so that the RMS of the active speech (10 ms frames within 40 dB of the loudest) is ``target_dbfs``.

    A gated RMS in the spirit of ITU-R BS.1770 (speech has no low-frequency
    content for K-weighting to matter much); the peak is then limited to ``peak``.
    """
    hop = SAMPLE_RATE // 100
    n = len(wav) // hop
    if n == 0:
        return wav.astype(np.float32)
    power = np.mean(wav[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1)
    if power.max() <= 0:
        return wav.astype(np.float32)
    active = power > power.max() * 1e-4
    gain = 10 ** (target_dbfs / 20) / np.sqrt(power[active].mean())
    gain = min(gain, peak / max(np.abs(wav).max(), 1e-9))
    return (wav * gain).astype(np.float32)
