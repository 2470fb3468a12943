"""Visual front-end: a 3-D convolution stem and a per-frame 2-D ResNet-18 (Auto-AVSR's ``Conv3dResNet``).

Reimplemented from the description of github.com/mpc001/auto_avsr (Apache-2.0) and
checked against its outputs (``tests/test_vsr_parity.py``). Attribute names follow
Auto-AVSR's state_dict keys (``frontend3D.0`` conv, ``frontend3D.1`` BatchNorm,
``trunk.layer{1..4}.{i}.conv1/bn1/conv2/bn2/downsample``) so checkpoints load unchanged.
Activations are SiLU throughout, as in Auto-AVSR's VSR model.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs with BatchNorm, SiLU, and a residual (1x1 conv when shapes change)."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.act = nn.SiLU()
        self.downsample: Optional[nn.Sequential] = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, H, W) -> (N, C, H / stride, W / stride)``."""
        residual = x if self.downsample is None else self.downsample(x)
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act(out + residual)


class ResNetTrunk(nn.Module):
    """Four stages of BasicBlocks (strides 1, 2, 2, 2), then a global average pool."""

    def __init__(self, widths: Sequence[int], blocks: Sequence[int]) -> None:
        super().__init__()
        if len(widths) != 4 or len(blocks) != 4:
            raise ValueError("a ResNet trunk has four stages: give four widths and four block counts")
        in_channels = widths[0]
        for index, (width, count, stride) in enumerate(zip(widths, blocks, (1, 2, 2, 2)), start=1):
            stage = [BasicBlock(in_channels, width, stride)]
            stage += [BasicBlock(width, width) for _ in range(count - 1)]
            setattr(self, f"layer{index}", nn.Sequential(*stage))
            in_channels = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C0, H, W) -> (N, C4)``."""
        for index in range(1, 5):
            x = getattr(self, f"layer{index}")(x)
        return self.avgpool(x).flatten(1)


class Conv3dResNet(nn.Module):
    """Mouth-ROI video to one feature vector per frame.

    Args:
        widths: channels of the stem and of the four ResNet stages (Auto-AVSR: 64, 128, 256, 512).
        blocks: BasicBlocks per stage (ResNet-18: 2, 2, 2, 2).
    """

    def __init__(self, widths: Sequence[int] = (64, 128, 256, 512), blocks: Sequence[int] = (2, 2, 2, 2)) -> None:
        super().__init__()
        # Created before ``frontend3D`` so the state_dict key order is Auto-AVSR's.
        self.trunk = ResNetTrunk(widths, blocks)
        self.frontend3D = nn.Sequential(
            nn.Conv3d(1, widths[0], kernel_size=(5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False),
            nn.BatchNorm3d(widths[0]),
            nn.SiLU(),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        )
        self.out_dim = widths[-1]

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Encode normalised grayscale frames.

        Args:
            video: ``(B, T, H, W)`` or ``(B, T, 1, H, W)`` float (see :mod:`l2s.models.vsr.roi_transforms`).

        Returns:
            ``(B, T, C4)`` per-frame features. The time axis keeps its length (the stem pads by 2).
        """
        if video.dim() == 5:
            video = video.squeeze(2)
        batch, frames = video.shape[:2]
        x = self.frontend3D(video.unsqueeze(1))  # (B, C0, T, H', W')
        x = x.transpose(1, 2).reshape(batch * frames, *x.shape[1:2], *x.shape[3:])
        return self.trunk(x).view(batch, frames, -1)
