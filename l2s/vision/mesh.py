"""Geometry of face-mesh landmarks, shared by the per-frame detector (:mod:`l2s.vision.face`) and the
tracker (:mod:`l2s.vision.tracker`): the iBUG-68 subset of MediaPipe's 468 points, and boxes."""

from __future__ import annotations

import numpy as np

#: MediaPipe face-mesh vertex for each of the 68 iBUG points (jaw 0-16, brows 17-26,
#: nose 27-35, eyes 36-47, outer lip 48-59, inner lip 60-67).
MESH_TO_IBUG68 = np.array([
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,
    71, 63, 105, 66, 107, 336, 296, 334, 293, 301,
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    78, 82, 13, 312, 308, 317, 14, 87,
], dtype=np.int64)


def landmarks_box(points: np.ndarray) -> np.ndarray:
    """The bounding box ``(4,)`` x0, y0, x1, y1 of ``(K, 2)`` points."""
    return np.concatenate([points.min(axis=0), points.max(axis=0)]).astype(np.float32)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``x0, y0, x1, y1`` boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
