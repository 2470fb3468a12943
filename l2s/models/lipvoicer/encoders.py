"""LipVoicer's visual encoders: the lip-reading encoder and the face (speaker identity) encoder.

Reimplemented from the specification in the LipVoicer fixtures (``fixtures/lipvoicer/README.md``,
section 3) and checked against their outputs; module names are ours, and
:mod:`l2s.models.lipvoicer.convert` maps LipVoicer's checkpoint keys onto them.

* :class:`LipEncoder`: 3-D conv front-end, ShuffleNetV2 x1.0 trunk applied per frame, and a
  non-causal dilated TCN (Martinez et al., 2020, "Lipreading using temporal convolutional networks").
* :class:`FaceEncoder`: a ResNet-18 trunk, global max pool and a linear projection.
"""

from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn

#: ShuffleNetV2 x1.0: channels after the stem, after each stage, after the last 1x1 conv.
SHUFFLENET_CHANNELS = (24, 116, 232, 464, 1024)
SHUFFLENET_REPEATS = (4, 8, 4)


def _channel_shuffle(x: torch.Tensor, groups: int = 2) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class ShuffleBlock(nn.Module):
    """A ShuffleNetV2 unit. Stride 2: two branches over the whole input; stride 1: the second half
    of the channels goes through ``main`` and the first half is passed on. Then a channel shuffle.
    """

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        half = c_out // 2
        self.stride = stride
        main_in = c_in if stride == 2 else half
        self.main = nn.Sequential(
            nn.Conv2d(main_in, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True),
            nn.Conv2d(half, half, 3, stride, 1, groups=half, bias=False), nn.BatchNorm2d(half),
            nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True),
        )
        if stride == 2:
            self.side = nn.Sequential(
                nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False), nn.BatchNorm2d(c_in),
                nn.Conv2d(c_in, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 2:
            out = torch.cat([self.side(x), self.main(x)], dim=1)
        else:
            keep, work = x.chunk(2, dim=1)
            out = torch.cat([keep, self.main(work)], dim=1)
        return _channel_shuffle(out)


class TemporalBlock(nn.Module):
    """Non-causal dilated residual block: (conv, BN, PReLU) x 2, plus a 1x1 projection when widths differ."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, dilation: int):
        super().__init__()
        pad = (kernel_size - 1) * dilation // 2
        self.conv1 = nn.Conv1d(c_in, c_out, kernel_size, padding=pad, dilation=dilation)
        self.bn1 = nn.BatchNorm1d(c_out)
        self.act1 = nn.PReLU(c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel_size, padding=pad, dilation=dilation)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.act2 = nn.PReLU(c_out)
        self.downsample = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else None
        self.act = nn.PReLU(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        res = x if self.downsample is None else self.downsample(x)
        return self.act(out + res)


class LipEncoder(nn.Module):
    """Mouth ROI video ``(B, 1, T, 88, 88)`` -> lip features ``(B, C, T)``."""

    def __init__(self, tcn_channels: Sequence[int] = (512, 512, 512, 512), tcn_kernel_size: int = 3):
        super().__init__()
        c = SHUFFLENET_CHANNELS
        self.frontend = nn.Sequential(
            nn.Conv3d(1, c[0], (5, 7, 7), (1, 2, 2), (2, 3, 3), bias=False), nn.BatchNorm3d(c[0]), nn.PReLU(c[0]),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
        )
        blocks: List[nn.Module] = []
        c_in = c[0]
        for c_out, repeats in zip(c[1:4], SHUFFLENET_REPEATS):
            for i in range(repeats):
                blocks.append(ShuffleBlock(c_in, c_out, 2 if i == 0 else 1))
                c_in = c_out
        self.trunk = nn.Sequential(*blocks)
        self.trunk_out = nn.Sequential(nn.Conv2d(c[3], c[4], 1, bias=False), nn.BatchNorm2d(c[4]),
                                       nn.ReLU(inplace=True))
        tcn: List[nn.Module] = []
        c_in = c[4]
        for i, c_out in enumerate(tcn_channels):
            tcn.append(TemporalBlock(c_in, c_out, tcn_kernel_size, dilation=2 ** i))
            c_in = c_out
        self.tcn = nn.Sequential(*tcn)

    def forward(self, roi: torch.Tensor) -> torch.Tensor:
        """``(B, 1, T, 88, 88)`` normalised mouth crops -> ``(B, C, T)``."""
        b, _, t = roi.shape[:3]
        x = self.frontend(roi)  # (B, 24, T, 22, 22)
        x = x.transpose(1, 2).reshape(b * t, x.shape[1], x.shape[3], x.shape[4])  # frames into the batch
        x = self.trunk_out(self.trunk(x))
        x = x.mean(dim=(2, 3))  # the 3x3 average pool of a 3x3 map
        return self.tcn(x.view(b, t, -1).transpose(1, 2))


class BasicBlock(nn.Module):
    """ResNet basic block (He et al., 2016)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        res = x if self.downsample is None else self.downsample(x)
        return self.relu(out + res)


class FaceEncoder(nn.Module):
    """Face image ``(B, 3, 224, 224)`` (ImageNet-normalised) -> identity vector ``(B, out_dim)``."""

    def __init__(self, widths: Sequence[int] = (64, 128, 256, 512), out_dim: int = 128, blocks_per_stage: int = 2):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, 2, 1))
        stages: List[nn.Module] = []
        c_in = 64
        for i, width in enumerate(widths):
            stage = [BasicBlock(c_in if j == 0 else width, width, (2 if i > 0 and j == 0 else 1))
                     for j in range(blocks_per_stage)]
            stages.append(nn.Sequential(*stage))
            c_in = width
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(widths[-1], out_dim)

    def forward(self, face: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(face))
        return self.fc(torch.amax(x, dim=(2, 3)))
