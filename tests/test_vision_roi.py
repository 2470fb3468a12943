"""Mouth ROI geometry on synthetic frames: smoothing, alignment, crop centre, fixture reference face."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from l2s.config import ROI_SIZE
from l2s.errors import InputError
from l2s.vision.face import LAYOUT_IBUG68, LAYOUT_LIPS, LAYOUT_LIPS_EYES, FaceTrack, landmarks_box
from l2s.vision.roi import (MEAN_FACE_68, RoiOptions, crop_transforms, mouth_roi, similarity_lstsq,
                            smooth_landmarks, to_gray)


def _similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def _synthetic_clip(num_frames: int = 8, angle: float = 20.0, scale: float = 1.5):
    """Frames with a bright filled mouth polygon on a face rotated by ``angle``, and its landmarks."""
    frames, faces = [], []
    for t in range(num_frames):
        m = _similarity(angle, scale, 150 + 2 * t, 40)
        face = _apply(m, MEAN_FACE_68).astype(np.float32)
        img = np.full((480, 640, 3), 40, np.uint8)
        cv2.fillPoly(img, [np.round(face[48:60]).astype(np.int32)], (250, 200, 200))
        frames.append(img)
        faces.append(face)
    return np.stack(frames), np.stack(faces)


def test_mean_face_matches_auto_avsr_fixture(auto_avsr_fixtures):
    constants = json.loads((auto_avsr_fixtures / "constants.json").read_text())
    reference = np.array(constants["video"]["mouth_roi"]["reference_landmarks_68x2"])
    np.testing.assert_allclose(MEAN_FACE_68, reference, atol=1e-4)
    assert constants["video"]["mouth_roi"]["crop_height"] == ROI_SIZE
    assert constants["video"]["mouth_roi"]["window_margin"] == RoiOptions().smooth_window


def test_smooth_landmarks_recipe():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(30, 68, 2)) * 3 + 100
    out = smooth_landmarks(pts, window=12)
    # position follows each frame; the first and last frames have no neighbours in their window
    np.testing.assert_allclose(out.mean(axis=1), pts.mean(axis=1), atol=1e-9)
    np.testing.assert_allclose(out[0], pts[0])
    np.testing.assert_allclose(out[-1], pts[-1])
    # in the middle: the mean of 13 frames around t, shifted
    t = 15
    expected = pts[t - 6:t + 7].mean(axis=0)
    expected += pts[t].mean(axis=0) - expected.mean(axis=0)
    np.testing.assert_allclose(out[t], expected, atol=1e-9)
    # noise on the shape is reduced
    assert np.std(out[6:-6] - out[6:-6].mean(axis=0)) < 0.5 * np.std(pts[6:-6] - pts[6:-6].mean(axis=0))


def test_similarity_lstsq_recovers_transform():
    m = _similarity(-33.0, 0.7, 12.0, -5.0)
    np.testing.assert_allclose(similarity_lstsq(MEAN_FACE_68, _apply(m, MEAN_FACE_68)), m, atol=1e-9)


def test_to_gray_uses_torchvision_weights():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [100, 150, 200]]], np.uint8)
    np.testing.assert_array_equal(to_gray(rgb), [[76, 150, 29, np.rint(0.2989 * 100 + 0.587 * 150 + 0.114 * 200)]])


@pytest.mark.parametrize("layout", [LAYOUT_IBUG68, LAYOUT_LIPS, LAYOUT_LIPS_EYES])
def test_rotated_mouth_is_centred_and_level(layout):
    frames, faces = _synthetic_clip(angle=20.0, scale=1.5)
    if layout == LAYOUT_IBUG68:
        points, boxes = faces, np.stack([landmarks_box(f) for f in faces])
    elif layout == LAYOUT_LIPS_EYES:  # a sidecar with eye corners
        points = np.concatenate([faces[:, [36, 39, 42, 45, 48, 54]], faces[:, 48:60], faces[:, 60:68]], axis=1)
        boxes = np.zeros((len(frames), 4), np.float32)  # unused: the eyes give the scale
    else:  # what a sidecar holds: corners, outer and inner lip, and a face box
        points = np.concatenate([faces[:, [48, 54]], faces[:, 48:60], faces[:, 60:68]], axis=1)
        boxes = np.stack([landmarks_box(f) for f in faces])
        # an axis-aligned box of the rotated face is wider than the face: give the unrotated width
        width = 1.5 * np.ptp(MEAN_FACE_68[:, 0])
        boxes[:, 2] = boxes[:, 0] + width
    track = FaceTrack(landmarks=points, found=np.ones(len(frames), bool), boxes=boxes, layout=layout)
    result = mouth_roi(frames, track)
    assert result.roi.shape == (len(frames), ROI_SIZE, ROI_SIZE) and result.roi.dtype == np.uint8
    np.testing.assert_allclose(result.mouth_centres, ROI_SIZE / 2, atol=0.5)
    # the crop undoes the rotation and the 1.5x scale: the face is at the mean-face scale
    for m in result.transforms:
        lin = m[:, :2].astype(np.float64)
        np.testing.assert_allclose(np.degrees(np.arctan2(lin[1, 0], lin[0, 0])), -20.0, atol=1.0)
        np.testing.assert_allclose(np.sqrt(abs(np.linalg.det(lin))), 1 / 1.5, rtol=0.03)
    # the bright mouth blob sits at the centre, wider than tall (level)
    ys, xs = np.nonzero(result.roi[3] > 150)
    assert abs(xs.mean() - ROI_SIZE / 2) < 2 and abs(ys.mean() - ROI_SIZE / 2) < 3
    assert np.ptp(xs) > 2 * np.ptp(ys)


def test_track_length_mismatch():
    frames, faces = _synthetic_clip(num_frames=8)
    boxes = np.stack([landmarks_box(f) for f in faces])
    short = FaceTrack(landmarks=faces[:7], found=np.ones(7, bool), boxes=boxes[:7])
    result = mouth_roi(frames, short)   # one frame short: held, marked not found
    assert result.roi.shape[0] == 8 and not result.found[-1] and result.found[:7].all()
    very_short = FaceTrack(landmarks=faces[:3], found=np.ones(3, bool), boxes=boxes[:3])
    with pytest.raises(InputError):
        mouth_roi(frames, very_short)
    # frames from a generator (streamed), one fewer than the landmarks: the extra landmark is dropped
    full = FaceTrack(landmarks=faces, found=np.ones(8, bool), boxes=boxes)
    streamed = mouth_roi((f for f in frames[:7]), full)
    assert streamed.roi.shape[0] == 7 and streamed.track.num_frames == 7 and streamed.found.all()
    np.testing.assert_array_equal(streamed.roi, mouth_roi(frames, full).roi[:7])


def test_crop_transforms_are_smooth_over_jitter():
    rng = np.random.default_rng(1)
    _, faces = _synthetic_clip(num_frames=40, angle=0.0, scale=1.0)
    noisy = faces + rng.normal(scale=1.0, size=faces.shape).astype(np.float32)
    boxes = np.stack([landmarks_box(f) for f in noisy])
    smooth = crop_transforms(FaceTrack(noisy, np.ones(40, bool), boxes), RoiOptions(smooth_window=12))
    raw = crop_transforms(FaceTrack(noisy, np.ones(40, bool), boxes), RoiOptions(smooth_window=0))
    scale = np.sqrt(np.abs(np.linalg.det(smooth[:, :, :2])))
    raw_scale = np.sqrt(np.abs(np.linalg.det(raw[:, :, :2])))
    assert np.std(np.diff(scale)) < 0.5 * np.std(np.diff(raw_scale))
