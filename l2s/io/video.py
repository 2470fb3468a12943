"""Video decoding with PyAV, resampled to the contract frame rate; writing video and muxing audio back in.

Writing lives in :mod:`l2s.io.mux` and is re-exported here, so the whole API is ``l2s.io.video``.

Frame rate: every clip comes out at :data:`l2s.config.FPS` (25). Output frame ``k``
shows the source frame whose presentation interval ``[pts_i, pts_{i+1})`` covers
``k / 25`` seconds after the first frame, so 24, 30, 29.97, 50 fps and variable
frame rate sources are all handled by their timestamps, never by frame counting.
The clip lasts until the end of the last source frame (its pts plus duration, or
the stream's declared end when an mp4 edit list cuts that frame short), hence
``ceil(duration * 25)`` output frames.

Errors: every expected failure (missing, empty, not media, audio-only, truncated,
corrupt, no decodable frame) is an :class:`~l2s.errors.InputError` with a one-line
reason. Truncation is caught from the sample index (mp4/mov) or from a decoded
length well short of the declared one (mkv/webm).

Rotation: a display matrix (or the legacy ``rotate`` tag) is applied, so frames
are upright as a player shows them; widths and heights reported here are the
displayed ones.

The functions:

* :func:`probe_video`: cheap metadata (:class:`VideoInfo`: duration, fps, size, audio, rotation);
* :func:`read_video`: the whole clip (:class:`VideoClip`: ``(T, H, W, 3)`` uint8 RGB frames at 25 fps and the
  ``(N,)`` float32 mono 16 kHz audio, if any);
* :func:`iter_video_frames`: the frames one by one at 25 fps, in bounded memory;
* :func:`decode_ahead`: the same, decoded in a background thread;
* :func:`write_video` (H.264 yuv420p, + AAC) and :func:`mux_audio` (the video stream copied, a wav encoded as
  AAC), both atomic.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple

import numpy as np

from l2s.config import FPS, SAMPLE_RATE
from l2s.errors import InputError
from l2s.io.atomic import PathLike
from l2s.io.audio import decode_audio_stream, resample
from l2s.io.container import (average_rate, check_decoded_duration, check_not_truncated, declared_duration,
                              open_input, reason, video_stream)
from l2s.io.mux import mux_audio, write_video

log = logging.getLogger(__name__)

__all__ = ["VideoClip", "VideoInfo", "probe_video", "read_video", "iter_video_frames", "write_video", "mux_audio",
           "apply_rotation"]


@dataclass(frozen=True)
class VideoInfo:
    """Container metadata, read without decoding more than one frame.

    Attributes:
        duration: seconds of the video stream.
        fps: average frame rate of the source stream (``None`` if the container does not say).
        width: displayed width in pixels (after rotation).
        height: displayed height in pixels (after rotation).
        num_frames: estimated frame count once resampled to the contract rate.
        has_audio: whether the file has an audio stream.
        rotation: counter-clockwise degrees applied to display the frames upright (0, 90, 180, -90).
        codec: the video codec's name (``h264``, ``hevc``...).
        audio_codec: the first audio stream's codec name, if any.
        audio_sample_rate: its sample rate in Hz, if any.
        audio_channels: its channel count, if any.
    """

    duration: float
    fps: Optional[float]
    width: int
    height: int
    num_frames: int
    has_audio: bool
    rotation: int
    codec: str
    audio_codec: Optional[str] = None
    audio_sample_rate: Optional[int] = None
    audio_channels: Optional[int] = None


@dataclass(frozen=True)
class VideoClip:
    """A decoded clip at the contract frame rate.

    Attributes:
        frames: ``(T, H, W, 3)`` uint8 RGB, contiguous, rotation applied.
        fps: the contract frame rate (25).
        source_fps: average frame rate of the source stream, if known.
        audio: ``(N,)`` float32 mono at the contract sample rate, aligned so sample 0 is
            the time of frame 0; ``None`` when there is no audio track or it was not asked for.
        duration: seconds of the video stream (first frame to the end of the last one).
    """

    frames: np.ndarray
    fps: float
    source_fps: Optional[float]
    audio: Optional[np.ndarray]
    duration: float

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])


# --------------------------------------------------------------------------- rotation


def _frame_rotation(frame, stream) -> int:
    """Counter-clockwise degrees that display ``frame`` upright, a multiple of 90."""
    degrees = float(getattr(frame, "rotation", 0) or 0)
    if not degrees:
        # Old muxers wrote only a ``rotate`` tag, which is clockwise.
        with contextlib.suppress(TypeError, ValueError):
            degrees = -float(stream.metadata.get("rotate", 0))
    quarter = int(round(degrees / 90.0)) % 4
    return {0: 0, 1: 90, 2: 180, 3: -90}[quarter]


def apply_rotation(image: np.ndarray, degrees: int) -> np.ndarray:
    """Rotate an ``(H, W, ...)`` image counter-clockwise by ``degrees`` (a multiple of 90).

    This is what a player does with a display matrix whose rotation is ``degrees``
    (FFmpeg's ``av_display_rotation_get``, PyAV's ``VideoFrame.rotation``).
    Returns a contiguous array (the input itself when ``degrees`` is 0).
    """
    quarter = int(round(degrees / 90.0)) % 4
    if quarter == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, k=quarter, axes=(0, 1)))


# --------------------------------------------------------------------------- retiming


class _Retimer:
    """Map frames with presentation times onto a constant-rate grid.

    :meth:`push` takes the source frames in presentation order and returns, for the
    previous one, how many output frames it covers; :meth:`finish` does the same for
    the last frame. Times are exact fractions, so 24 fps onto 25 fps never drifts.
    """

    def __init__(self, fps: int):
        self.step = Fraction(1, int(fps))
        self.k = 0  # next output frame
        self.origin: Optional[Fraction] = None
        self.prev_t: Optional[Fraction] = None
        self.prev_dur: Optional[Fraction] = None
        self.last_interval: Optional[Fraction] = None
        self.end: Fraction = Fraction(0)

    def _emit_until(self, t: Fraction) -> int:
        n = 0
        while self.k * self.step < t:
            self.k += 1
            n += 1
        return n

    def push(self, t: Fraction, dur: Optional[Fraction]) -> Optional[int]:
        """Register a frame at time ``t``; return the repeat count of the previous frame.

        Returns ``None`` when the frame is dropped (a timestamp going backwards, as in
        a broken stream); a frame with the same time as the previous one replaces it
        (repeat count 0 for the previous one).
        """
        if self.origin is None:
            self.origin = t
        t = t - self.origin
        if self.prev_t is not None:
            if t < self.prev_t:
                return None
            if t > self.prev_t:
                self.last_interval = t - self.prev_t
        n = 0 if self.prev_t is None else self._emit_until(t)
        self.prev_t, self.prev_dur = t, dur
        return n

    def finish(self, nominal: Optional[Fraction], stream_end: Optional[Fraction] = None) -> int:
        """Repeat count of the last frame, which lasts its own duration (or the last interval).

        ``stream_end`` (absolute time) is where the container says the stream stops; an mp4
        edit list may cut the last frame's display short, and the clip then ends there.
        """
        if self.prev_t is None:
            return 0
        dur = self.prev_dur or self.last_interval or nominal or self.step
        self.end = self.prev_t + dur
        if stream_end is not None and self.origin is not None and self.prev_t < stream_end - self.origin < self.end:
            self.end = stream_end - self.origin
        return self._emit_until(self.end)


def _frame_times(stream) -> Iterator[Tuple[Fraction, Optional[Fraction], "object"]]:
    """Decode ``stream`` into ``(time, duration, frame)``; missing timestamps are extrapolated."""
    rate = stream.average_rate or stream.guessed_rate
    nominal = Fraction(1, 1) / Fraction(rate) if rate else Fraction(1, FPS)
    last: Optional[Fraction] = None
    for frame in stream.container.decode(stream):
        tb = frame.time_base or stream.time_base
        if frame.pts is not None and tb is not None:
            t = Fraction(frame.pts) * Fraction(tb)
        else:
            t = Fraction(0) if last is None else last + nominal
        ticks = getattr(frame, "duration", None)  # PyAV >= 13
        dur = Fraction(ticks) * Fraction(tb) if (ticks and tb is not None) else None
        last = t
        yield t, dur, frame


def _iter_rgb(stream, max_frames: Optional[int], state: _Retimer) -> Iterator[np.ndarray]:
    """Frames of ``stream`` at the contract rate, RGB uint8 upright; each source frame converted once."""
    rate = stream.average_rate or stream.guessed_rate
    nominal = Fraction(1, 1) / Fraction(rate) if rate else None
    held = None  # the source frame waiting for its repeat count
    count = 0

    def convert(frame) -> np.ndarray:
        rgb = frame.to_ndarray(format="rgb24")
        return np.ascontiguousarray(apply_rotation(rgb, _frame_rotation(frame, stream)))

    for t, dur, frame in _frame_times(stream):
        n = state.push(t, dur)
        if n is None:
            continue
        if held is not None and n:
            image = convert(held)
            for _ in range(n):
                yield image
                count += 1
                if max_frames is not None and count >= max_frames:
                    return
        held = frame
    stream_end = None
    if stream.duration is not None and stream.time_base is not None:
        stream_end = Fraction((stream.start_time or 0) + stream.duration) * Fraction(stream.time_base)
    n = state.finish(nominal, stream_end)
    if held is not None and n:
        image = convert(held)
        for _ in range(n):
            if max_frames is not None and count >= max_frames:
                return
            yield image
            count += 1


# --------------------------------------------------------------------------- reading


def probe_video(path: PathLike) -> VideoInfo:
    """Metadata of a video file; decodes only its first frame (for the rotation and a decodability check).

    Raises:
        InputError: missing, directory, empty, not a media file, no video stream, no decodable frame.
    """
    with open_input(path) as (p, container):
        stream = video_stream(container, path)
        check_not_truncated(container, p)
        first = next(iter(container.decode(stream)), None)
        if first is None:
            raise InputError(f"{path}: no decodable video frames")
        rotation = _frame_rotation(first, stream)
        width, height = first.width, first.height
        if rotation in (90, -90):
            width, height = height, width
        fps = average_rate(stream)
        duration = declared_duration(container, stream)
        if duration is None and container.duration is not None:
            duration = container.duration / 1_000_000  # AV_TIME_BASE; may include a longer audio track
        if duration is None:
            duration = stream.frames / fps if (stream.frames and fps) else 0.0
        audio = container.streams.audio[0] if container.streams.audio else None
        return VideoInfo(duration=duration, fps=fps, width=width, height=height,
                         num_frames=int(math.ceil(duration * FPS - 1e-6)), has_audio=audio is not None,
                         rotation=rotation, codec=stream.codec_context.name,
                         audio_codec=audio.codec_context.name if audio is not None else None,
                         audio_sample_rate=(audio.sample_rate or None) if audio is not None else None,
                         audio_channels=(audio.channels or None) if audio is not None else None)


def iter_video_frames(path: PathLike) -> Iterator[np.ndarray]:
    """Stream the frames of a video at the contract rate, one ``(H, W, 3)`` uint8 RGB array at a time.

    Memory stays bounded (one decoded frame); errors are raised as :class:`InputError`
    when the generator is first advanced (opening), mid-way (a corrupt stream) or after
    the last frame (a stream much shorter than the container declares: truncated).
    """
    with open_input(path) as (p, container):
        stream = video_stream(container, path)
        check_not_truncated(container, p)
        declared = declared_duration(container, stream)
        produced = 0
        state = _Retimer(FPS)
        for image in _iter_rgb(stream, None, state):
            produced += 1
            yield image
        if not produced:
            raise InputError(f"{path}: no decodable video frames")
        check_decoded_duration(path, float(state.end), declared)


#: Frames :func:`decode_ahead` may decode before they are asked for (16 frames of 1080p: 100 MB).
DECODE_AHEAD = 16
_POLL_SECONDS = 0.1


def decode_ahead(path: PathLike, depth: int = DECODE_AHEAD,
                 timings: Optional[Dict[str, float]] = None) -> Iterator[np.ndarray]:
    """:func:`iter_video_frames` decoded in a background thread, up to ``depth`` frames ahead.

    FFmpeg releases the GIL while it decodes and converts, so the frames are ready while the
    caller works on the previous ones (face landmarks, crops). Errors are raised in the caller,
    where :func:`iter_video_frames` would raise them; closing the iterator early stops the thread.

    Args:
        path: the video.
        depth: frames decoded ahead; 0 decodes in the calling thread (plain :func:`iter_video_frames`).
        timings: if given, ``"decode"`` (seconds the decoder worked) and ``"decode_wait"`` (seconds the
            caller waited for a frame) are added to it.
    """
    if depth <= 0:
        yield from _timed_frames(iter_video_frames(path), timings)
        return
    frames: "queue.Queue[Tuple[str, object]]" = queue.Queue(maxsize=depth)
    stop = threading.Event()
    worked = [0.0]

    def put(item: Tuple[str, object]) -> bool:
        while not stop.is_set():
            try:
                frames.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def decode() -> None:
        try:
            source = iter_video_frames(path)
            try:
                while True:
                    start = time.perf_counter()
                    image = next(source, None)
                    worked[0] += time.perf_counter() - start
                    if image is None or not put(("frame", image)):
                        break
            finally:
                source.close()
            put(("end", None))
        except BaseException as exc:  # handed to the caller, who raises it
            put(("error", exc))

    thread = threading.Thread(target=decode, name="l2s-decode", daemon=True)
    thread.start()
    waited = 0.0
    try:
        while True:
            start = time.perf_counter()
            kind, item = frames.get()
            waited += time.perf_counter() - start
            if kind == "end":
                return
            if kind == "error":
                raise item  # type: ignore[misc]
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
        if timings is not None:
            timings["decode"] = timings.get("decode", 0.0) + worked[0]
            timings["decode_wait"] = timings.get("decode_wait", 0.0) + waited


def _timed_frames(frames: Iterator[np.ndarray], timings: Optional[Dict[str, float]]) -> Iterator[np.ndarray]:
    """Frames from ``frames``, the time spent producing them added to ``timings`` (decode = wait)."""
    spent = 0.0
    try:
        while True:
            start = time.perf_counter()
            image = next(frames, None)
            spent += time.perf_counter() - start
            if image is None:
                return
            yield image
    finally:
        frames.close()
        if timings is not None:
            for key in ("decode", "decode_wait"):
                timings[key] = timings.get(key, 0.0) + spent


def _read_audio_track(path: Path, start: float, num_samples: Optional[int]) -> Optional[np.ndarray]:
    """The first audio track at the contract rate, aligned so sample 0 is at time ``start`` (seconds)."""
    import av

    with open_input(path) as (_, container):
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        stream.thread_type = "AUTO"
        max_seconds = None if num_samples is None else num_samples / SAMPLE_RATE + 1.0
        try:
            wav, sr, audio_start = decode_audio_stream(container, stream, max_seconds=max_seconds)
        except (av.FFmpegError, ValueError) as exc:
            # The frames are what l2s needs; a broken soundtrack should not make the clip unusable.
            log.warning("%s: audio track not decodable, ignored: %s", path, reason(exc))
            return None
    wav = resample(wav, sr, SAMPLE_RATE)
    offset = int(round(((audio_start if audio_start is not None else start) - start) * SAMPLE_RATE))
    if offset > 0:  # audio starts after the first frame: silence until then
        wav = np.concatenate([np.zeros(offset, np.float32), wav])
    elif offset < 0:
        wav = wav[-offset:]
    if num_samples is not None:
        wav = wav[:num_samples]
    return np.ascontiguousarray(wav, dtype=np.float32)


def read_video(path: PathLike, with_audio: bool = True, max_frames: Optional[int] = None) -> VideoClip:
    """Decode a video file into RGB frames at the contract rate, plus its audio track.

    Args:
        path: any container and codec FFmpeg reads (mp4, mov, mkv, webm, avi...).
        with_audio: also decode the first audio track (16 kHz mono float32).
        max_frames: stop after this many output frames (the audio is cut to match).

    Returns:
        A :class:`VideoClip` with ``frames`` of shape ``(T, H, W, 3)``.

    Raises:
        InputError: missing file, directory, empty file, not a media file, truncated or corrupt data,
            no video stream (audio-only), or no decodable frame.
    """
    if max_frames is not None and max_frames <= 0:
        raise ValueError(f"max_frames must be positive, got {max_frames}")
    with open_input(path) as (p, container):
        stream = video_stream(container, path)
        check_not_truncated(container, p)
        state = _Retimer(FPS)
        declared = declared_duration(container, stream)
        expected = int(math.ceil(declared * FPS)) + 1 if declared else 16
        frames = _collect(_iter_rgb(stream, max_frames, state), expected if max_frames is None
                          else min(expected, max_frames))
        source_fps = average_rate(stream)
        start = float(state.origin) if state.origin is not None else 0.0
        has_audio = bool(container.streams.audio)
    if frames is None:
        raise InputError(f"{path}: no decodable video frames")
    complete = max_frames is None or len(frames) < max_frames
    duration = float(state.end) if (complete and state.end) else len(frames) / FPS
    if complete:
        check_decoded_duration(path, duration, declared)
    audio = None
    if with_audio and has_audio:
        limit = None if max_frames is None else len(frames) * SAMPLE_RATE // FPS
        audio = _read_audio_track(p, start, limit)
    return VideoClip(frames=frames, fps=float(FPS), source_fps=source_fps, audio=audio, duration=duration)


def _collect(images: Iterator[np.ndarray], expected: int) -> Optional[np.ndarray]:
    """Gather equal-shaped frames into one ``(T, H, W, 3)`` array, preallocated from the expected count.

    Filling a buffer sized from the container's duration avoids holding the frames twice
    (a list, then ``np.stack``); a wrong estimate only costs a regrow or a final trim.
    """
    buffer: Optional[np.ndarray] = None
    n = 0
    for image in images:
        if buffer is None:
            buffer = np.empty((max(expected, 1),) + image.shape, dtype=np.uint8)
        elif n == buffer.shape[0]:
            grown = np.empty((n + n // 2 + 1,) + buffer.shape[1:], dtype=np.uint8)
            grown[:n] = buffer
            buffer = grown
        buffer[n] = image
        n += 1
    if buffer is None:
        return None
    return buffer[:n] if n == buffer.shape[0] or n > 0.9 * buffer.shape[0] else buffer[:n].copy()
