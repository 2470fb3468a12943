"""The frozen visual front-end of a fine-tuned lip reader, its output computed once per clip and view.

Nine tenths of the lip reader's training compute on a CPU is its 3-D convolutional front-end; a fine-tuning
run that freezes it (``freeze_frontend``) computes its output once per clip for the centre crop and once for its
mirror image (the random crop is then given up), optionally keeps them on disk for the next run on the same
reader, and applies the time masking to the front-end's frames instead of the pixels.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from l2s.io.atomic import atomic_write_bytes
from l2s.models.vsr.roi_transforms import AugmentOptions, roi_to_input, time_mask_
from l2s.train.common import weight_digest
from l2s.train.frozen_cache import FrozenCache


class FrontendCache:
    """The frozen front-end's output per clip: the centre crop and its mirror image, each computed once.

    Args:
        frontend: the lip reader's :class:`~l2s.models.vsr.frontend.Conv3dResNet` (frozen).
        augment: the recipe's augmentation (flip probability, time-mask window and stride).
        seed: seed of the flips and masks.
        folder: where to keep the outputs between runs (``<folder>/<digest of the front-end's weights>/``, one
            file per clip and view), so that runs fine-tuning the same reader compute them once; None: memory.
    """

    def __init__(self, frontend: torch.nn.Module, augment: AugmentOptions, seed: int,
                 folder: Optional[str] = None) -> None:
        self.frontend = frontend
        self.augment = augment
        self.cache = FrozenCache(time_dim=1)
        self.generator = torch.Generator().manual_seed(seed)
        self.folder = Path(folder) / weight_digest(frontend)[:16] if folder else None
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, ids: Sequence[str], roi: torch.Tensor, lengths: torch.Tensor, train: bool) -> torch.Tensor:
        """``(B, T, F)`` front-end frames of a batch (mirrored at random and time-masked when ``train``)."""
        flips = [train and float(torch.rand((1,), generator=self.generator)) < self.augment.flip_prob for _ in ids]
        keys = [uid + ("|mirror" if f else "") for uid, f in zip(ids, flips)]

        def compute(index: torch.Tensor) -> torch.Tensor:
            stored = [self._read(keys[int(i)]) for i in index]
            if all(x is not None for x in stored):
                return torch.stack([F.pad(x, (0, 0, 0, roi.shape[1] - x.shape[0])) for x in stored])
            video = roi_to_input(roi[index], lengths[index])
            mirror = torch.tensor([flips[int(i)] for i in index])
            video = torch.where(mirror[:, None, None, None].to(video.device), video.flip(-1), video)
            mode = self.frontend.training
            self.frontend.eval()  # frozen: its batch norms keep their statistics
            with torch.no_grad():
                out = self.frontend(video)
            self.frontend.train(mode)
            for k, i in enumerate(index):
                self._write(keys[int(i)], out[k, :int(lengths[i])])
            return out

        frames = self.cache(keys, lengths, compute, roi.shape[1])
        if train:
            frames = frames.clone()
            for b, n in enumerate(lengths.tolist()):  # masked frames take the clip's mean frame
                clip = frames[b, :n]
                time_mask_(clip, self.augment.mask_window, self.augment.mask_stride, self.generator, clip.mean(0))
        return frames

    def _path(self, key: str) -> Path:
        return self.folder / (key.replace("/", "_") + ".pt")

    def _read(self, key: str) -> Optional[torch.Tensor]:
        if self.folder is None or not self._path(key).is_file():
            return None
        return torch.load(self._path(key), weights_only=True)

    def _write(self, key: str, frames: torch.Tensor) -> None:
        if self.folder is not None:
            buffer = io.BytesIO()
            torch.save(frames.detach().cpu().clone(), buffer)
            atomic_write_bytes(self._path(key), buffer.getvalue())
