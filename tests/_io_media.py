"""Tiny test media written with PyAV: clips whose frame ``i`` has brightness ``BASE + STEP * i``.

Used by the io and ``l2s info`` tests; everything is generated into ``tmp_path``.
H.264 is lossless (qp 0) so a frame's index can be read back from its mean brightness.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Optional, Sequence, Tuple

import av
import numpy as np

BASE = 16
STEP = 3
HEIGHT, WIDTH = 48, 64


def frame_image(index: int, height: int = HEIGHT, width: int = WIDTH, marker: bool = False) -> np.ndarray:
    """A flat RGB frame of brightness ``BASE + STEP * index``; ``marker`` adds a white 8x8 block at the top left."""
    image = np.full((height, width, 3), BASE + STEP * index, np.uint8)
    if marker:
        image[:8, :8] = 255
    return image


def frame_index(image: np.ndarray) -> int:
    """Invert :func:`frame_image` on a decoded frame (ignoring any marker block)."""
    return int(round((float(np.median(image)) - BASE) / STEP))


def tone(freq: float, seconds: float, sample_rate: int, channels: int = 2) -> np.ndarray:
    """``(channels, N)`` float32 sine; the right channel at half amplitude, so a downmix is visible."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    mono = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([mono * (1.0 if c == 0 else 0.5) for c in range(channels)]).astype(np.float32)


def _mux_audio_track(container, stream, wav: np.ndarray, sample_rate: int) -> None:
    layout = "stereo" if wav.shape[0] == 2 else "mono"
    hop = 1024
    for start in range(0, wav.shape[1], hop):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(wav[:, start:start + hop]), format="fltp",
                                           layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = start
        frame.time_base = Fraction(1, sample_rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def make_clip(path: Path, fps: Fraction = Fraction(25), num_frames: int = 25,
              pts_ms: Optional[Sequence[int]] = None, rotation: int = 0, marker: bool = False,
              audio: Optional[Tuple[float, int, int]] = None, size: Tuple[int, int] = (HEIGHT, WIDTH),
              hidden: int = 0) -> Path:
    """Write a lossless H.264 clip.

    Args:
        path: output file (mp4).
        fps: constant frame rate (ignored for the timing when ``pts_ms`` is given).
        num_frames: frame count for a constant-rate clip.
        pts_ms: presentation times in milliseconds, for a variable-frame-rate clip (time base 1/1000).
        rotation: counter-clockwise display rotation written as a display matrix.
        marker: add a white block in the top-left corner (to see orientation).
        audio: ``(frequency, sample_rate, channels)`` of a sine track covering the clip, AAC-encoded.
        size: ``(height, width)``.
        hidden: give the first ``hidden`` frames negative timestamps; the mp4 muxer then writes an
            edit list that hides them (as cameras and editors do), and the clip shows frame ``hidden`` first.
    """
    height, width = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"qp": "0", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if pts_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
            stream.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        times = list(pts_ms) if pts_ms is not None else list(range(num_frames))
        a_stream = None
        if audio is not None:  # every stream must exist before the first packet is written
            a_stream = out.add_stream("aac", rate=audio[1], layout="stereo" if audio[2] == 2 else "mono")
        for i, pts in enumerate(times):
            frame = av.VideoFrame.from_ndarray(frame_image(i, height, width, marker), format="rgb24")
            frame.pts = pts - hidden
            if pts_ms is not None:
                frame.time_base = Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if audio is not None:
            freq, sr, channels = audio
            seconds = (times[-1] + (40 if pts_ms is not None else 1)) / (1000 if pts_ms is not None else float(fps))
            _mux_audio_track(out, a_stream, tone(freq, seconds, sr, channels), sr)
    return path


def make_audio_only(path: Path, seconds: float = 1.0, sample_rate: int = 44100) -> Path:
    """An AAC-only mp4 (what a voice memo looks like)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=sample_rate, layout="stereo")
        _mux_audio_track(out, stream, tone(440.0, seconds, sample_rate, 2), sample_rate)
    return path


def video_packets(path: Path) -> list:
    """The bytes of every packet of the first video stream, in file order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [bytes(p) for p in container.demux(stream) if p.size]


def make_corrupt_copy(src: Path, dst: Path, seed: int = 0) -> Path:
    """``src``'s container and timing with every video packet's payload replaced by random bytes."""
    rng = np.random.default_rng(seed)
    with av.open(str(src)) as container, av.open(str(dst), "w") as out:
        stream = container.streams.video[0]
        out_stream = out.add_stream_from_template(stream)
        for packet in container.demux(stream):
            if not packet.size:
                continue
            junk = av.Packet(bytes(rng.integers(0, 256, packet.size, dtype=np.uint8)))
            junk.pts, junk.dts, junk.duration = packet.pts, packet.dts, packet.duration
            junk.time_base = packet.time_base
            junk.stream = out_stream
            out.mux(junk)
    return dst
