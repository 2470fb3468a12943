"""H.264 encoding of rendered frames, as reproducible as x264 allows.

:func:`l2s.io.video.write_video` converts RGB through swscale and lets x264 pick
its thread count; both made the output bytes vary between runs here. This writer
converts to yuv420p with OpenCV (BT.601, limited range) into zero-padded frames
and runs x264 on one thread with fixed options. Known limit: x264's SIMD code
still, rarely, encodes identical frames differently (history-dependent; the
decoded frames differ by compression noise only); ``exact=True`` (``x264-params asm=0``)
was exact in our tests but triples the encoding time, so the corpus does not use it; the
demo, which encodes one clip and reports scores on it, does.
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np

from l2s.config import FPS
from l2s.io.atomic import atomic_path


def rgb_to_yuv420p(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB, even sides -> (3H/2, W) uint8 planar Y, U, V (OpenCV's BT.601 limited range)."""
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2YUV_I420)


def _yuv_frame(yuv: np.ndarray, width: int, height: int):
    """A yuv420p ``av.VideoFrame`` whose row padding is zeroed too.

    ``VideoFrame.from_ndarray`` leaves the padding of each row uninitialised and
    x264's SIMD copies read it: the first encode in a process then came out
    different from the next ones.
    """
    import av

    frame = av.VideoFrame(width, height, "yuv420p")
    planes = (yuv[:height], yuv[height:height + height // 4].reshape(height // 2, width // 2),
              yuv[height + height // 4:].reshape(height // 2, width // 2))
    for plane, data in zip(frame.planes, planes):
        buf = np.frombuffer(plane, np.uint8)
        rows = buf[: (len(buf) // plane.line_size) * plane.line_size].reshape(-1, plane.line_size)
        buf[:] = 0
        rows[: data.shape[0], : data.shape[1]] = data
    return frame


_WARMED = set()


def write_h264(path: Path, frames: np.ndarray, fps: int = FPS, crf: int = 23, preset: str = "veryfast",
               exact: bool = False) -> None:
    """Write (T, H, W, 3) uint8 RGB frames (even H and W) as a silent H.264 mp4, atomically
    (``exact``: x264 without SIMD, the same bytes on every run, about 3x slower)."""
    height, width = frames.shape[1:3]
    if (width, height) not in _WARMED:
        # The first x264 encode of a process sometimes came out different from all later
        # (identical) ones; one throw-away encode per frame size makes every real one alike.
        _WARMED.add((width, height))
        _encode(io.BytesIO(), np.zeros((4, height, width, 3), np.uint8), fps, crf, preset, "mp4")
    with atomic_path(path) as tmp:
        _encode(str(tmp), frames, fps, crf, preset, None, exact)


def _encode(target, frames: np.ndarray, fps: int, crf: int, preset: str, fmt, exact: bool = False) -> None:
    import av

    height, width = frames.shape[1:3]
    with av.open(target, "w", format=fmt) as out:
        options = {"crf": str(int(crf)), "preset": preset, "threads": "1"}
        if exact:
            options["x264-params"] = "asm=0"
        stream = out.add_stream("libx264", rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        for i, image in enumerate(frames):
            frame = _yuv_frame(rgb_to_yuv420p(image), width, height)
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
