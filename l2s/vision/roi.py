"""Mouth region of interest: smooth landmarks, align the face, crop a grayscale patch.

The recipe is Auto-AVSR's (so its VSR checkpoints see the crops they were trained on):

1. Landmarks are smoothed over time: for frame ``t`` the mean over ``[t-m, t+m]`` with
   ``m = min(window // 2, t, T-1-t)``, shifted so its centroid is frame ``t``'s raw centroid
   (shape and pose are smoothed, position follows the frame).
2. A similarity transform (rotation, uniform scale, translation) maps stable points onto
   Auto-AVSR's 68-point mean face in a 256x256 frame (:data:`MEAN_FACE_68`):
   for ``ibug68`` tracks, points 28, 33, 36, 39, 42, 45, 48, 54 (nose, eye and mouth corners)
   by ``cv2.estimateAffinePartial2D`` (LMEDS); for sidecar ``lips+eyes`` tracks the same with
   the eye and mouth corners (36, 39, 42, 45, 48, 54); for sidecar ``lips`` tracks (no eyes),
   the mouth-corner line gives the rotation and the face-box width the scale (the mouth width
   would normalise away the lip rounding the lip reader needs).
3. A ``size x size`` patch (``l2s.config.ROI_SIZE``) is cut centred on the mean of the aligned
   mouth points. Auto-AVSR warps into 256x256 and then cuts at integer offsets; here both
   steps are one warp (bilinear, black border), so the centre is exact.
4. The patch goes to grayscale with torchvision's weights (0.2989 R + 0.587 G + 0.114 B), the
   conversion Auto-AVSR applies at training time, and is rounded to uint8.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Union

import numpy as np

from l2s.config import ROI_SIZE
from l2s.errors import InputError
from l2s.io.video import DECODE_AHEAD
from l2s.vision.face import (LAYOUT_IBUG68, LAYOUT_LIPS, LAYOUT_LIPS_EYES, DetectorOptions, FaceTrack, load_sidecar,
                             track_face)

PathLike = Union[str, "os.PathLike[str]"]

#: Auto-AVSR's ``20words_mean_face.npy`` (68 iBUG points, x, y in a 256x256 frame), to 4 decimals.
MEAN_FACE_68 = np.array([
    (70.9238, 97.1376), (72.6252, 114.9036), (75.9894, 131.0740), (79.2696, 146.2117),
    (83.6135, 163.2602), (91.3313, 177.4454), (100.2717, 187.0886), (112.1244, 196.0035),
    (130.7418, 200.5300), (149.8553, 195.3120), (163.1017, 186.4406), (173.6533, 176.5725),
    (182.4361, 162.2799), (187.1674, 145.0939), (190.2291, 129.7242), (193.0212, 113.4592),
    (194.4386, 95.5795), (81.3310, 80.7954), (87.7591, 75.2798), (96.2269, 73.8386),
    (104.5552, 74.7403), (112.2319, 76.9767), (144.4958, 76.4239), (152.3480, 73.8333),
    (161.1305, 72.6357), (170.5872, 73.8479), (178.2141, 79.4380), (128.7337, 95.3596),
    (128.4885, 106.9246), (128.2448, 118.2729), (128.2660, 127.6987), (118.7600, 135.1936),
    (122.9631, 136.1462), (128.8702, 137.3025), (134.9428, 135.9972), (139.4826, 134.8776),
    (92.5225, 94.3688), (97.5852, 90.9598), (105.4137, 90.9135), (112.7724, 94.9436),
    (106.1036, 97.0849), (98.0463, 97.3634), (145.5251, 94.5350), (152.5895, 90.2149),
    (160.6117, 90.1994), (166.6771, 93.5656), (160.5597, 96.4813), (152.2047, 96.4728),
    (107.1676, 157.1961), (114.4761, 152.1201), (123.8485, 148.5186), (128.9763, 149.4155),
    (134.1436, 148.4263), (144.1772, 151.7934), (152.1928, 156.9871), (143.8597, 164.0035),
    (136.7442, 167.9430), (129.1528, 168.8185), (121.7951, 168.0227), (115.2751, 164.1516),
    (109.2309, 157.0017), (122.5027, 154.4073), (129.0286, 154.1210), (135.8365, 154.3121),
    (150.7578, 156.7951), (135.6620, 160.6298), (128.9522, 161.2876), (122.4878, 160.5088),
], dtype=np.float64)

STABLE_POINTS_68 = np.array([28, 33, 36, 39, 42, 45, 48, 54])
MOUTH_POINTS_68 = slice(48, 68)
# Per layout: (stable points of the track, their iBUG indices on the mean face, the mouth points).
_LAYOUT_POINTS = {
    LAYOUT_IBUG68: (STABLE_POINTS_68, STABLE_POINTS_68, MOUTH_POINTS_68),
    LAYOUT_LIPS_EYES: (np.arange(6), np.array([36, 39, 42, 45, 48, 54]), slice(4, None)),
    LAYOUT_LIPS: (None, None, slice(None)),
}
GRAY_WEIGHTS = np.array([0.2989, 0.587, 0.114], dtype=np.float32)  # torchvision rgb_to_grayscale
# Frames by which a landmark track may differ from its video (rounding in two resamplers).
LENGTH_SLACK = 2
# Larger videos are streamed twice by extract_roi rather than decoded into memory.
IN_MEMORY_BYTES = 1 << 30


@dataclass(frozen=True)
class RoiOptions:
    """Mouth-crop settings.

    Attributes:
        size: side of the square crop in pixels.
        smooth_window: temporal smoothing window in frames (Auto-AVSR: 12).
    """

    size: int = ROI_SIZE
    smooth_window: int = 12


@dataclass(frozen=True)
class MouthROI:
    """Mouth crops of a clip and how they were cut.

    Attributes:
        roi: ``(T, size, size)`` uint8 grayscale mouth crops.
        transforms: ``(T, 2, 3)`` float32 similarity maps from video-frame pixels to crop pixels.
        mouth_centres: ``(T, 2)`` float32 centroid of the frame's raw (unsmoothed) mouth
            landmarks in crop pixels; about ``(size / 2, size / 2)``.
        found: ``(T,)`` bool, where the face was measured (elsewhere landmarks were filled).
        track: the face track the crops come from.
    """

    roi: np.ndarray
    transforms: np.ndarray
    mouth_centres: np.ndarray
    found: np.ndarray
    track: FaceTrack

    @property
    def num_frames(self) -> int:
        return int(self.roi.shape[0])


def smooth_landmarks(points: np.ndarray, window: int = 12) -> np.ndarray:
    """Auto-AVSR's temporal smoothing of ``(T, K, 2)`` landmarks (see module docstring, step 1)."""
    points = np.asarray(points, dtype=np.float64)
    num_frames = points.shape[0]
    cums = np.concatenate([np.zeros((1,) + points.shape[1:]), np.cumsum(points, axis=0)])
    out = np.empty_like(points)
    for t in range(num_frames):
        m = min(window // 2, t, num_frames - 1 - t)
        mean = (cums[t + m + 1] - cums[t - m]) / (2 * m + 1)
        out[t] = mean + (points[t].mean(axis=0) - mean.mean(axis=0))
    return out


def _moving_mean(values: np.ndarray, window: int) -> np.ndarray:
    """The same centred, edge-shrinking window as :func:`smooth_landmarks`, without re-centring."""
    values = np.asarray(values, dtype=np.float64)
    cums = np.concatenate([np.zeros((1,) + values.shape[1:]), np.cumsum(values, axis=0)])
    n = values.shape[0]
    out = np.empty_like(values)
    for t in range(n):
        m = min(window // 2, t, n - 1 - t)
        out[t] = (cums[t + m + 1] - cums[t - m]) / (2 * m + 1)
    return out


def similarity_lstsq(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (no reflection) mapping ``src`` onto ``dst``, both ``(N, 2)``; a 2x3 matrix."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - ms, dst - md
    # With complex numbers z = x + iy the best similarity is d ~ a * s, a = <s, d> / <s, s>.
    zs, zd = s[:, 0] + 1j * s[:, 1], d[:, 0] + 1j * d[:, 1]
    a = np.vdot(zs, zd) / max(np.vdot(zs, zs).real, 1e-12)
    rot = np.array([[a.real, -a.imag], [a.imag, a.real]])
    return np.hstack([rot, (md - rot @ ms)[:, None]])


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def _points_to_reference(smoothed: np.ndarray, layout: str) -> np.ndarray:
    import cv2

    stable, reference, _ = _LAYOUT_POINTS[layout]
    src = smoothed[stable].astype(np.float32)
    dst = MEAN_FACE_68[reference].astype(np.float32)
    matrix, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    return similarity_lstsq(src, dst) if matrix is None else matrix.astype(np.float64)


def _lips_to_reference(smoothed: np.ndarray, box: np.ndarray) -> np.ndarray:
    (x0, y0), (x1, y1) = smoothed[0], smoothed[1]
    ref_left, ref_right = MEAN_FACE_68[48], MEAN_FACE_68[54]
    angle = np.arctan2(ref_right[1] - ref_left[1], ref_right[0] - ref_left[0]) - np.arctan2(y1 - y0, x1 - x0)
    if (x1 - x0) < 0:  # corners given right-to-left: the line's direction, not the face, flipped
        angle += np.pi
    face_width = box[2] - box[0]
    ref_width = MEAN_FACE_68[16, 0] - MEAN_FACE_68[0, 0]
    scale = ref_width / face_width if face_width > 1 else 1.0
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre, ref_centre = smoothed.mean(axis=0), MEAN_FACE_68[MOUTH_POINTS_68].mean(axis=0)
    return np.hstack([rot, (ref_centre - rot @ centre)[:, None]])


def _mouth_points(track: FaceTrack, points: np.ndarray) -> np.ndarray:
    return points[_LAYOUT_POINTS[track.layout][2]]


def crop_transforms(track: FaceTrack, options: Optional[RoiOptions] = None) -> np.ndarray:
    """Per-frame 2x3 maps from video pixels to crop pixels (steps 1 to 3 of the module docstring).

    Args:
        track: the face track.
        options: crop settings.

    Returns:
        ``(T, 2, 3)`` float64 similarity matrices.
    """
    options = options or RoiOptions()
    if track.layout not in _LAYOUT_POINTS:
        raise ValueError(f"unknown landmark layout {track.layout!r}")
    smoothed = smooth_landmarks(track.landmarks, options.smooth_window)
    boxes = _moving_mean(track.boxes, options.smooth_window)
    half = options.size / 2.0
    out = np.empty((track.num_frames, 2, 3))
    for t in range(track.num_frames):
        if track.layout == LAYOUT_LIPS:
            to_ref = _lips_to_reference(smoothed[t], boxes[t])
        else:
            to_ref = _points_to_reference(smoothed[t], track.layout)
        centre = _apply(to_ref, _mouth_points(track, smoothed[t])).mean(axis=0)
        to_ref[:, 2] += half - centre
        out[t] = to_ref
    return out


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """``(..., 3)`` uint8 RGB to ``(...)`` uint8 gray with torchvision's weights."""
    gray = rgb.astype(np.float32) @ GRAY_WEIGHTS
    return np.clip(np.rint(gray), 0, 255).astype(np.uint8)


def _fit_track(track: FaceTrack, num_frames: int) -> FaceTrack:
    """The track trimmed, or its last frame held (marked not found), to ``num_frames`` frames."""
    n = track.num_frames
    if n == num_frames:
        return track
    idx = np.minimum(np.arange(num_frames), n - 1)
    found = track.found[idx].copy()
    found[n:] = False
    return FaceTrack(landmarks=track.landmarks[idx], found=found, boxes=track.boxes[idx], layout=track.layout)


def mouth_roi(frames: Iterable[np.ndarray], track: FaceTrack, options: Optional[RoiOptions] = None) -> MouthROI:
    """Cut the mouth crop of every frame.

    Args:
        frames: ``(H, W, 3)`` uint8 RGB frames (an array ``(T, H, W, 3)`` or any iterable, consumed once).
        track: the face to crop, from :func:`~l2s.vision.face.track_face` or a sidecar. It may be up to
            :data:`LENGTH_SLACK` frames shorter or longer than the video (two resamplers' rounding):
            the last transform is held, or the extra landmarks are dropped.
        options: crop settings.

    Returns:
        The crops ``(T, size, size)`` uint8 (``T`` = number of frames) and their transforms.

    Raises:
        InputError: the video and the track differ by more than :data:`LENGTH_SLACK` frames.
    """
    import cv2

    options = options or RoiOptions()
    transforms = crop_transforms(track, options)
    n, size = track.num_frames, options.size
    crops = []
    for t, frame in enumerate(frames):
        if t >= n + LENGTH_SLACK:
            raise InputError(f"the video has more frames than its landmarks ({n})")
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected (H, W, 3) RGB frames, got {frame.shape}")
        patch = cv2.warpAffine(np.ascontiguousarray(frame), transforms[min(t, n - 1)], (size, size),
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        crops.append(to_gray(patch))
    if abs(len(crops) - n) > LENGTH_SLACK:
        raise InputError(f"the video has {len(crops)} frames but its landmarks {n}")
    track = _fit_track(track, len(crops))
    transforms = transforms[np.minimum(np.arange(len(crops)), n - 1)]
    centres = np.stack([_apply(m, _mouth_points(track, p)).mean(axis=0)
                        for m, p in zip(transforms, track.landmarks)])
    return MouthROI(roi=np.stack(crops), transforms=transforms.astype(np.float32),
                    mouth_centres=centres.astype(np.float32), found=track.found, track=track)


def _kept(frames: Iterable[np.ndarray], store: List[np.ndarray]) -> Iterator[np.ndarray]:
    """Pass ``frames`` through, keeping each in ``store`` (one pass of the decoder serves detection and crops)."""
    for frame in frames:
        store.append(frame)
        yield frame


def _timed(seconds: Dict[str, float], key: str, waited_before: float, start: float) -> None:
    """Add to ``seconds[key]`` the wall time since ``start`` less the time spent waiting for frames meanwhile."""
    waited = seconds.get("decode_wait", 0.0) - waited_before
    seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - start - waited


def extract_roi(video: Union[PathLike, np.ndarray], sidecar: Optional[PathLike] = None,
                options: Optional[RoiOptions] = None, detector: Optional[DetectorOptions] = None,
                on_frame: Optional[Callable[[], None]] = None, decode_ahead: int = DECODE_AHEAD,
                timings: Optional[Dict[str, float]] = None) -> MouthROI:
    """Face tracking and mouth crops of a video in one call.

    A file is decoded in a background thread (``decode_ahead`` frames ahead) while the landmarks of
    the frames already decoded are computed. Its frames are kept for the crops when they fit in
    :data:`IN_MEMORY_BYTES`; a longer video is decoded a second time for the crops, so it needs
    little memory. With a sidecar the video is read once, straight into the crops.

    Args:
        video: a video file, or frames ``(T, H, W, 3)`` uint8 RGB at the contract frame rate.
        sidecar: a ``.landmarks.npz`` file to use instead of face detection.
        options: crop settings.
        detector: face-detection settings (ignored with a sidecar); ``DetectorOptions(mode="per-frame")``
            is the earlier, slower detector.
        on_frame: called after each frame's face detection (progress bars).
        decode_ahead: frames the decoder thread may run ahead; 0 decodes in the calling thread.
        timings: if given, seconds are added to it under ``decode`` (the decoder's work), ``decode_wait``
            (waiting for frames), ``landmarks`` (face detection and tracking) and ``crop`` (the mouth crops),
            the last two without the waits.

    Returns:
        The mouth crops; ``roi`` is ``(T, size, size)`` uint8.

    Raises:
        InputError: the video cannot be read or does not match the sidecar.
        NoFaceError: no face in any frame.
    """
    seconds: Dict[str, float] = {} if timings is None else timings
    if isinstance(video, np.ndarray):
        if video.ndim != 4 or video.shape[0] == 0:
            raise InputError(f"expected frames (T, H, W, 3) with T > 0, got shape {video.shape}")
        start = time.perf_counter()
        track = load_sidecar(sidecar) if sidecar is not None else track_face(video, detector, on_frame)
        _timed(seconds, "landmarks", 0.0, start)
        start = time.perf_counter()
        result = mouth_roi(video, track, options)
        _timed(seconds, "crop", 0.0, start)
        return result
    from l2s.io.video import decode_ahead as decoded, probe_video

    if sidecar is not None:
        track = load_sidecar(sidecar)
        waited, start = seconds.get("decode_wait", 0.0), time.perf_counter()
        result = mouth_roi(decoded(video, decode_ahead, seconds), track, options)
        _timed(seconds, "crop", waited, start)
        return result
    info = probe_video(video)
    keep = info.num_frames * info.width * info.height * 3 <= IN_MEMORY_BYTES
    store: List[np.ndarray] = []
    frames = decoded(video, decode_ahead, seconds)
    waited, start = seconds.get("decode_wait", 0.0), time.perf_counter()
    track = track_face(_kept(frames, store) if keep else frames, detector, on_frame)
    _timed(seconds, "landmarks", waited, start)
    waited, start = seconds.get("decode_wait", 0.0), time.perf_counter()
    result = mouth_roi(store if keep else decoded(video, decode_ahead, seconds), track, options)
    _timed(seconds, "crop", waited, start)
    return result
