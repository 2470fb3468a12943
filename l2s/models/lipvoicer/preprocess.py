"""The inputs MelGen expects, from our ROI and face crops.

* Mouth ROI: 96x96 grey uint8 at 25 fps -> ``/255``, centre crop 88x88, ``(x - 0.421) / 0.165``
  (the contract's :class:`~l2s.config.VideoConfig`, the same as Auto-AVSR's).
* Face: one RGB frame -> shorter side resized to 224 (bilinear, antialiased), ``/255``, ImageNet mean/std.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from l2s.config import CONTRACT, VideoConfig
from l2s.errors import InputError
from l2s.models.lipvoicer.melgen import FACE_SIZE

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def roi_input(roi: torch.Tensor, video: VideoConfig = CONTRACT.video) -> torch.Tensor:
    """``(B, T, 96, 96)`` uint8 mouth crops -> ``(B, 1, T, 88, 88)`` float32 model input."""
    if roi.dim() != 4 or roi.shape[-1] != video.roi_size or roi.shape[-2] != video.roi_size:
        raise InputError(f"mouth ROI must be (B, T, {video.roi_size}, {video.roi_size}), got {tuple(roi.shape)}")
    off = (video.roi_size - video.crop_size) // 2
    x = roi.float() / 255.0
    x = x[..., off: off + video.crop_size, off: off + video.crop_size]
    return ((x - video.mean) / video.std).unsqueeze(1)


def face_input(face: torch.Tensor) -> torch.Tensor:
    """``(B, H, W, 3)`` uint8 RGB face frames -> ``(B, 3, H', W')`` with the shorter side 224, ImageNet-normalised."""
    if face.dim() != 4 or face.shape[-1] != 3:
        raise InputError(f"face images must be (B, H, W, 3) RGB, got {tuple(face.shape)}")
    x = face.permute(0, 3, 1, 2).float() / 255.0
    h, w = x.shape[-2:]
    if min(h, w) != FACE_SIZE:
        scale = FACE_SIZE / min(h, w)
        size = (FACE_SIZE, round(w * scale)) if h <= w else (round(h * scale), FACE_SIZE)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std
