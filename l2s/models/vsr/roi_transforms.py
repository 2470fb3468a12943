"""Mouth ROI -> VSR model input, and the training-time video augmentation (Auto-AVSR's recipe).

Test transform: ``/255``, centre crop ``CROP_SIZE`` (88) of the ``ROI_SIZE`` (96) crop, normalise with
the contract's mean/std. Training: a random crop instead of the centre one, a horizontal flip, and an
adaptive time mask (Auto-AVSR: up to one mask of fewer than 10 frames per 25 frames, filled with the
clip's mean). In a batch, frames past each clip's length are zero in normalised space, as Auto-AVSR's
collate pads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from l2s.config import CONTRACT, CROP_SIZE

#: ITU-R 601 luma weights as torchvision's ``Grayscale`` uses them.
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)


@dataclass(frozen=True)
class AugmentOptions:
    """Training augmentation of mouth ROIs.

    Attributes:
        crop_size: side of the random crop.
        flip_prob: probability of a horizontal flip per clip.
        mask_window: a time mask covers fewer than this many frames.
        mask_stride: one time mask per this many frames (rounded up).
    """

    crop_size: int = CROP_SIZE
    flip_prob: float = 0.5
    mask_window: int = 10
    mask_stride: int = 25


def rgb_to_gray(frames: torch.Tensor) -> torch.Tensor:
    """``(..., 3, H, W)`` float RGB -> ``(..., H, W)`` luma."""
    r, g, b = frames.unbind(-3)
    return GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b


def _to_unit(roi: torch.Tensor) -> torch.Tensor:
    """uint8 -> float in [0, 1]; float input is taken to be in [0, 1] already."""
    return roi.float() / 255.0 if roi.dtype == torch.uint8 else roi.float()


def _normalize(x: torch.Tensor, lengths: Optional[torch.Tensor]) -> torch.Tensor:
    x = (x - CONTRACT.video.mean) / CONTRACT.video.std
    if lengths is not None:
        valid = torch.arange(x.shape[1], device=x.device).unsqueeze(0) < lengths.to(x.device).unsqueeze(1)
        x = x * valid[:, :, None, None]
    return x


def center_crop(x: torch.Tensor, size: int = CROP_SIZE) -> torch.Tensor:
    """Central ``size x size`` window of ``(..., H, W)`` (torchvision's rounding)."""
    height, width = x.shape[-2:]
    top, left = int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
    return x[..., top:top + size, left:left + size]


def roi_to_input(roi: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The test transform.

    Args:
        roi: ``(B, T, H, W)`` or ``(T, H, W)`` grayscale ROI, uint8 or float in [0, 1].
        lengths: ``(B,)`` valid frames per clip; frames past them become 0.

    Returns:
        ``(B, T, CROP_SIZE, CROP_SIZE)`` (or without ``B``) normalised float32.
    """
    squeeze = roi.dim() == 3
    x = center_crop(_to_unit(roi if not squeeze else roi.unsqueeze(0)))
    x = _normalize(x, lengths)
    return x.squeeze(0) if squeeze else x


def time_mask_(clip: torch.Tensor, window: int, stride: int, generator: Optional[torch.Generator],
               fill: Optional[torch.Tensor] = None) -> None:
    """Adaptive time masking in place on one clip ``(T, ...)``: one mask of up to ``window - 1`` frames per
    ``stride`` frames, filled with ``fill`` (default: the clip's mean value, Auto-AVSR's choice for pixels)."""
    length = clip.shape[0]
    n_masks = int((length + stride - 0.1) // stride)
    fill = clip.mean() if fill is None else fill
    for _ in range(n_masks):
        width = int(torch.randint(0, window, (1,), generator=generator))
        if width == 0 or length - width <= 0:
            continue
        start = int(torch.randint(0, length - width, (1,), generator=generator))
        clip[start:start + width] = fill


def augment_roi(roi: torch.Tensor, lengths: Optional[torch.Tensor] = None,
                options: AugmentOptions = AugmentOptions(),
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """The training transform: random crop, horizontal flip, adaptive time mask, normalisation.

    Args:
        roi: ``(B, T, H, W)`` grayscale ROI, uint8 or float in [0, 1].
        lengths: ``(B,)`` valid frames per clip (all ``T`` if None).
        options: augmentation settings.
        generator: random generator (seed it for reproducible batches).

    Returns:
        ``(B, T, crop, crop)`` normalised float32, zero past each clip's length.
    """
    x = _to_unit(roi)
    batch, frames, height, width = x.shape
    size = options.crop_size
    lengths_list = [frames] * batch if lengths is None else [int(n) for n in lengths]
    out = torch.empty(batch, frames, size, size, dtype=x.dtype, device=x.device)
    for b in range(batch):
        top = int(torch.randint(0, height - size + 1, (1,), generator=generator))
        left = int(torch.randint(0, width - size + 1, (1,), generator=generator))
        clip = x[b, :, top:top + size, left:left + size].clone()
        if float(torch.rand((1,), generator=generator)) < options.flip_prob:
            clip = clip.flip(-1)
        time_mask_(clip[:lengths_list[b]], options.mask_window, options.mask_stride, generator)
        out[b] = clip
    return _normalize(out, None if lengths is None else torch.as_tensor(lengths_list))
