"""Long inputs in overlapping chunks, cut where the mouth is still, joined by an audio crossfade.

Every network of the pipeline sees one chunk at a time, so the tensors it makes (features, prior,
sampler state, mel, waveform of the chunk) are bounded by :attr:`ChunkSpec.max_frames` whatever the
duration. What grows with the duration is only the input ROI (9 KB per frame) and the output
waveform and mel (about 4 KB per frame), held as numpy arrays.

Cuts: near each nominal boundary, the frame with the least mouth motion (mean absolute difference
of consecutive ROI frames, lightly smoothed) is chosen, so words are rarely split. Two neighbours
share the ``overlap_frames`` around a cut; their audio is crossfaded there with an equal-power
(sin/cos) ramp, because the two chunks are sampled independently (uncorrelated noise), where an
equal-gain ramp would dip in loudness.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, List, Optional, Tuple

import numpy as np

from l2s.config import SAMPLES_PER_VIDEO_FRAME
from l2s.pipeline.spec import ChunkSpec

SMOOTH_FRAMES = 3


@dataclass(frozen=True)
class Chunk:
    """One piece of a long input.

    Attributes:
        start, end: frames ``[start, end)`` the networks see (overlap included).
        core_start, core_end: frames this chunk owns in the output (``[cut_left, cut_right)``).
    """

    start: int
    end: int
    core_start: int
    core_end: int

    @property
    def num_frames(self) -> int:
        return self.end - self.start


def mouth_motion(roi: np.ndarray) -> np.ndarray:
    """``(T,)`` motion per frame: mean ``|roi[t] - roi[t-1]|`` (frame 0 copies frame 1), smoothed.

    Args:
        roi: ``(T, H, W)`` uint8 mouth crops.
    """
    t = roi.shape[0]
    if t < 2:
        return np.zeros(t, dtype=np.float32)
    diff = np.empty(t, dtype=np.float32)
    # frame by frame, so no (T, H, W) float copy of a long input is ever made
    for i in range(1, t):
        diff[i] = np.abs(roi[i].astype(np.int16) - roi[i - 1].astype(np.int16)).mean()
    diff[0] = diff[1]
    kernel = np.ones(SMOOTH_FRAMES, dtype=np.float32) / SMOOTH_FRAMES
    return np.convolve(np.pad(diff, SMOOTH_FRAMES // 2, mode="edge"), kernel, mode="valid").astype(np.float32)


def plan_chunks(num_frames: int, spec: ChunkSpec, motion: Optional[np.ndarray] = None) -> List[Chunk]:
    """Split ``num_frames`` into chunks of at most ``spec.max_frames`` frames, overlap included.

    Args:
        num_frames: length of the input in video frames.
        spec: chunk sizes.
        motion: ``(num_frames,)`` mouth motion (:func:`mouth_motion`); without it, cuts are nominal.

    Returns:
        Chunks in order; cores tile ``[0, num_frames)`` exactly, neighbours overlap by
        ``spec.overlap_frames`` frames centred on each cut.
    """
    if num_frames <= spec.max_frames:
        return [Chunk(0, num_frames, 0, num_frames)]
    half = spec.overlap_frames // 2
    cuts: List[int] = []
    left = 0  # the current chunk's core start
    while True:
        lo = max(0, left - half) if cuts else 0
        if num_frames - lo <= spec.max_frames:
            break
        # the chunk [lo, cut + half) must fit in max_frames
        latest = lo + spec.max_frames - half
        earliest = max(left + half + 1, latest - spec.search_frames)
        if motion is None or earliest >= latest:
            cut = latest
        else:
            cut = earliest + int(np.argmin(motion[earliest:latest + 1]))
        cuts.append(cut)
        left = cut
    bounds = [0, *cuts, num_frames]
    chunks = []
    for i in range(len(bounds) - 1):
        core_start, core_end = bounds[i], bounds[i + 1]
        start = 0 if i == 0 else core_start - half
        end = num_frames if i == len(bounds) - 2 else core_end + half
        chunks.append(Chunk(start, end, core_start, core_end))
    return chunks


def _equal_power_fade_in(length: int) -> np.ndarray:
    t = (np.arange(length, dtype=np.float64) + 0.5) / length
    return np.sin(0.5 * np.pi * t).astype(np.float32)


@dataclass(frozen=True)
class ChunkOutput:
    """What the networks made of one chunk, on the host.

    Attributes:
        chunk: the chunk.
        text: the text its sampler was steered toward (given, or lip-read; '' if none).
        confidences: per-token confidences of a lip-read text (empty for a given text).
        mel: ``(80, 4 * chunk.num_frames)`` float32 generated mel in model space.
        f0: ``(4 * chunk.num_frames,)`` float32 F0 of the prior in Hz, or None without a prior.
        wav: ``(chunk.num_frames * 640,)`` float32 waveform.
        network_evals: denoiser plus guide evaluations the chunk took.
        timesteps: the sampler's steps.
        prior_mel: ``(80, 4 * chunk.num_frames)`` float32 mel of the prior in model space, or None.
        words: the lip-read words with when they were seen, in seconds from the chunk's first frame
            (:class:`l2s.pipeline.words.Span`; empty for a given or beam-searched text).
        alignment: the chunk's text on its timeline (:class:`l2s.align.timeline.Alignment`), or None.
        alignment_start: the frame of the whole clip where that timeline's time 0 lies.
    """

    chunk: Chunk
    text: str
    confidences: Tuple[float, ...]
    mel: np.ndarray
    f0: Optional[np.ndarray]
    wav: np.ndarray
    network_evals: int
    timesteps: Tuple[int, ...]
    prior_mel: Optional[np.ndarray] = None
    words: Tuple[Any, ...] = ()
    alignment: Optional[Any] = None
    alignment_start: int = 0


class AudioAssembler:
    """Writes chunk waveforms into one preallocated output, crossfading the overlaps.

    Args:
        num_frames: video frames of the whole input (output ``num_frames * 640`` samples).
        samples_per_frame: audio samples per video frame.
    """

    def __init__(self, num_frames: int, samples_per_frame: int = SAMPLES_PER_VIDEO_FRAME):
        self.spf = samples_per_frame
        self.wav = np.zeros(num_frames * samples_per_frame, dtype=np.float32)

    def add(self, chunk: Chunk, wav: np.ndarray) -> None:
        """Add ``wav`` (``(chunk.num_frames * 640,)``) with fades over its overlapping ends."""
        spf = self.spf
        piece = np.asarray(wav, dtype=np.float32)[: chunk.num_frames * spf].copy()
        if piece.shape[0] < chunk.num_frames * spf:
            piece = np.pad(piece, (0, chunk.num_frames * spf - piece.shape[0]))
        head = (chunk.core_start - chunk.start) * 2 * spf  # the overlap is symmetric about the cut
        tail = (chunk.end - chunk.core_end) * 2 * spf
        if head:
            piece[:head] *= _equal_power_fade_in(head)
        if tail:
            piece[-tail:] *= _equal_power_fade_in(tail)[::-1]
        self.wav[chunk.start * spf: chunk.end * spf] += piece


def core_slice(chunk: Chunk, per_frame: int) -> Tuple[slice, slice]:
    """(slice into the chunk's own array, slice into the whole output) of the chunk's core, for
    arrays with ``per_frame`` values per video frame (4 for mel and F0 frames)."""
    a = (chunk.core_start - chunk.start) * per_frame
    b = (chunk.core_end - chunk.start) * per_frame
    return slice(a, b), slice(chunk.core_start * per_frame, chunk.core_end * per_frame)


@lru_cache(maxsize=1)
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:  # not glibc (macOS, Windows, musl): nothing to trim
        return None


def release_memory() -> None:
    """Give the freed memory of a finished chunk back to the system.

    glibc keeps freed heap pages, and chunks of slightly different sizes fragment them: without
    this, resident memory creeps up over a long input (measured: +0.4 GB over ten minutes of
    video) although nothing is held.
    """
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
