"""``l2s info VIDEO``: what l2s sees in a video (timing, size, audio, rotation, face)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Iterator, Optional, Tuple

import click

from l2s.cli._common import existing_file, progress
from l2s.config import FPS
from l2s.errors import NoFaceError

if TYPE_CHECKING:
    import numpy as np

VISION_UNAVAILABLE = "vision module unavailable"


@dataclass(frozen=True)
class FaceReport:
    """Outcome of the face check.

    Attributes:
        checked: whether detection ran.
        found: a face was seen in at least one frame (``None`` when not checked).
        frames_with_face: frames (at 25 fps) with at least one face.
        max_faces: most faces seen in one frame.
        frames_tracked: frames where the tracked face (the one ``l2s roi`` crops and ``l2s synthesize``
            voices: the largest, most persistent) was seen; fewer than ``frames_with_face`` when other
            faces appear, e.g. after a cut.
        reason: why the check did not run, when it did not.
    """

    checked: bool
    found: Optional[bool] = None
    frames_with_face: int = 0
    max_faces: int = 0
    frames_tracked: int = 0
    reason: Optional[str] = None


def _face_detector():
    """The vision package's per-clip detector, imported only when asked for (MediaPipe is heavy)."""
    try:
        from l2s.vision.face import detect_faces
    except ImportError:  # l2s.vision or MediaPipe missing from this install
        return None
    return detect_faces


def _counted(frames: Iterator[np.ndarray], counter: list) -> Iterator[np.ndarray]:
    for frame in frames:
        counter[0] += 1
        yield frame


def _scan(path: str, total: int, check_face: bool) -> Tuple[int, FaceReport]:
    """Decode every frame once: the exact count at 25 fps and, if asked, face detection on each."""
    from l2s.io.video import iter_video_frames

    frames = progress(iter_video_frames(path), desc="scanning", total=total, unit="frame")
    if not check_face:
        return sum(1 for _ in frames), FaceReport(checked=False, reason="--no-face")
    detect_faces = _face_detector()
    if detect_faces is None:
        return sum(1 for _ in frames), FaceReport(checked=False, reason=VISION_UNAVAILABLE)
    counter = [0]
    frames = iter(frames)
    try:
        detections = detect_faces(_counted(frames, counter))
    except ImportError:  # MediaPipe itself is imported when the detector starts
        return counter[0] + sum(1 for _ in frames), FaceReport(checked=False, reason=VISION_UNAVAILABLE)
    with_face = sum(1 for faces in detections if len(faces))
    most = max((len(faces) for faces in detections), default=0)
    return counter[0], FaceReport(checked=True, found=with_face > 0, frames_with_face=with_face, max_faces=most,
                                  frames_tracked=_tracked_frames(detections))


def _tracked_frames(detections) -> int:
    """Frames of the face ``l2s roi`` would track in these detections (the same choice, from the same faces)."""
    from l2s.vision.face import DetectorOptions, select_track

    options = DetectorOptions()
    try:
        return int(select_track(detections, options.min_iou, options.min_track_frames).found.sum())
    except NoFaceError:
        return 0


def _face_line(face: FaceReport, num_frames: int) -> str:
    if not face.checked:
        return f"not checked ({face.reason})"
    if not face.found:
        return f"not found (0 of {num_frames} frames)"
    return (f"found in {face.frames_with_face} of {num_frames} frames (up to {face.max_faces} per frame); "
            f"the tracked face (the one l2s roi crops and l2s synthesize voices) in {face.frames_tracked}")


@click.command()
@click.argument("video", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text lines.")
@click.option("--no-face", is_flag=True, help="Skip face detection (only decode the video).")
def info(video: str, as_json: bool, no_face: bool) -> None:
    """Describe VIDEO: duration, source frame rate, resolution, frames at 25 fps, audio, rotation, face.

    The whole video is decoded once, so a truncated or corrupt file is reported
    (exit code 2) rather than described. A video in which no face is found is
    described, then reported as an error (exit code 2): l2s cannot voice it.
    Frames with any face are counted, and those of the tracked face (the count
    `l2s roi` gives). VIDEO '-' reads the video from stdin.
    """
    from l2s.cli._common import input_path
    from l2s.cli._options import quiet_native_logs
    from l2s.io.video import probe_video

    with input_path(video) as path:
        existing_file(str(path), "video")
        meta = probe_video(path)
        with quiet_native_logs():
            num_frames, face = _scan(str(path), meta.num_frames, check_face=not no_face)
    if as_json:
        record = {"path": video, **asdict(meta), "frames_25fps": num_frames, "face": asdict(face)}
        record.pop("num_frames")
        click.echo(json.dumps(record))
    else:
        click.echo(_describe(video, meta, num_frames, face))
    if face.checked and not face.found:
        raise NoFaceError(f"{video}: no face found in any of its {num_frames} frames")


def _describe(video: str, meta, num_frames: int, face: FaceReport) -> str:
    audio = "no"
    if meta.has_audio:
        details = [meta.audio_codec or "?"]
        if meta.audio_sample_rate:
            details.append(f"{meta.audio_sample_rate} Hz")
        if meta.audio_channels:
            details.append(f"{meta.audio_channels} ch")
        audio = f"yes ({', '.join(details)})"
    fps = f"{meta.fps:.3f}".rstrip("0").rstrip(".") if meta.fps else "unknown"
    lines = [
        f"file: {video}",
        f"duration: {meta.duration:.3f} s",
        f"fps: {fps} (source, {meta.codec})",
        f"resolution: {meta.width}x{meta.height}",
        f"frames at {FPS} fps: {num_frames}",
        f"audio: {audio}",
        f"rotation: {meta.rotation} degrees" + (" (applied when decoding)" if meta.rotation else ""),
        f"face: {_face_line(face, num_frames)}",
    ]
    return "\n".join(lines)
