"""Face landmarks through a video: detect a face once, then follow it with its own landmarks.

This is MediaPipe's video (tracking) mode, written out so that the faces it follows can be small
(the full-range detector finds them, where MediaPipe's face mesh only runs the short-range one)
and several: a face found by the detector is read by the 468-point landmark model on a square
region around it (:class:`Region`: 1.5 times the face, turned upright by the eye line); in the
next frame the region comes from the landmarks just found, so the detector is not needed again
until the face is lost, or for the periodic scan for new faces (every ``scan_every`` frames).
A frame costs one landmark-model run per followed face (about 4 ms on one core), where the
per-frame path (:class:`l2s.vision.face.FaceMeshDetector`) also runs a detector on every frame
and every face.

The model only sees its region at 192 px: a region much larger than ``crop_size`` pixels is
reduced first by a whole factor (block averages, no aliasing on large faces), and only the
region's pixels are copied into the graph, so the cost per frame hardly depends on the video's
resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from l2s.vision import graphs
from l2s.vision.mesh import MESH_TO_IBUG68, box_iou, landmarks_box

#: Region side in face sides, and the mesh points whose line turns it upright (MediaPipe's
#: face_landmark_landmarks_to_roi: outer eye corners 33 and 263; for a detection its key points 0 and 1).
REGION_SCALE = 1.5
EYE_LINE_MESH = (33, 263)
#: Frames larger than this (longest side, pixels) are area-shrunk before the detector, which sees 192 px anyway.
FINDER_MAX_SIDE = 640


@dataclass(frozen=True)
class Region:
    """A square region of a frame, turned by ``rotation``: what the landmark model reads.

    Attributes:
        cx: centre x in pixels.
        cy: centre y in pixels.
        side: side in pixels.
        rotation: clockwise radians that make the face upright (MediaPipe's ``NormalizedRect.rotation``).
    """

    cx: float
    cy: float
    side: float
    rotation: float

    def contains(self, x: float, y: float) -> bool:
        """Whether the point lies in the region's axis-aligned bounding square (inscribed circle test is too tight)."""
        half = self.side / 2
        return abs(x - self.cx) <= half and abs(y - self.cy) <= half


def _rotation(x0: float, y0: float, x1: float, y1: float) -> float:
    """MediaPipe's DetectionsToRectsCalculator rotation of the vector (x0, y0) -> (x1, y1), target angle 0."""
    angle = -math.atan2(-(y1 - y0), x1 - x0)
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def region_from_points(points: np.ndarray, scale: float = REGION_SCALE) -> Region:
    """The region of the next frame from this frame's ``(468, 2)`` mesh points in pixels."""
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    (ax, ay), (bx, by) = points[EYE_LINE_MESH[0]], points[EYE_LINE_MESH[1]]
    return Region(cx=float(x0 + x1) / 2, cy=float(y0 + y1) / 2, side=scale * float(max(x1 - x0, y1 - y0)),
                  rotation=_rotation(ax, ay, bx, by))


def region_from_detection(box: np.ndarray, eyes: np.ndarray, scale: float = REGION_SCALE) -> Region:
    """The region of a detector's face: ``box`` ``(4,)`` x0, y0, x1, y1 and ``eyes`` ``(2, 2)`` in pixels."""
    (ax, ay), (bx, by) = eyes
    return Region(cx=float(box[0] + box[2]) / 2, cy=float(box[1] + box[3]) / 2,
                  side=scale * float(max(box[2] - box[0], box[3] - box[1])), rotation=_rotation(ax, ay, bx, by))


def region_pixels(frame: np.ndarray, region: Region, max_side: int) -> Tuple[np.ndarray, int, int, int, int]:
    """The pixels of ``frame`` under ``region``'s bounding square (clipped to the frame), at a reduced
    resolution when the region is much larger than ``max_side``.

    The reduction is by a whole factor ``k = round(side / max_side)`` with area averaging (each output
    pixel the mean of a ``k x k`` block: no aliasing, and ~25x cheaper than a fractional area resize).

    Returns:
        ``(image, x0, y0, width, height)``: the ``(height / k, width / k, 3)`` uint8 image and where its source
        rectangle ``[x0, x0 + width) x [y0, y0 + height)`` lies in the frame (the graph samples black beyond it).
    """
    import cv2

    h, w = frame.shape[:2]
    reach = region.side / 2 * (abs(math.cos(region.rotation)) + abs(math.sin(region.rotation))) + 1
    x0, y0 = max(int(math.floor(region.cx - reach)), 0), max(int(math.floor(region.cy - reach)), 0)
    x1, y1 = min(int(math.ceil(region.cx + reach)), w), min(int(math.ceil(region.cy + reach)), h)
    k = max(int(round(region.side / max_side)), 1)
    if x1 - x0 < 2 * k or y1 - y0 < 2 * k:  # the region left the frame: give the model something to reject
        x0, y0, x1, y1 = 0, 0, w, h
    x1, y1 = x1 - (x1 - x0) % k, y1 - (y1 - y0) % k  # whole blocks (drops at most k - 1 edge pixels)
    image = frame[y0:y1, x0:x1]
    if k > 1:
        image = cv2.resize(image, ((x1 - x0) // k, (y1 - y0) // k), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image), x0, y0, x1 - x0, y1 - y0


class FaceLandmarkTracker:
    """Faces and their landmarks in consecutive RGB frames of one clip; a context manager.

    Calling it on a frame ``(H, W, 3)`` uint8 RGB returns a list of ``(68, 2)`` float32 iBUG
    landmark arrays in pixels, one per face found, largest first (the interface of
    :class:`~l2s.vision.face.FaceMeshDetector`). The graphs are the process's shared ones
    (:mod:`l2s.vision.graphs`); the tracker itself only holds the faces it follows.

    Args:
        options: a :class:`~l2s.vision.face.DetectorOptions` (``max_faces``, ``scan_every``,
            ``crop_size``, thresholds); :func:`l2s.vision.face.face_detector` makes the tracker with them.
    """

    def __init__(self, options):
        self.options = options
        self._finder: Optional[graphs.Graph] = None
        self._landmarker: Optional[graphs.Graph] = None
        self._meshes: List[np.ndarray] = []  # (468, 2) points of the faces followed, largest first
        self._count = 0
        self._expected = 0  # faces seen at the last periodic scan: fewer now means one is lost, so scan

    def __enter__(self) -> "FaceLandmarkTracker":
        o = self.options
        self._finder = graphs.face_finder(o.min_detection_confidence)
        self._landmarker = graphs.region_landmarker()
        self._meshes, self._count, self._expected = [], 0, 0
        return self

    def __exit__(self, *exc) -> None:
        self._finder = self._landmarker = None  # the graphs stay loaded for the next clip
        self._meshes = []

    def __call__(self, frame: np.ndarray) -> List[np.ndarray]:
        if self._landmarker is None:
            raise RuntimeError("FaceLandmarkTracker used outside its `with` block")
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {frame.shape} {frame.dtype}")
        every = self.options.scan_interval
        regions = [region_from_points(m) for m in self._meshes]
        scan = not regions or self._count % every == 0 or len(regions) < self._expected
        if scan:
            for region in self._find(frame):
                if not any(r.contains(region.cx, region.cy) for r in regions):
                    regions.append(region)
            regions = regions[: 2 * self.options.max_faces]  # a crowd: bound the model runs per frame
        meshes: List[np.ndarray] = []
        for region in regions:
            mesh = self._landmarks(frame, region)
            if mesh is not None and all(box_iou(landmarks_box(mesh), landmarks_box(m)) < 0.5 for m in meshes):
                meshes.append(mesh)
        meshes.sort(key=lambda m: -float(np.prod(np.ptp(m, axis=0))))
        self._meshes = meshes[: self.options.max_faces]
        if scan and self._count % every == 0:
            self._expected = len(self._meshes)
        self._count += 1
        return [m[MESH_TO_IBUG68].astype(np.float32) for m in self._meshes]

    def _find(self, frame: np.ndarray) -> List[Region]:
        """Regions of the faces the full-range detector sees, largest first."""
        import cv2

        h, w = frame.shape[:2]
        image = frame
        if max(h, w) > FINDER_MAX_SIDE:  # its 192 px input loses nothing; the copy into the graph shrinks
            f = FINDER_MAX_SIDE / max(h, w)
            image = cv2.resize(frame, (max(int(round(w * f)), 1), max(int(round(h * f)), 1)),
                               interpolation=cv2.INTER_AREA)
        result = self._finder.process(np.ascontiguousarray(image))
        regions = []
        for det in result.detections or []:
            data = det.location_data
            rel = data.relative_bounding_box
            box = np.array([rel.xmin * w, rel.ymin * h, (rel.xmin + rel.width) * w, (rel.ymin + rel.height) * h])
            eyes = np.array([(k.x * w, k.y * h) for k in list(data.relative_keypoints)[:2]])
            if eyes.shape != (2, 2):
                continue
            regions.append(region_from_detection(box, eyes))
        return sorted(regions, key=lambda r: -r.side)

    def _landmarks(self, frame: np.ndarray, region: Region) -> Optional[np.ndarray]:
        """``(468, 2)`` float64 mesh points in frame pixels of the face in ``region``, or None."""
        image, x0, y0, width, height = region_pixels(frame, region, self.options.crop_size)
        rect = graphs.normalized_rect((region.cx - x0) / width, (region.cy - y0) / height, region.side / width,
                                      region.side / height, region.rotation)
        landmarks, presence = self._landmarker.process((image, rect))
        if landmarks is None or presence < self.options.min_presence:
            return None
        return graphs.landmark_array(landmarks, graphs.MESH_POINTS) * (width, height) + (x0, y0)
