"""Weight-normalised convolutions stored as ``weight_g`` / ``weight_v`` (Salimans & Kingma, 2016).

The parameter names and the norm (over every dimension but 0) are those of the
legacy ``torch.nn.utils.weight_norm``, so jik876-format HiFi-GAN checkpoints load
as they are. ``remove_weight_norm`` folds ``g * v / ||v||`` into a plain ``weight``
for inference, as the reference code does before synthesis.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _norm_except_dim0(v: torch.Tensor) -> torch.Tensor:
    return v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))


class _WeightNormMixin:
    """For ``nn.ConvNd`` subclasses: reparametrise ``weight`` as ``weight_g * weight_v / ||weight_v||``."""

    def _apply_weight_norm(self) -> None:
        weight = self.weight.detach()
        del self._parameters["weight"]
        self.weight_g = nn.Parameter(_norm_except_dim0(weight).clone())
        self.weight_v = nn.Parameter(weight.clone())

    @property
    def has_weight_norm(self) -> bool:
        return "weight_v" in self._parameters

    def effective_weight(self) -> torch.Tensor:
        if self.has_weight_norm:
            return self.weight_v * (self.weight_g / _norm_except_dim0(self.weight_v))
        return self.weight

    def remove_weight_norm(self) -> None:
        """Fold the reparametrisation into a plain ``weight`` (no-op if already folded)."""
        if not self.has_weight_norm:
            return
        weight = self.effective_weight().detach()
        del self._parameters["weight_g"], self._parameters["weight_v"]
        self.weight = nn.Parameter(weight)


class WNConv1d(_WeightNormMixin, nn.Conv1d):
    """``nn.Conv1d`` with weight norm; same constructor arguments."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._apply_weight_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, L)`` to ``(B, C_out, L_out)``."""
        return self._conv_forward(x, self.effective_weight(), self.bias)


class WNConvTranspose1d(_WeightNormMixin, nn.ConvTranspose1d):
    """``nn.ConvTranspose1d`` with weight norm (dim 0 of its ``(in, out, k)`` weight is the input channel)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._apply_weight_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, L)`` to ``(B, C_out, L_out)``."""
        return F.conv_transpose1d(x, self.effective_weight(), self.bias, self.stride, self.padding,
                                  self.output_padding, self.groups, self.dilation)


class WNConv2d(_WeightNormMixin, nn.Conv2d):
    """``nn.Conv2d`` with weight norm (for the period discriminators)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._apply_weight_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, H, W)`` to ``(B, C_out, H_out, W_out)``."""
        return self._conv_forward(x, self.effective_weight(), self.bias)


def remove_weight_norm(module: nn.Module) -> nn.Module:
    """Fold weight norm in every sub-module of ``module``; returns ``module``."""
    for sub in module.modules():
        if isinstance(sub, _WeightNormMixin):
            sub.remove_weight_norm()
    return module
