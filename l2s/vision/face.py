"""Face landmarks per frame, and one face tracked through a clip.

Two sources give a :class:`FaceTrack`:

* :func:`track_face` finds up to ``max_faces`` faces per frame with MediaPipe (bundled
  models, offline), links them into tracks by box overlap and returns the largest, most
  persistent one; identities never swap. The 468 mesh points are reduced to the 68-point iBUG
  layout (``layout="ibug68"``) that Auto-AVSR's mouth crop is defined on. Two detectors, chosen by
  :attr:`DetectorOptions.mode`:

  - ``"track"`` (default, :class:`~l2s.vision.tracker.FaceLandmarkTracker`): the full-range face
    detector finds a face, then the landmark model follows it on a region set by its previous
    landmarks (MediaPipe's video mode); about 4 ms per face per frame on one core;
  - ``"per-frame"`` (:class:`FaceMeshDetector`, the earlier path, kept for comparison): face mesh
    in static-image mode on a crop around each face in every frame, which runs a detector before
    the landmarks each time; about 7-10 ms per face per frame.

* :func:`load_sidecar` reads the landmark file the synthetic corpus writes next to each
  clip (``<utt>.landmarks.npz`` beside ``<utt>.mp4``), skipping detection
  (``layout="lips+eyes"``, or ``"lips"`` without eye corners). Its arrays, all float pixel
  coordinates (x, y) of the video frames at 25 fps::

      face_box       (T, 4)     x0, y0, x1, y1 of the face
      mouth_corners  (T, 2, 2)  the two lip corners, image-left first
      outer_lip      (T, K, 2)  outer lip contour
      inner_lip      (T, K', 2) inner lip contour
      eye_corners    (T, 4, 2)  optional: image-left eye outer, inner, image-right eye inner,
                                outer (iBUG points 36, 39, 42, 45)
      found          (T,)       optional bool; all frames found when absent

  The track's points are ``eye_corners`` (if present), ``mouth_corners``, ``outer_lip``,
  then ``inner_lip``.

Frames where the tracked face is missing are filled from their neighbours (linear
interpolation between the nearest found frames, held at the ends); ``found`` says which
frames were measured. A clip without any face raises :class:`~l2s.errors.NoFaceError`.
The MediaPipe graphs are built once per process (:mod:`l2s.vision.graphs`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence, Union

import numpy as np

from l2s.errors import InputError, NoFaceError
from l2s.vision.mesh import MESH_TO_IBUG68, box_iou, landmarks_box

PathLike = Union[str, "os.PathLike[str]"]

LAYOUT_IBUG68 = "ibug68"
LAYOUT_LIPS = "lips"
LAYOUT_LIPS_EYES = "lips+eyes"
SIDECAR_SUFFIX = ".landmarks.npz"
SIDECAR_KEYS = ("face_box", "mouth_corners", "outer_lip", "inner_lip")


@dataclass(frozen=True)
class FaceTrack:
    """One face followed through a clip.

    Attributes:
        landmarks: ``(T, K, 2)`` float32 pixel coordinates (x, y); filled where not found.
        found: ``(T,)`` bool, True where the face was measured in that frame.
        boxes: ``(T, 4)`` float32 face boxes ``x0, y0, x1, y1`` in pixels; filled like landmarks.
        layout: ``"ibug68"`` (68 iBUG points, from face mesh), ``"lips+eyes"`` (sidecar: 4 eye
            corners, 2 mouth corners, lip contours) or ``"lips"`` (sidecar: mouth corners, lip contours).
    """

    landmarks: np.ndarray
    found: np.ndarray
    boxes: np.ndarray
    layout: str = LAYOUT_IBUG68

    @property
    def num_frames(self) -> int:
        return int(self.found.shape[0])


MODE_TRACK = "track"
MODE_PER_FRAME = "per-frame"
DETECTOR_MODES = (MODE_TRACK, MODE_PER_FRAME)
SCAN_EVERY = {MODE_TRACK: 25, MODE_PER_FRAME: 10}


@dataclass(frozen=True)
class DetectorOptions:
    """Face detection and tracking settings.

    Attributes:
        mode: ``"track"`` (detect, then follow each face with its landmarks: fast) or ``"per-frame"``
            (face mesh with its own detector on every frame: the earlier path, kept for comparison).
        max_faces: faces kept per frame (the tracked one is chosen among them).
        min_detection_confidence: threshold of MediaPipe's face detector and of the mesh's.
        min_presence: face-presence score the mesh's landmark model must give (rejects the
            detector's false alarms on round, face-coloured shapes).
        scan_every: run the full-range face detector on the whole frame every this many frames
            (and whenever fewer faces are followed than at the last such scan); in between, faces are
            found again around where they were in the previous frame. None: the mode's default
            (:data:`SCAN_EVERY`: 10 frames per-frame as before, 25 when tracking, where the scan
            only looks for new faces).
        crop_scale: per-frame mode: side of the square region given to the mesh, in face-box sides.
        crop_size: pixels of that region (the mesh model itself works at 192 px); in track mode, a
            region ``k`` times larger than this (``k >= 1.5``) is reduced by the whole factor ``round(k)``.
        min_iou: box overlap needed to link a detection to a track.
        min_track_frames: a track seen in fewer frames is noise (unless the clip is shorter).
    """

    mode: str = MODE_TRACK
    max_faces: int = 4
    min_detection_confidence: float = 0.5
    min_presence: float = 0.8
    scan_every: Optional[int] = None
    crop_scale: float = 2.0
    crop_size: int = 256
    min_iou: float = 0.3
    min_track_frames: int = 3

    def __post_init__(self) -> None:
        if self.mode not in DETECTOR_MODES:
            raise InputError(f"unknown face detector mode {self.mode!r}; expected one of {', '.join(DETECTOR_MODES)}")

    @property
    def scan_interval(self) -> int:
        """Frames between two full-frame detector scans."""
        return max(int(self.scan_every if self.scan_every is not None else SCAN_EVERY[self.mode]), 1)


class FaceMeshDetector:
    """Faces and their landmarks in RGB frames, afresh in every frame; a context manager (one per clip).

    The per-frame path (``DetectorOptions(mode="per-frame")``). Two MediaPipe graphs, both bundled
    with the package: the full-range face detector (faces down to a few percent of the frame
    width) proposes regions, and face mesh in static-image mode, run on a square crop around each
    region, gives the landmarks (running its own short-range detector in the crop first). Face
    mesh on a whole frame alone only sees faces that fill a good part of it (its own detector is
    the short-range one, on a 128 px image), which misses the second person in a wide two-shot.
    The regions of the faces found in one frame are reused in the next, so the full-range detector
    only runs every ``scan_every`` frames, or on every frame while fewer faces are followed than at
    the last periodic scan. :class:`~l2s.vision.tracker.FaceLandmarkTracker` does the same without
    the detector inside the mesh, 1.6-1.7 times faster (README, "Speed").

    Calling it on a frame ``(H, W, 3)`` uint8 RGB returns a list of ``(68, 2)`` float32 iBUG
    landmark arrays in pixels, one per face found, largest first.
    """

    def __init__(self, options: Optional[DetectorOptions] = None):
        self.options = options or DetectorOptions(mode=MODE_PER_FRAME)
        self._finder = None
        self._mesh = None
        self._regions: List[np.ndarray] = []
        self._count = 0
        self._expected = 0  # faces seen at the last periodic scan: fewer now means one is lost, so scan

    def __enter__(self) -> "FaceMeshDetector":
        from l2s.vision import graphs

        o = self.options
        self._finder = graphs.face_finder(o.min_detection_confidence)
        self._mesh = graphs.static_mesh(o.min_detection_confidence, o.min_presence)
        self._regions, self._count, self._expected = [], 0, 0
        return self

    def __exit__(self, *exc) -> None:
        self._finder = self._mesh = None  # the graphs stay loaded for the next clip

    def __call__(self, frame: np.ndarray) -> List[np.ndarray]:
        if self._mesh is None:
            raise RuntimeError("FaceMeshDetector used outside its `with` block")
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {frame.shape} {frame.dtype}")
        frame = np.ascontiguousarray(frame)
        regions = list(self._regions)
        every = self.options.scan_interval
        scan = not regions or self._count % every == 0 or len(regions) < self._expected
        if scan:
            for box in sorted(self._find(frame), key=lambda b: -float((b[2] - b[0]) * (b[3] - b[1]))):
                centre = (box[:2] + box[2:]) / 2
                if not any(r[0] <= centre[0] <= r[2] and r[1] <= centre[1] <= r[3] for r in regions):
                    regions.append(box)
            regions = regions[: 2 * self.options.max_faces]  # a crowd: bound the mesh runs per frame
        faces: List[np.ndarray] = []
        for region in regions:
            points = self._mesh_in(frame, region)
            if points is not None and all(box_iou(landmarks_box(points), landmarks_box(f)) < 0.5 for f in faces):
                faces.append(points)
        faces.sort(key=lambda f: -float(np.prod(np.ptp(f, axis=0))))
        faces = faces[: self.options.max_faces]
        self._regions = [landmarks_box(f) for f in faces]
        if scan and self._count % every == 0:
            self._expected = len(faces)
        self._count += 1
        return faces

    def _find(self, frame: np.ndarray) -> List[np.ndarray]:
        """Face boxes ``x0, y0, x1, y1`` in pixels from the full-range detector."""
        result = self._finder.process(frame)
        h, w = frame.shape[:2]
        boxes = []
        for det in result.detections or []:
            rel = det.location_data.relative_bounding_box
            boxes.append(np.array([rel.xmin * w, rel.ymin * h, (rel.xmin + rel.width) * w,
                                   (rel.ymin + rel.height) * h], dtype=np.float32))
        return boxes

    def _mesh_in(self, frame: np.ndarray, box: np.ndarray) -> Optional[np.ndarray]:
        """iBUG landmarks ``(68, 2)`` of the face in a square crop around ``box``, or None."""
        import cv2

        from l2s.vision import graphs

        size = self.options.crop_size
        side = max(int(round(self.options.crop_scale * max(box[2] - box[0], box[3] - box[1]))), 8)
        x0 = int(round((box[0] + box[2] - side) / 2))
        y0 = int(round((box[1] + box[3] - side) / 2))
        region = _padded_region(frame, x0, y0, side)
        # resize (area-averaged when shrinking) rather than warp: no aliasing on large faces, and
        # MediaPipe's normalised coordinates map back exactly as x0 + x * side
        crop = cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)
        result = self._mesh.process(np.ascontiguousarray(crop))
        if not result.multi_face_landmarks:
            return None
        pts = graphs.landmark_array(result.multi_face_landmarks[0], graphs.MESH_POINTS)
        return (pts[MESH_TO_IBUG68] * side + (x0, y0)).astype(np.float32)


def _padded_region(frame: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """The ``side`` x ``side`` square of ``frame`` at ``(x0, y0)``, black where it leaves the frame."""
    h, w = frame.shape[:2]
    if x0 >= 0 and y0 >= 0 and x0 + side <= w and y0 + side <= h:
        return frame[y0:y0 + side, x0:x0 + side]
    out = np.zeros((side, side, frame.shape[2]), frame.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = frame[sy0:sy1, sx0:sx1]
    return out


def face_detector(options: Optional[DetectorOptions] = None):
    """The detector of ``options.mode``: a context manager called on each frame of one clip in turn."""
    options = options or DetectorOptions()
    if options.mode == MODE_PER_FRAME:
        return FaceMeshDetector(options)
    from l2s.vision.tracker import FaceLandmarkTracker

    return FaceLandmarkTracker(options)


def detect_faces(frames: Iterable[np.ndarray], options: Optional[DetectorOptions] = None,
                 on_frame: Optional[Callable[[], None]] = None) -> List[List[np.ndarray]]:
    """Face-mesh landmarks of every face in every frame.

    Args:
        frames: consecutive ``(H, W, 3)`` uint8 RGB frames of one clip (an array ``(T, H, W, 3)`` or
            any iterable; in track mode each frame's faces are looked for where the previous frame's were).
        options: detector settings.
        on_frame: called after each frame (progress bars).

    Returns:
        Per frame, a list of ``(68, 2)`` float32 iBUG landmark arrays (empty where no face).
    """
    out: List[List[np.ndarray]] = []
    with face_detector(options) as detector:
        for frame in frames:
            out.append(detector(frame))
            if on_frame is not None:
                on_frame()
    return out


def _similar_size(a: np.ndarray, b: np.ndarray, max_ratio: float = 1.5) -> bool:
    """Whether two boxes' sides are within ``max_ratio`` (a face does not grow 50% between sightings)."""
    side_a = np.sqrt(max((a[2] - a[0]) * (a[3] - a[1]), 1e-6))
    side_b = np.sqrt(max((b[2] - b[0]) * (b[3] - b[1]), 1e-6))
    return bool(max(side_a, side_b) <= max_ratio * min(side_a, side_b))


def _link_tracks(detections: Sequence[Sequence[np.ndarray]], min_iou: float) -> List[dict]:
    """Greedy frame-to-frame association by IoU with each track's last box.

    A track may pause (its face missed or occluded) and resume where it was last seen, by a face
    of about the same size; a detection joins at most one track and a track takes at most one
    detection per frame, best overlaps first, so two faces side by side never trade places.
    """
    tracks: List[dict] = []
    for t, faces in enumerate(detections):
        boxes = [landmarks_box(f) for f in faces]
        pairs = sorted(((box_iou(tr["last_box"], b), i, j) for i, tr in enumerate(tracks)
                        for j, b in enumerate(boxes) if _similar_size(tr["last_box"], b)), reverse=True)
        used_tracks, used_faces = set(), set()
        for iou, i, j in pairs:
            if iou < min_iou:
                break
            if i in used_tracks or j in used_faces:
                continue
            used_tracks.add(i)
            used_faces.add(j)
            tracks[i]["frames"][t] = faces[j]
            tracks[i]["last_box"] = boxes[j]
        for j, face in enumerate(faces):
            if j not in used_faces:
                tracks.append({"frames": {t: face}, "last_box": boxes[j]})
    return tracks


def _track_score(track: dict) -> float:
    # Size times persistence: the sum over frames of the box's geometric-mean side.
    sides = [np.sqrt(max(float(np.prod(np.ptp(p, axis=0))), 0.0)) for p in track["frames"].values()]
    return float(np.sum(sides))


def fill_missing(values: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Fill frames where ``found`` is False from their neighbours.

    Args:
        values: ``(T, ...)`` per-frame values (only found frames are read).
        found: ``(T,)`` bool, at least one True.

    Returns:
        ``(T, ...)`` float32: linear interpolation between the nearest found frames, held at the ends.
    """
    found = np.asarray(found, dtype=bool)
    idx = np.flatnonzero(found)
    if idx.size == 0:
        raise NoFaceError("no face found in any frame")
    flat = np.asarray(values, dtype=np.float32).reshape(len(found), -1)
    t = np.arange(len(found))
    filled = np.stack([np.interp(t, idx, flat[idx, c]) for c in range(flat.shape[1])], axis=1)
    return filled.astype(np.float32).reshape(np.shape(values))


def select_track(detections: Sequence[Sequence[np.ndarray]], min_iou: float = 0.3,
                 min_track_frames: int = 3) -> FaceTrack:
    """Link per-frame detections into tracks and keep the largest, most persistent one.

    Args:
        detections: per frame, a list of ``(K, 2)`` landmark arrays (as from :func:`detect_faces`).
        min_iou: box overlap needed to continue a track.
        min_track_frames: tracks seen in fewer frames (or fewer than the whole clip, if shorter)
            are dropped as false detections.

    Returns:
        The chosen face as a :class:`FaceTrack` with missing frames filled.

    Raises:
        NoFaceError: no face seen in enough frames.
    """
    num_frames = len(detections)
    needed = min(min_track_frames, num_frames)
    tracks = [tr for tr in _link_tracks(detections, min_iou) if len(tr["frames"]) >= needed]
    if not tracks:
        raise NoFaceError(f"no face found in {num_frames} frames")
    best = max(tracks, key=_track_score)
    k = next(iter(best["frames"].values())).shape[0]
    landmarks = np.zeros((num_frames, k, 2), dtype=np.float32)
    found = np.zeros(num_frames, dtype=bool)
    for t, pts in best["frames"].items():
        landmarks[t] = pts
        found[t] = True
    landmarks = fill_missing(landmarks, found)
    boxes = np.stack([landmarks_box(p) for p in landmarks])
    return FaceTrack(landmarks=landmarks, found=found, boxes=boxes, layout=LAYOUT_IBUG68)


def track_face(frames: Iterable[np.ndarray], options: Optional[DetectorOptions] = None,
               on_frame: Optional[Callable[[], None]] = None) -> FaceTrack:
    """Detect faces in every frame and follow the main one (see :func:`select_track`).

    Args:
        frames: ``(H, W, 3)`` uint8 RGB frames (an array ``(T, H, W, 3)`` or any iterable).
        options: detector settings.
        on_frame: called after each frame (progress bars).

    Raises:
        NoFaceError: no face in any frame (or no frames at all).
    """
    options = options or DetectorOptions()
    detections = detect_faces(frames, options, on_frame)
    if not detections:
        raise NoFaceError("the clip has no frames")
    return select_track(detections, options.min_iou, options.min_track_frames)


def sidecar_path(video_path: PathLike) -> Path:
    """Where the corpus writes the landmarks of ``<utt>.mp4``: ``<utt>.landmarks.npz``."""
    p = Path(video_path)
    return p.with_name(p.stem + SIDECAR_SUFFIX)


def load_sidecar(path: PathLike) -> FaceTrack:
    """Read a ``.landmarks.npz`` landmark file (format in the module docstring).

    Raises:
        InputError: the file is missing, unreadable, or lacks a key or has inconsistent shapes.
        NoFaceError: its ``found`` flags are all False.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: np.asarray(data[k], dtype=np.float32) for k in SIDECAR_KEYS if k in data}
            found = np.asarray(data["found"], dtype=bool) if "found" in data else None
            eyes = np.asarray(data["eye_corners"], dtype=np.float32) if "eye_corners" in data else None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read landmark file ({exc})") from exc
    missing = [k for k in SIDECAR_KEYS if k not in arrays]
    if missing:
        raise InputError(f"{path}: landmark file lacks {', '.join(missing)}")
    box, corners = arrays["face_box"], arrays["mouth_corners"]
    num_frames = box.shape[0]
    shapes_ok = (box.shape == (num_frames, 4) and corners.shape == (num_frames, 2, 2)
                 and all(arrays[k].ndim == 3 and arrays[k].shape[0] == num_frames and arrays[k].shape[2] == 2
                         for k in ("outer_lip", "inner_lip")))
    if not shapes_ok or num_frames == 0:
        raise InputError(f"{path}: inconsistent landmark shapes "
                         f"{ {k: v.shape for k, v in arrays.items()} }")
    if found is None:
        found = np.ones(num_frames, dtype=bool)
    if found.shape != (num_frames,):
        raise InputError(f"{path}: 'found' has shape {found.shape}, expected ({num_frames},)")
    if eyes is not None and eyes.shape != (num_frames, 4, 2):
        raise InputError(f"{path}: 'eye_corners' has shape {eyes.shape}, expected ({num_frames}, 4, 2)")
    parts = [corners, arrays["outer_lip"], arrays["inner_lip"]]
    if eyes is not None:
        parts.insert(0, eyes)
    points = np.concatenate(parts, axis=1)
    return FaceTrack(landmarks=fill_missing(points, found), found=found, boxes=fill_missing(box, found),
                     layout=LAYOUT_LIPS if eyes is None else LAYOUT_LIPS_EYES)
