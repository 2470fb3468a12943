"""What the pipeline accepts: a video file, RGB frames, or mouth crops; and a reference voice.

Everything becomes a :class:`ClipInput`: the ``(T, 96, 96)`` uint8 mouth ROI at 25 fps, one RGB
face frame (LipVoicer's identity input) and whether the landmarks came from face detection
(a real-world video) or from a synthetic corpus sidecar.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import torch

from l2s.config import ROI_SIZE
from l2s.errors import InputError
from l2s.extras import needs_extra

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class ClipInput:
    """A clip ready for the networks.

    Attributes:
        roi: ``(T, 96, 96)`` uint8 mouth crops at 25 fps.
        face: ``(H, W, 3)`` uint8 RGB frame showing the face, or None (bare ROI input).
        detected: True when landmarks came from face detection (a real-world video), False for a
            landmark sidecar (synthetic corpora) or a bare ROI.
        source: the input's path, or a short description.
        found: ``(T,)`` bool, where the face stage measured the face (elsewhere its landmarks were
            interpolated); None for a bare ROI input.
    """

    roi: np.ndarray
    face: Optional[np.ndarray] = None
    detected: bool = False
    source: str = "<array>"
    found: Optional[np.ndarray] = None

    @property
    def num_frames(self) -> int:
        return int(self.roi.shape[0])


def check_roi(roi: np.ndarray) -> np.ndarray:
    """A ``(T, 96, 96)`` uint8 array, or an :class:`InputError`."""
    roi = np.asarray(roi)
    if roi.ndim != 3 or roi.shape[1:] != (ROI_SIZE, ROI_SIZE) or roi.shape[0] == 0:
        raise InputError(f"mouth ROI must be (T, {ROI_SIZE}, {ROI_SIZE}) with T > 0, got {roi.shape}")
    if roi.dtype != np.uint8:
        if np.issubdtype(roi.dtype, np.floating) and roi.size and float(np.nanmax(roi)) <= 1.0:
            roi = roi * 255.0  # float ROI in [0, 1], as l2s.models.vsr accepts
        roi = np.clip(np.rint(roi), 0, 255).astype(np.uint8)
    return roi


def _default_sidecar(path: Path) -> Optional[Path]:
    from l2s.vision.face import sidecar_path

    candidate = sidecar_path(path)
    return candidate if candidate.is_file() else None


def _video_roi(path: Path, sidecar: Optional[Path], on_frame: Optional[Callable[[], None]] = None) -> ClipInput:
    from l2s.io.video import iter_video_frames
    from l2s.vision.roi import extract_roi

    # extract_roi streams long videos itself (detection, then cropping), so memory stays bounded
    mouth = extract_roi(path, sidecar=sidecar, on_frame=on_frame)
    frames = iter_video_frames(path)
    try:
        face = next(frames).copy()  # LipVoicer's identity input: the first frame
    finally:
        frames.close()
    return ClipInput(roi=mouth.roi, face=face, detected=sidecar is None, source=str(path), found=mouth.found)


def to_clip_input(video: Union[PathLike, np.ndarray, torch.Tensor, ClipInput, object],
                  sidecar: Optional[PathLike] = None, on_frame: Optional[Callable[[], None]] = None) -> ClipInput:
    """Normalise any accepted input.

    Args:
        video: a video file; ``(T, H, W, 3)`` uint8 RGB frames at 25 fps; ``(T, 96, 96)`` mouth crops
            (numpy or torch); a :class:`~l2s.vision.roi.MouthROI`; or a :class:`ClipInput`.
        sidecar: a ``.landmarks.npz`` file instead of face detection (default for a video file: the
            ``<stem>.landmarks.npz`` beside it, when there is one).
        on_frame: called after each frame's face detection (progress bars).

    Raises:
        InputError: unreadable video, wrong shapes, no face.
    """
    if isinstance(video, ClipInput):
        return video
    if isinstance(video, (str, os.PathLike)):
        path = Path(video)
        side = Path(sidecar) if sidecar is not None else _default_sidecar(path)
        return _video_roi(path, side, on_frame)
    if hasattr(video, "roi") and hasattr(video, "transforms"):  # a MouthROI
        return ClipInput(roi=check_roi(video.roi), detected=False, source="<MouthROI>", found=video.found)
    if isinstance(video, torch.Tensor):
        video = video.detach().cpu().numpy()
    if not isinstance(video, np.ndarray):
        raise InputError(f"cannot voice a {type(video).__name__}: give a video path, frames or a mouth ROI")
    if video.ndim == 4 and video.shape[-1] == 3:
        from l2s.vision.roi import extract_roi

        frames = np.ascontiguousarray(video, dtype=np.uint8)
        mouth = extract_roi(frames, sidecar=sidecar, on_frame=on_frame)
        return ClipInput(roi=mouth.roi, face=frames[0].copy(), detected=sidecar is None, source="<frames>",
                         found=mouth.found)
    return ClipInput(roi=check_roi(video), source="<roi>")


def reference_wav(ref_audio: Union[PathLike, np.ndarray]) -> np.ndarray:
    """A reference recording's ``(N,)`` samples (from a path or 16 kHz samples); empty or silent is an error."""
    if isinstance(ref_audio, (str, os.PathLike)):
        from l2s.io.audio import read_audio

        wav = read_audio(ref_audio)
    else:
        wav = np.asarray(ref_audio, dtype=np.float32).reshape(-1)
    if wav.size == 0 or not np.any(wav):
        raise InputError("the reference audio is empty or silent")
    return wav


def reference_log_f0(ref_audio: Union[PathLike, np.ndarray]) -> Optional[float]:
    """Pitch level of a reference recording (a path or 16 kHz samples): its mean voiced log-F0, or None."""
    from l2s.features.pitch import log_f0_level

    return log_f0_level(reference_wav(ref_audio))


def speaker_embedding(ref_audio: Union[PathLike, np.ndarray]) -> torch.Tensor:
    """``(1, 256)`` Resemblyzer embedding of a reference recording (a path or 16 kHz samples)."""
    try:
        import resemblyzer  # noqa: F401
    except ImportError:
        raise needs_extra("--ref-audio (a Resemblyzer speaker embedding)", "eval", "resemblyzer") from None
    from l2s.metrics.speaker import speaker_embedding as embed

    return torch.from_numpy(np.asarray(embed(reference_wav(ref_audio)), dtype=np.float32)).unsqueeze(0)
