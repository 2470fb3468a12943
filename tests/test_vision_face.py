"""Face tracking logic on synthetic detections, gap filling, and the sidecar landmark format."""

from __future__ import annotations

import numpy as np
import pytest

from l2s.errors import InputError, NoFaceError
from l2s.vision.face import (LAYOUT_LIPS, LAYOUT_LIPS_EYES, MESH_TO_IBUG68, box_iou, fill_missing, landmarks_box,
                             load_sidecar, select_track, sidecar_path)
from l2s.vision.roi import MEAN_FACE_68


def _face(cx: float, cy: float, scale: float) -> np.ndarray:
    """The mean face (68, 2) scaled and centred at (cx, cy)."""
    return ((MEAN_FACE_68 - MEAN_FACE_68.mean(axis=0)) * scale + (cx, cy)).astype(np.float32)


def test_mesh_mapping_is_68_distinct_vertices():
    assert MESH_TO_IBUG68.shape == (68,)
    assert len(set(MESH_TO_IBUG68.tolist())) == 68
    assert MESH_TO_IBUG68.min() >= 0 and MESH_TO_IBUG68.max() < 468


def test_box_iou():
    a = np.array([0, 0, 10, 10], np.float32)
    assert box_iou(a, a) == pytest.approx(1.0)
    assert box_iou(a, np.array([5, 0, 15, 10], np.float32)) == pytest.approx(50 / 150)
    assert box_iou(a, np.array([20, 20, 30, 30], np.float32)) == 0.0


def test_fill_missing_interpolates_and_holds_ends():
    values = np.array([0, 0, 2, 0, 0, 8, 0], np.float32)[:, None]
    found = np.array([False, False, True, False, False, True, False])
    filled = fill_missing(values, found)[:, 0]
    np.testing.assert_allclose(filled, [2, 2, 2, 4, 6, 8, 8])
    with pytest.raises(NoFaceError):
        fill_missing(values, np.zeros(7, bool))


def test_select_track_keeps_the_big_face_through_gaps_and_shuffles():
    rng = np.random.default_rng(0)
    num_frames = 40
    detections = []
    for t in range(num_frames):
        big = _face(150 + t, 120, 1.0)            # drifts right, towards where the small one was
        # a smaller face crosses from the right, over the big face's last box while it is missed
        small = _face(460 - 25 * t, 125, 0.6)
        faces = [] if 10 <= t < 15 else [big]      # the big face is missed for 5 frames
        if t % 7 != 3:                             # the small one flickers
            faces.append(small)
        rng.shuffle(faces)                         # detector output order means nothing
        detections.append(faces)
    track = select_track(detections)
    assert track.landmarks.shape == (num_frames, 68, 2) and track.landmarks.dtype == np.float32
    np.testing.assert_array_equal(track.found, [not (10 <= t < 15) for t in range(num_frames)])
    centres = track.landmarks.mean(axis=1)
    # Every frame, found or filled, follows the big face (centre x = 150 + t), never the small one.
    np.testing.assert_allclose(centres[:, 0], 150 + np.arange(num_frames), atol=1e-3)
    widths = track.boxes[:, 2] - track.boxes[:, 0]
    assert widths.min() > 0.9 * np.ptp(MEAN_FACE_68[:, 0])


def test_select_track_prefers_persistent_over_briefly_larger():
    detections = [[_face(100, 100, 0.8)] for _ in range(30)]
    for t in range(3):
        detections[t].append(_face(400, 100, 1.2))   # a large face for 3 frames only
    track = select_track(detections)
    assert track.found.all()
    assert np.allclose(track.landmarks.mean(axis=1)[:, 0], 100, atol=1e-3)


def test_select_track_without_faces_raises():
    with pytest.raises(NoFaceError):
        select_track([[] for _ in range(5)])
    flicker = [[] for _ in range(30)]
    flicker[7] = [_face(100, 100, 1.0)]     # a one-frame false alarm is not a face
    flicker[20] = [_face(300, 100, 1.0)]
    with pytest.raises(NoFaceError):
        select_track(flicker)
    # a clip shorter than min_track_frames needs its face in every frame
    assert select_track([flicker[7], flicker[7]], min_track_frames=3).found.tolist() == [True, True]
    assert select_track(flicker[7:8], min_track_frames=3).found.tolist() == [True]


def _write_sidecar(path, num_frames=6, drop=None, **overrides):
    face = np.stack([_face(200 + t, 150, 1.0) for t in range(num_frames)])
    arrays = {
        "face_box": np.stack([landmarks_box(f) for f in face]),
        "mouth_corners": face[:, [48, 54]],
        "outer_lip": face[:, 48:60],
        "inner_lip": face[:, 60:68],
    }
    if drop:
        arrays.pop(drop)
    arrays.update(overrides)
    np.savez(path, **arrays)
    return face


def test_sidecar_roundtrip(tmp_path):
    assert sidecar_path(tmp_path / "s1" / "utt.mp4") == tmp_path / "s1" / "utt.landmarks.npz"
    path = tmp_path / "utt.landmarks.npz"
    face = _write_sidecar(path, found=np.array([True, False, True, True, True, False]))
    track = load_sidecar(path)
    assert track.layout == LAYOUT_LIPS
    assert track.landmarks.shape == (6, 2 + 12 + 8, 2)
    np.testing.assert_array_equal(track.found, [True, False, True, True, True, False])
    np.testing.assert_allclose(track.landmarks[0, :2], face[0, [48, 54]])
    # frame 1 is interpolated between 0 and 2, frame 5 held from 4 (the face moves 1 px per frame)
    np.testing.assert_allclose(track.landmarks[1], face[1, [48, 54] + list(range(48, 68))], atol=1e-4)
    np.testing.assert_allclose(track.landmarks[5], track.landmarks[4])


def test_sidecar_with_eye_corners(tmp_path):
    path = tmp_path / "utt.landmarks.npz"
    face = _write_sidecar(path)
    with np.load(path) as data:
        arrays = dict(data)
    np.savez(path, eye_corners=face[:, [36, 39, 42, 45]], **arrays)
    track = load_sidecar(path)
    assert track.layout == LAYOUT_LIPS_EYES and track.landmarks.shape == (6, 4 + 2 + 12 + 8, 2)
    np.testing.assert_allclose(track.landmarks[:, :6], face[:, [36, 39, 42, 45, 48, 54]])


@pytest.mark.parametrize("case", ["missing_key", "bad_shape", "not_npz"])
def test_sidecar_errors(tmp_path, case):
    path = tmp_path / "utt.landmarks.npz"
    if case == "missing_key":
        _write_sidecar(path, drop="inner_lip")
    elif case == "bad_shape":
        _write_sidecar(path, mouth_corners=np.zeros((5, 2, 2), np.float32))
    else:
        path.write_text("not a zip file")
    with pytest.raises(InputError):
        load_sidecar(path)


def test_padded_region_fills_outside_with_black():
    from l2s.vision.face import _padded_region

    frame = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3) + 1
    np.testing.assert_array_equal(_padded_region(frame, 1, 1, 3), frame[1:4, 1:4])
    out = _padded_region(frame, -2, 3, 4)
    assert out.shape == (4, 4, 3)
    np.testing.assert_array_equal(out[:2, 2:], frame[3:5, 0:2])
    assert not out[:, :2].any() and not out[2:].any()
    assert not _padded_region(frame, 10, 10, 3).any()
