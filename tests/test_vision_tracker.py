"""The tracking face detector: region geometry, the landmark reader, shared graphs, and its landmarks
against the per-frame detector on a real video."""

from __future__ import annotations

import math

import numpy as np
import pytest

from l2s.errors import InputError
from l2s.io.video import read_video
from l2s.vision import graphs
from l2s.vision.face import MODE_PER_FRAME, MODE_TRACK, DetectorOptions, detect_faces, face_detector
from l2s.vision.tracker import EYE_LINE_MESH, REGION_SCALE, Region, region_from_points, region_pixels


def _landmark_list(points: np.ndarray):
    from mediapipe.framework.formats import landmark_pb2

    out = landmark_pb2.NormalizedLandmarkList()
    for x, y in points:
        out.landmark.add(x=float(x), y=float(y), z=0.25)
    return out


def test_landmark_array_reads_the_wire_format_and_falls_back():
    rng = np.random.default_rng(0)
    points = rng.uniform(0.05, 0.95, (graphs.MESH_POINTS, 2)).astype(np.float32)
    fast = graphs.landmark_array(_landmark_list(points), graphs.MESH_POINTS)
    np.testing.assert_array_equal(fast, points.astype(np.float64))
    points[7] = (0.0, 0.5)  # a zero coordinate is left off the wire: the record layout breaks
    slow = graphs.landmark_array(_landmark_list(points))
    np.testing.assert_array_equal(slow, points.astype(np.float64))


@pytest.mark.parametrize("degrees", [0.0, 20.0, -35.0])
def test_region_from_points_follows_the_eye_line(degrees):
    angle = math.radians(degrees)
    rng = np.random.default_rng(1)
    points = rng.uniform(-50, 50, (graphs.MESH_POINTS, 2))
    points[EYE_LINE_MESH[0]] = (-30, 0)
    points[EYE_LINE_MESH[1]] = (30, 0)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    points = points @ rot.T + (200, 150)  # image y points down: a positive angle turns the face clockwise
    region = region_from_points(points)
    assert region.rotation == pytest.approx(angle)
    assert (region.cx, region.cy) == pytest.approx(tuple((points.min(0) + points.max(0)) / 2))
    assert region.side == pytest.approx(REGION_SCALE * np.ptp(points, axis=0).max())


def test_region_pixels_reduce_by_whole_blocks_and_clip_to_the_frame():
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    image, x0, y0, w, h = region_pixels(frame, Region(cx=80, cy=60, side=40, rotation=0.0), max_side=256)
    assert (x0, y0, w, h) == (59, 39, 42, 42) and np.array_equal(image, frame[39:81, 59:101])
    # a region over the frame's corner: clipped, not padded (the graph samples black beyond it)
    image, x0, y0, w, h = region_pixels(frame, Region(cx=5, cy=5, side=40, rotation=0.0), max_side=256)
    assert (x0, y0) == (0, 0) and image.shape == (h, w, 3) and (w, h) == (26, 26)
    # three times the largest side the model should see: 3 x 3 block means
    image, x0, y0, w, h = region_pixels(frame, Region(cx=80, cy=60, side=90, rotation=0.0), max_side=30)
    assert w % 3 == 0 and h % 3 == 0 and image.shape == (h // 3, w // 3, 3)
    blocks = frame[y0:y0 + h, x0:x0 + w].astype(np.float64).reshape(h // 3, 3, w // 3, 3, 3).mean(axis=(1, 3))
    assert np.abs(image - blocks).max() <= 1.0  # cv2's rounding


def test_detector_options():
    assert DetectorOptions().mode == MODE_TRACK
    assert DetectorOptions().scan_interval == 25 and DetectorOptions(mode=MODE_PER_FRAME).scan_interval == 10
    assert DetectorOptions(scan_every=3).scan_interval == 3
    with pytest.raises(InputError, match="per-frame"):
        DetectorOptions(mode="every-frame")


def test_tracking_matches_per_frame_detection_on_a_real_video(pyfeat_data):
    frames = read_video(pyfeat_data / "WolfgangLanger_Pexels.mp4", with_audio=False, max_frames=50).frames
    tracked = detect_faces(frames)
    per_frame = detect_faces(frames, DetectorOptions(mode=MODE_PER_FRAME))
    assert all(len(f) == 1 for f in tracked) and all(len(f) == 1 for f in per_frame)
    a, b = np.stack([f[0] for f in tracked]), np.stack([f[0] for f in per_frame])
    interocular = np.linalg.norm(b[:, 45] - b[:, 36], axis=1).mean()
    distance = np.linalg.norm(a - b, axis=2)
    # two readings of the same model on different crops: a few percent of the eye distance apart
    assert distance.mean() < 0.04 * interocular, (distance.mean(), interocular)
    assert distance[:, 48:68].mean() < 0.04 * interocular
    # the graphs are built once per process: another clip builds none
    built = graphs.loaded()
    with face_detector() as detector:
        detector(frames[0])
    assert graphs.loaded() == built
    assert graphs.region_landmarker() is graphs.region_landmarker()
