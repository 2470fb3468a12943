"""Opening media with PyAV and judging what is in them: the checks behind l2s's one-line input errors.

Shared by :mod:`l2s.io.video` (decoding), :mod:`l2s.io.mux` (remuxing) and
:mod:`l2s.io.audio` (the PyAV fallback). Every expected
failure becomes an :class:`~l2s.errors.InputError` whose message is one line.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, Optional, Tuple

from l2s.errors import InputError
from l2s.io.atomic import PathLike
from l2s.io.files import check_input_file

# A decoded video this much shorter (and 10 % shorter) than its container says is reported as truncated.
TRUNCATION_SLACK_S = 0.5

__all__ = ["check_media_file", "open_input", "video_stream", "check_not_truncated", "stream_duration",
           "declared_duration", "check_decoded_duration", "average_rate", "reason"]


def check_media_file(path: PathLike, what: str = "media") -> Path:
    """``path`` as a :class:`~pathlib.Path` if it is a readable, non-empty regular file.

    Raises:
        InputError: one line saying what is wrong (missing, a broken link or link loop, a directory, empty).
    """
    return check_input_file(path, what)


def reason(exc: BaseException) -> str:
    """An FFmpeg error's message on one line."""
    return " ".join((getattr(exc, "strerror", None) or str(exc)).split())


@contextlib.contextmanager
def open_input(path: PathLike) -> Iterator[Tuple[Path, "object"]]:
    """Open ``path`` with PyAV, turning every expected failure into a one-line :class:`InputError`."""
    import av

    p = check_media_file(path, "video")
    try:
        container = av.open(str(p), "r")
    except av.FFmpegError as exc:
        raise InputError(f"{path}: not a readable media file (truncated or corrupt?): {reason(exc)}") from exc
    try:
        yield p, container
    except av.FFmpegError as exc:
        raise InputError(f"{path}: cannot decode video (truncated or corrupt?): {reason(exc)}") from exc
    finally:
        container.close()


def video_stream(container, path: PathLike):
    """The main video stream; cover art (an attached picture) does not count as video."""
    import av

    streams = [s for s in container.streams.video
               if not (s.disposition & av.stream.Disposition.attached_pic)]
    if not streams:
        what = "an audio-only file" if container.streams.audio else "no video stream"
        raise InputError(f"{path}: {what}, expected a video")
    stream = max(streams, key=lambda s: (s.codec_context.width or 0) * (s.codec_context.height or 0))
    stream.thread_type = "AUTO"  # frame + slice threads: several times faster on long clips
    return stream


def check_not_truncated(container, path: Path) -> None:
    """Refuse a file whose sample index (mp4/mov, mkv cues) points past its end: it was cut short.

    The demuxer would otherwise stop silently at the cut and the clip would look shorter.
    """
    size = path.stat().st_size
    for stream in list(container.streams.video) + list(container.streams.audio):
        entries = getattr(stream, "index_entries", None)  # PyAV >= 15
        if not entries:
            continue
        last = entries[-1]
        if last.pos >= 0 and last.pos + last.size > size:
            raise InputError(f"{path}: truncated file (its index points {last.pos + last.size - size} bytes past "
                             f"the end)")


def stream_duration(stream) -> Optional[float]:
    """A stream's own duration in seconds, if the container states it."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION")  # Matroska/WebM keep it as a tag, "HH:MM:SS.fffffffff"
    if tag:
        with contextlib.suppress(ValueError):
            hours, minutes, seconds = tag.split(":")
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return None


def declared_duration(container, stream) -> Optional[float]:
    """The video's duration as the container states it; the container's total counts only for a lone stream
    (with an audio track it may be the audio's length)."""
    duration = stream_duration(stream)
    if duration is None and container.duration is not None and len(container.streams) == 1:
        duration = container.duration / 1_000_000  # AV_TIME_BASE
    return duration


def check_decoded_duration(path: PathLike, decoded: float, declared: Optional[float]) -> None:
    """Refuse a clip that decodes much shorter than its container says (cut short, or corrupt mid-way)."""
    if declared is not None and declared - decoded > max(TRUNCATION_SLACK_S, 0.1 * declared):
        raise InputError(f"{path}: truncated or corrupt video: decoded {decoded:.2f} s of the {declared:.2f} s "
                         "the container declares")


def average_rate(stream) -> Optional[float]:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else None
