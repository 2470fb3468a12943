"""F0 and voicing with WORLD (pyworld), at the contract frame rate (100 Hz).

The frame grid matches the contract mel: frame ``k`` is centred on sample
``k * hop``, and a clip of ``N`` samples has ``1 + N // hop`` frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np

from l2s.config import CONTRACT, AudioConfig, F0Config


@dataclass(frozen=True)
class PitchTrack:
    """F0 in Hz (0 where unvoiced) and the voicing decision, one value per frame."""

    f0: np.ndarray
    voiced: np.ndarray
    frame_rate: int

    @property
    def log_f0(self) -> np.ndarray:
        """Natural log of F0 where voiced, 0 elsewhere."""
        out = np.zeros_like(self.f0)
        out[self.voiced] = np.log(self.f0[self.voiced])
        return out


def num_frames(num_samples: int, hop: int = CONTRACT.f0.hop_length) -> int:
    return 1 + num_samples // hop


def extract_f0(
    wav: np.ndarray,
    method: Literal["harvest", "dio"] = "dio",
    f0: F0Config = CONTRACT.f0,
    audio: AudioConfig = CONTRACT.audio,
) -> PitchTrack:
    """F0 of a mono waveform with WORLD.

    Args:
        wav: ``(N,)`` float waveform at the contract sample rate.
        method: ``"harvest"`` (robust, slow) or ``"dio"`` refined by StoneMask (fast).

    Returns:
        A :class:`PitchTrack` with ``1 + N // hop`` frames.
    """
    import pyworld

    x = np.ascontiguousarray(np.asarray(wav, dtype=np.float64).reshape(-1))
    frame_period_ms = 1000.0 * f0.hop_length / audio.sample_rate
    if method == "harvest":
        track, times = pyworld.harvest(x, audio.sample_rate, f0_floor=f0.f0_floor, f0_ceil=f0.f0_ceil,
                                       frame_period=frame_period_ms)
    elif method == "dio":
        track, times = pyworld.dio(x, audio.sample_rate, f0_floor=f0.f0_floor, f0_ceil=f0.f0_ceil,
                                   frame_period=frame_period_ms)
        track = pyworld.stonemask(x, track, times, audio.sample_rate)
    else:
        raise ValueError(f"unknown F0 method {method!r}")
    n = num_frames(len(x), f0.hop_length)
    out = np.zeros(n, dtype=np.float32)
    m = min(n, len(track))
    out[:m] = track[:m]
    voiced = out > 0
    return PitchTrack(f0=out, voiced=voiced, frame_rate=audio.sample_rate // f0.hop_length)


def log_f0_level(wav: np.ndarray, method: Literal["harvest", "dio"] = "dio") -> Optional[float]:
    """A recording's pitch level: the mean natural-log F0 over its voiced frames (None if none is voiced)."""
    track = extract_f0(wav, method)
    return float(track.log_f0[track.voiced].mean()) if track.voiced.any() else None
