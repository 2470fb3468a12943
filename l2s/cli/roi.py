"""``l2s roi``: the mouth crops of a video, as an array or as a preview video."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import click

from l2s.cli._common import existing_file, progress
from l2s.errors import InputError, NoFaceError

if TYPE_CHECKING:
    import numpy as np

OUTPUT_SUFFIXES = (".npz", ".mp4")
PANEL = 288  # preview panel side: the 96 px ROI at 3x


@click.command("roi")
@click.argument("video", type=click.Path(dir_okay=True, path_type=str))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=str, allow_dash=True),
              help="OUT.npz: arrays roi (T, 96, 96) uint8, fps, found (T,), transforms (T, 2, 3); "
                   "OUT.mp4: a preview video (face with landmarks | mouth crop); '-': the .npz to stdout.")
@click.option("--sidecar", type=click.Path(path_type=str), default=None,
              help="Landmarks from a .landmarks.npz file (as the synthetic corpus writes) instead of detection.")
@click.option("--detector", "mode", type=click.Choice(["track", "per-frame"]), default="track", show_default=True,
              help="track: find the face, then follow it with its landmarks; per-frame: the earlier, ~1.7x slower "
                   "detector that runs face detection inside every frame's mesh.")
def roi(video: str, output: str, sidecar: Optional[str], mode: str) -> None:
    """Track the main face of VIDEO and cut its mouth crop in every frame (25 fps, 96x96 grayscale).

    Reports the frames where the tracked face was seen (`l2s info` also counts frames with other
    faces) and the stretches without it. VIDEO '-' reads the video from stdin.
    """
    from l2s.cli._common import STDIO, check_stdout_pipe, input_path
    from l2s.cli._options import quiet_native_logs
    from l2s.config import FPS
    from l2s.io.files import check_writable, same_file
    from l2s.io.video import probe_video, read_video, write_video
    from l2s.pipeline.coverage import face_coverage
    from l2s.vision.face import DetectorOptions
    from l2s.vision.roi import extract_roi

    out = Path(output)
    to_stdout = output == STDIO
    if not to_stdout and out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(f"{output}: unsupported output type, expected one of {', '.join(OUTPUT_SUFFIXES)}")
    if not to_stdout and out.is_dir():
        raise InputError(f"{output}: is a directory")
    with input_path(video) as given:
        path = existing_file(str(given), "video")
        sidecar_file = existing_file(sidecar, "landmark") if sidecar is not None else None
        if to_stdout:
            check_stdout_pipe("arrays")
        else:
            for protected in (path, sidecar_file):
                if protected is not None and video != STDIO and same_file(protected, out):
                    raise InputError(f"{output}: is the input {protected}; l2s never writes over its inputs")
            check_writable(out.parent, out)  # before minutes of detection, not after
        preview = out.suffix.lower() == ".mp4"
        # The preview needs the frames again; the array alone lets extract_roi stream long videos.
        source = read_video(path, with_audio=False).frames if preview else path
        total = len(source) if preview else probe_video(path).num_frames
        bar = progress(iter(()), desc="faces", total=total, unit="frame")
        start = time.perf_counter()
        try:
            with quiet_native_logs():
                result = extract_roi(source, sidecar=sidecar_file, detector=DetectorOptions(mode=mode),
                                     on_frame=lambda: bar.update(1))
        except NoFaceError as exc:
            raise NoFaceError(f"{video}: {exc}") from exc
        finally:
            bar.close()
        if preview:
            write_video(out, _preview_frames(source, result), fps=FPS)
        elif to_stdout:
            from l2s.cli._common import write_stdout

            write_stdout(_npz_bytes(result, FPS))
        else:
            _write_npz(out, result, FPS)
    logging.getLogger("l2s.cli.roi").info("%s: %d frames in %.2f s (%s)", video, result.num_frames,
                                          time.perf_counter() - start, "landmark sidecar" if sidecar_file else
                                          "face detection")
    coverage = face_coverage(result.found)
    gaps = f"; no face in {coverage.describe_gaps()}" if coverage.gaps else ""
    click.echo(f"{'stdout' if to_stdout else output}: {result.num_frames} frames, the tracked face found in "
               f"{coverage.face_frames}{gaps}", err=True)


def _npz_bytes(result, fps: int) -> bytes:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, roi=result.roi, fps=np.int64(fps), found=result.found, transforms=result.transforms)
    return buffer.getvalue()


def _write_npz(out: Path, result, fps: int) -> None:
    from l2s.io.atomic import atomic_write_bytes

    atomic_write_bytes(out, _npz_bytes(result, fps))


def _preview_frames(frames: np.ndarray, result) -> np.ndarray:
    """``(T, PANEL, 2 * PANEL, 3)`` uint8: the face with its landmarks and crop outline, beside the crop."""
    import cv2
    import numpy as np

    size = result.roi.shape[1]
    corners = np.array([[0, 0], [size, 0], [size, size], [0, size]], np.float64)
    out = np.empty((len(frames), PANEL, 2 * PANEL, 3), np.uint8)
    for t, frame in enumerate(frames):
        box = result.track.boxes[t]
        centre = (box[:2] + box[2:]) / 2
        half = 0.65 * max(box[2] - box[0], box[3] - box[1], 8.0)
        s = PANEL / (2 * half)
        face_map = np.array([[s, 0, PANEL / 2 - s * centre[0]], [0, s, PANEL / 2 - s * centre[1]]])
        face = cv2.warpAffine(np.ascontiguousarray(frame), face_map, (PANEL, PANEL), flags=cv2.INTER_AREA)
        to_frame = cv2.invertAffineTransform(result.transforms[t].astype(np.float64))
        quad = corners @ to_frame[:, :2].T + to_frame[:, 2]
        quad = quad @ face_map[:, :2].T + face_map[:, 2]
        cv2.polylines(face, [np.round(quad).astype(np.int32)], True, (255, 200, 0), 1, cv2.LINE_AA)
        colour = (0, 255, 0) if result.found[t] else (255, 0, 0)  # red: landmarks filled from neighbours
        for x, y in result.track.landmarks[t] @ face_map[:, :2].T + face_map[:, 2]:
            cv2.circle(face, (int(round(x)), int(round(y))), 2, colour, -1, cv2.LINE_AA)
        crop = cv2.resize(result.roi[t], (PANEL, PANEL), interpolation=cv2.INTER_NEAREST)
        out[t, :, :PANEL] = face
        out[t, :, PANEL:] = crop[..., None]
    return out
