"""Writing video: H.264 from frames, and a wav muxed into a copy of a video (stream copy), both atomic."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np

from l2s.config import FPS, SAMPLE_RATE
from l2s.errors import InputError
from l2s.io.atomic import PathLike, atomic_path
from l2s.io.container import check_media_file, check_not_truncated, open_input, video_stream
from l2s.io.files import WRITE_ERRNOS, output_errors

__all__ = ["write_video", "mux_audio"]


def _as_rgb_frames(frames: Union[np.ndarray, Sequence[np.ndarray]]) -> List[np.ndarray]:
    """Frames as a list of ``(H, W, 3)`` uint8 with even sides (edge-padded), as yuv420p requires."""
    out = []
    for frame in frames:
        a = np.asarray(frame)
        if a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=2)
        if a.ndim != 3 or a.shape[2] != 3:
            raise ValueError(f"expected (H, W, 3) or (H, W) frames, got {a.shape}")
        if a.dtype != np.uint8:
            a = np.clip(a, 0, 255).astype(np.uint8)
        pad_h, pad_w = a.shape[0] % 2, a.shape[1] % 2
        if pad_h or pad_w:
            a = np.pad(a, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        out.append(np.ascontiguousarray(a))
    if not out:
        raise ValueError("write_video needs at least one frame")
    if len({f.shape for f in out}) != 1:
        raise ValueError("all frames must have the same size")
    return out


def _fit(wav: np.ndarray, num_samples: int) -> np.ndarray:
    """``wav`` cut or zero-padded to exactly ``num_samples`` (so audio and video end together)."""
    wav = np.clip(np.nan_to_num(np.asarray(wav, dtype=np.float32).reshape(-1)), -1.0, 1.0)
    if wav.shape[0] >= num_samples:
        return wav[:num_samples]
    return np.concatenate([wav, np.zeros(num_samples - wav.shape[0], np.float32)])


class _AacWriter:
    """Encode a mono waveform as AAC into an output container, chunk by chunk, interleavable with video."""

    def __init__(self, container, wav: np.ndarray, sample_rate: int, start_sample: int = 0):
        self.container = container
        self.stream = container.add_stream("aac", rate=int(sample_rate), layout="mono")
        self.rate = int(sample_rate)
        self.wav = wav
        self.pos = 0
        self.start = int(start_sample)
        self.chunk = 1024  # the AAC frame size

    def write_until(self, seconds: float) -> None:
        import av

        stop = self.wav.shape[0] if math.isinf(seconds) else min(self.wav.shape[0], int(math.ceil(seconds * self.rate)))
        while self.pos < stop:
            piece = self.wav[self.pos:self.pos + self.chunk]
            frame = av.AudioFrame.from_ndarray(piece[None, :], format="fltp", layout="mono")
            frame.sample_rate = self.rate
            frame.pts = self.start + self.pos
            frame.time_base = Fraction(1, self.rate)
            self.pos += piece.shape[0]
            self.container.mux(self.stream.encode(frame))

    def close(self) -> None:
        self.write_until(math.inf)
        self.container.mux(self.stream.encode(None))


def write_video(path: PathLike, frames: Union[np.ndarray, Sequence[np.ndarray]], fps: float = FPS,
                audio: Optional[np.ndarray] = None, crf: int = 23, sample_rate: int = SAMPLE_RATE) -> None:
    """Encode frames as H.264 (yuv420p) with optional AAC audio, atomically.

    Args:
        path: destination (``.mp4``, ``.mkv``, ``.mov``); the container follows the extension.
        frames: ``(T, H, W, 3)`` uint8 RGB or ``(T, H, W)`` grayscale, or a sequence of such frames.
            Odd sides are padded by one edge pixel (yuv420p needs even sides).
        fps: frame rate of ``frames``.
        audio: ``(N,)`` float mono at ``sample_rate``; cut or zero-padded to the video's duration.
        crf: x264 constant rate factor (lower is better quality; 18 is visually lossless).
        sample_rate: rate of ``audio`` in Hz.
    """
    import av

    images = _as_rgb_frames(frames)
    rate = Fraction(fps).limit_denominator(1001 * 1000)
    height, width = images[0].shape[:2]
    with output_errors(path), atomic_path(path) as tmp:
        with av.open(str(tmp), "w") as out:
            stream = out.add_stream("libx264", rate=rate, options={"crf": str(int(crf))})
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            aac = None
            if audio is not None:
                num_samples = int(round(len(images) * sample_rate / float(rate)))
                aac = _AacWriter(out, _fit(audio, num_samples), sample_rate)
            for i, image in enumerate(images):
                if aac is not None:
                    aac.write_until((i + 1) / float(rate))
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = i
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
            if aac is not None:
                aac.close()


@dataclass(frozen=True)
class _Span:
    """Where a video stream is shown, in its own time base ticks.

    ``start``: first displayed frame (packets flagged discard, hidden by an mp4 edit list, are
    skipped); ``end``: end of the last frame, cut to the stream's declared end when an edit
    list shortens it; ``last_pts``: pts of that last frame.
    """

    start: int
    end: int
    last_pts: int
    time_base: Fraction

    def seconds(self, ticks: int) -> float:
        return float(ticks * self.time_base)


def _video_span(path: Path) -> _Span:
    """The displayed span of the main video stream, from its packets (no decoding)."""
    with open_input(path) as (_, container):
        stream = video_stream(container, path)
        check_not_truncated(container, path)
        start: Optional[int] = None
        end: Optional[int] = None
        last_pts: Optional[int] = None
        for packet in container.demux(stream):
            if packet.pts is None or packet.size == 0 or packet.is_discard:
                continue
            start = packet.pts if start is None else min(start, packet.pts)
            if last_pts is None or packet.pts > last_pts:
                last_pts, end = packet.pts, packet.pts + (packet.duration or 0)
        if start is None or end is None or last_pts is None:
            raise InputError(f"{path}: no video packets")
        if stream.duration is not None:
            declared_end = (stream.start_time or 0) + stream.duration
            if last_pts < declared_end < end:
                end = declared_end
        return _Span(start=start, end=end, last_pts=last_pts, time_base=Fraction(stream.time_base))


def mux_audio(video_path: PathLike, wav: np.ndarray, out_path: PathLike, sample_rate: int = SAMPLE_RATE) -> None:
    """Write a copy of a video with ``wav`` as its only audio track, atomically.

    The video stream is copied packet for packet (no re-encoding, rotation metadata
    kept); the waveform is encoded as AAC, starting with the first video frame and cut
    or zero-padded to the video's duration. Other streams (old audio, subtitles) are dropped.

    Args:
        video_path: the source video.
        wav: ``(N,)`` float mono at ``sample_rate`` (a torch tensor is accepted).
        out_path: destination; the container follows its extension (``.mp4`` is safe for H.264/HEVC).
        sample_rate: rate of ``wav`` in Hz.

    Raises:
        InputError: the source video cannot be read.
        OutputError: the copy cannot be written (read-only or full disk, quota).
    """
    import av

    if hasattr(wav, "detach"):
        wav = wav.detach().cpu().numpy()
    src = check_media_file(video_path, "video")
    span = _video_span(src)
    start = span.seconds(span.start)
    audio = _fit(wav, int(round((span.seconds(span.end) - start) * sample_rate)))
    with open_input(src) as (_, container):
        in_stream = video_stream(container, src)
        # The copy reads the source while it writes: only write-side errors (full or read-only disk) are the
        # output's; a read error stays the input's (open_input reports it).
        with output_errors(out_path, WRITE_ERRNOS), atomic_path(out_path) as tmp:
            with av.open(str(tmp), "w") as out:
                out_stream = out.add_stream_from_template(in_stream)
                # PyAV stores the codec context's frame rate as the stream's average rate, and a copied
                # context's can be a tick rate (24000 for 23.976 fps): keep the source's measured rate.
                rate = in_stream.average_rate or in_stream.guessed_rate
                if rate:
                    out_stream.codec_context.framerate = rate
                aac = _AacWriter(out, audio, sample_rate, start_sample=int(round(start * sample_rate)))
                for packet in container.demux(in_stream):
                    if packet.size == 0:  # the demuxer's empty flush packet (a dts of None is legal: mkv)
                        continue
                    if packet.pts is not None:
                        aac.write_until(float(packet.pts * packet.time_base) - start)
                        if packet.pts == span.last_pts and packet.pts + (packet.duration or 0) > span.end:
                            # Keep the source's edit-list cut of the last frame: only its duration changes.
                            packet.duration = span.end - packet.pts
                    packet.stream = out_stream
                    out.mux(packet)
                aac.close()
