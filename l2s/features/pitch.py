"""F0 and voicing with WORLD (pyworld), at the contract frame rate (100 Hz).

The frame grid matches the contract mel: frame ``k`` is centred on sample
``k * hop``, and a clip of ``N`` samples has ``1 + N // hop`` frames.

WORLD's trackers read a voice with a weak fundamental and strong even harmonics an octave
too high: the harmonics at 2, 4, 6... x F0 look like a full series at twice the pitch. The
odd harmonics (1.5, 2.5... x the reading) are still there, only weaker. :func:`extract_f0`
therefore checks each voiced frame for that subharmonic series (the subharmonic-to-harmonic
ratio of Sun, 2002) and then makes the clip's octave consistent, see :func:`octave_check`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Literal, Optional, Tuple

import numpy as np

from l2s.config import CONTRACT, AudioConfig, F0Config

#: Names what :func:`extract_f0` computes by default; a prepared corpus records it, so targets
#: from an older tracker are recomputed (``l2s prepare`` on the same folder).
F0_TRACKER = "world-dio-stonemask+octave-check/1"
#: Analysis window of the subharmonic check: 64 ms, four periods of the contract's F0 floor.
OCTAVE_WINDOW = 1024
#: FFT size of that check (zero-padded: 3.9 Hz bins at 16 kHz).
OCTAVE_NFFT = 4096
#: Harmonics of the reading compared with the odd subharmonics between them.
OCTAVE_HARMONICS = 8
#: A spectral peak is searched within this fraction of its nominal frequency (jitter, vibrato).
OCTAVE_PEAK_TOLERANCE = 0.03
#: A frame whose odd subharmonics' energy, relative to its harmonics', exceeds this (dB)
#: repeats at half the reading. Clean voices sit at -20 to -40 dB, the Piper voice of
#: SynthGRID (strong even harmonics) at -3 dB.
SUBHARMONIC_THRESHOLD_DB = -10.0
#: Frames (0.25 s) over which a frame's octave is judged: longer than the tracker's octave
#: slips, short enough to follow a pitch glide.
OCTAVE_CONTEXT_FRAMES = 25
#: A voiced run is only halved if its own subharmonics are at least this strong (dB): a clean
#: run of a second, higher voice in the clip is never moved.
RUN_EVIDENCE_DB = -20.0


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
    check_octave: bool = True,
) -> PitchTrack:
    """F0 of a mono waveform with WORLD.

    Args:
        wav: ``(N,)`` float waveform at the contract sample rate.
        method: ``"harvest"`` (robust, slow) or ``"dio"`` refined by StoneMask (fast).
        check_octave: correct readings an octave too high (:func:`octave_check`), then refine
            the corrected track with StoneMask. ``False`` gives WORLD's track as it is.

    Returns:
        A :class:`PitchTrack` with ``1 + N // hop`` frames.
    """
    from l2s.extras import import_pyworld
    pyworld = import_pyworld()

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
    if check_octave:
        checked = octave_check(x, track, audio.sample_rate, f0.hop_length, f0.f0_floor, f0.f0_ceil)
        if not np.array_equal(checked, track):
            track = pyworld.stonemask(x, checked, times, audio.sample_rate)
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


def subharmonic_energies(x: np.ndarray, track: np.ndarray, sample_rate: int,
                         hop: int) -> Tuple[np.ndarray, np.ndarray]:
    """Spectral energy at the harmonics of each frame's reading and at the odd subharmonics between them.

    Args:
        x: ``(N,)`` waveform.
        track: ``(F,)`` F0 in Hz per frame (0 where unvoiced), frame ``k`` centred on sample ``k * hop``.

    Returns:
        ``(harmonic, subharmonic)``, each ``(F,)``: the summed peak power at ``m * f`` and at
        ``(m - 1/2) * f`` for ``m = 1..OCTAVE_HARMONICS`` below 0.45 x the sample rate (0 where unvoiced).
    """
    harmonic = np.zeros(len(track))
    sub = np.zeros(len(track))
    frames = np.nonzero(track > 0)[0]
    if len(frames) == 0:
        return harmonic, sub
    half = OCTAVE_WINDOW // 2
    padded = np.pad(np.asarray(x, dtype=np.float64), (half, half + OCTAVE_WINDOW))
    starts = frames * hop
    segments = padded[starts[:, None] + np.arange(OCTAVE_WINDOW)[None, :]] * np.hanning(OCTAVE_WINDOW)
    power = np.abs(np.fft.rfft(segments, OCTAVE_NFFT, axis=1)) ** 2
    bin_hz = sample_rate / OCTAVE_NFFT
    f = track[frames].astype(np.float64)
    rows = np.arange(len(frames))[:, None]
    for m in range(1, OCTAVE_HARMONICS + 1):
        for freq, out in ((m * f, harmonic), ((m - 0.5) * f, sub)):
            # the strongest bin within the tolerance of each frame's nominal frequency
            width = np.maximum(OCTAVE_PEAK_TOLERANCE * freq, 1.5 * bin_hz)
            lo = ((freq - width) / bin_hz).astype(np.int64)
            hi = ((freq + width) / bin_hz).astype(np.int64) + 1
            span = lo[:, None] + np.arange(int((hi - lo).max()))[None, :]
            inside = span < hi[:, None]
            peak = np.where(inside, power[rows, np.minimum(span, power.shape[1] - 1)], -np.inf).max(axis=1)
            below = freq < 0.45 * sample_rate
            out[frames[below]] += peak[below]
    return harmonic, sub


def voiced_runs(voiced: np.ndarray) -> Iterator[Tuple[int, int]]:
    """``[start, end)`` of each run of consecutive voiced (true) frames of a ``(F,)`` boolean array."""
    edges = np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]]))
    yield from zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0])


def _ratio_db(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(num, 1e-30) / np.maximum(den, 1e-30))


def octave_check(x: np.ndarray, track: np.ndarray, sample_rate: int, hop: int,
                 f0_floor: float, f0_ceil: float) -> np.ndarray:
    """Correct octave errors of a WORLD track; one voice per clip is assumed.

    1. Each voiced frame whose odd subharmonics are within :data:`SUBHARMONIC_THRESHOLD_DB`
       of its harmonics votes for half its reading, the others for the reading.
    2. The clip's pitch level is the median vote (log scale).
    3. A voiced run whose median reading lies more than half an octave above that level, and
       whose own subharmonics are stronger than :data:`RUN_EVIDENCE_DB`, is moved down an octave.
    4. Within the run, each frame is put in the octave nearest the run's local pitch: the readings
       median-filtered over :data:`OCTAVE_CONTEXT_FRAMES` (which follows a glide but not the
       tracker's short octave slips), moved as in 3. A frame already read an octave below its
       run is not halved again.

    Returns:
        ``(F,)`` corrected F0 in Hz; unvoiced frames stay 0, values stay within the floor and ceiling.
    """
    from scipy.ndimage import median_filter

    track = np.asarray(track, dtype=np.float64)
    voiced = track > 0
    if not voiced.any():
        return track.copy()
    harmonic, sub = subharmonic_energies(x, track, sample_rate, hop)
    log_f = np.zeros_like(track)
    log_f[voiced] = np.log2(track[voiced])
    halves = (_ratio_db(sub, harmonic) > SUBHARMONIC_THRESHOLD_DB) & (track / 2 >= f0_floor)
    level = float(np.median((log_f - halves)[voiced]))
    lo, hi = np.log2(f0_floor), np.log2(f0_ceil)
    out = track.copy()
    for start, end in voiced_runs(voiced):
        run = log_f[start:end]
        run_level = float(np.median(run))
        local = median_filter(run, size=min(OCTAVE_CONTEXT_FRAMES, end - start), mode="nearest")
        evidence = _ratio_db(sub[start:end].sum(), harmonic[start:end].sum())
        if run_level - level > 0.5 and evidence > RUN_EVIDENCE_DB and run_level - 1 >= lo:
            local = local - 1
        shift = np.clip(np.round(local - run), -1, 1)
        shift = np.where((shift < 0) & (run < run_level - 0.5), 0, shift)
        shift = np.where(run + shift < lo, shift + 1, shift)
        shift = np.where(run + shift > hi, shift - 1, shift)
        out[start:end] = track[start:end] * np.exp2(shift)  # exact: a frame left alone keeps its value
    return out
