"""Conformer encoder (Gulati et al. 2020) with ESPnet-style relative positional self-attention.

Matches ESPnet's ``ConformerEncoder`` as Auto-AVSR configures it: pre-norm, macaron feed-forward
modules scaled by 1/2, relative-position self-attention, a convolution module with BatchNorm and
SiLU, a final LayerNorm per block and ``after_norm`` after the last block. Attribute names are
ESPnet's (including its ``pointwise_cov1``/``pointwise_cov2`` spelling) so checkpoints load unchanged.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import nn

from l2s.models.vsr.attention import (PositionwiseFeedForward, RelPositionMultiHeadedAttention, layer_norm,
                                      sinusoid)


class RelPositionalEncoding(nn.Module):
    """Scale the input by ``sqrt(D)`` and build the relative position table.

    No positional vector is added to ``x``: positions enter through the attention only.
    """

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.dim = dim
        self.scale = math.sqrt(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, D) -> (x * sqrt(D) (B, T, D), pos_emb (1, 2T - 1, D))``; row ``j`` encodes ``T - 1 - j``."""
        length = x.shape[1]
        positions = torch.arange(length - 1, -length, -1, device=x.device)
        pos_emb = sinusoid(positions, self.dim).to(x.dtype).unsqueeze(0)
        return self.dropout(x * self.scale), self.dropout(pos_emb)


class ConvolutionModule(nn.Module):
    """Pointwise conv + GLU, depthwise conv, BatchNorm, SiLU, pointwise conv, on ``(B, T, D)``.

    Args:
        dim: channels ``D``.
        kernel_size: depthwise kernel (odd; "same" padding).
    """

    def __init__(self, dim: int, kernel_size: int) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"the conformer conv kernel must be odd, got {kernel_size}")
        self.pointwise_cov1 = nn.Conv1d(dim, 2 * dim, 1)
        self.depthwise_conv = nn.Conv1d(dim, dim, kernel_size, padding=(kernel_size - 1) // 2, groups=dim)
        self.norm = nn.BatchNorm1d(dim)
        self.pointwise_cov2 = nn.Conv1d(dim, dim, 1)

    def forward(self, x: torch.Tensor, pad_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Apply the module.

        Args:
            x: ``(B, T, D)``.
            pad_mask: ``(B, T)`` True = valid; when given, padded frames are zeroed before the
                depthwise conv so they cannot leak into valid ones (Auto-AVSR passes None).
        """
        x = nn.functional.glu(self.pointwise_cov1(x.transpose(1, 2)), dim=1)  # (B, D, T)
        if pad_mask is not None:
            x = x.masked_fill(~pad_mask.unsqueeze(1), 0.0)
        x = nn.functional.silu(self.norm(self.depthwise_conv(x)))
        return self.pointwise_cov2(x).transpose(1, 2)


class ConformerBlock(nn.Module):
    """``x + FF/2``, ``+ MHSA``, ``+ Conv``, ``+ FF/2``, then LayerNorm; every branch pre-normed."""

    def __init__(self, dim: int, heads: int, ffn: int, kernel_size: int, dropout: float,
                 attention_dropout: float) -> None:
        super().__init__()
        # Creation order = ESPnet's state_dict key order.
        self.self_attn = RelPositionMultiHeadedAttention(heads, dim, attention_dropout)
        self.feed_forward = PositionwiseFeedForward(dim, ffn, dropout)
        self.conv_module = ConvolutionModule(dim, kernel_size)
        self.norm_ff = layer_norm(dim)
        self.norm_mha = layer_norm(dim)
        self.feed_forward_macaron = PositionwiseFeedForward(dim, ffn, dropout)
        self.norm_ff_macaron = layer_norm(dim)
        self.norm_conv = layer_norm(dim)
        self.norm_final = layer_norm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pos_emb: torch.Tensor, mask: Optional[torch.Tensor] = None,
                conv_pad_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``(B, T, D) -> (B, T, D)``; ``mask`` is the ``(B, 1, T)`` key mask or None."""
        x = x + 0.5 * self.dropout(self.feed_forward_macaron(self.norm_ff_macaron(x)))
        h = self.norm_mha(x)
        x = x + self.dropout(self.self_attn(h, h, h, pos_emb, mask))
        x = x + self.dropout(self.conv_module(self.norm_conv(x), conv_pad_mask))
        x = x + 0.5 * self.dropout(self.feed_forward(self.norm_ff(x)))
        return self.norm_final(x)


class ConformerEncoder(nn.Module):
    """A stack of :class:`ConformerBlock` on already-embedded inputs ``(B, T, D)``.

    Args:
        dim: width ``D``.
        heads: attention heads.
        ffn: feed-forward hidden units.
        layers: number of blocks.
        kernel_size: conv-module kernel.
        dropout: residual and feed-forward dropout.
        pos_dropout: dropout on the scaled input and the position table.
        attention_dropout: dropout on attention weights.
        mask_conv_padding: zero padded frames inside the conv module (Auto-AVSR does not).
    """

    def __init__(self, dim: int, heads: int, ffn: int, layers: int, kernel_size: int, dropout: float = 0.1,
                 pos_dropout: float = 0.1, attention_dropout: float = 0.0, mask_conv_padding: bool = False) -> None:
        super().__init__()
        self.embed = RelPositionalEncoding(dim, pos_dropout)
        self.encoders = nn.ModuleList(ConformerBlock(dim, heads, ffn, kernel_size, dropout, attention_dropout)
                                      for _ in range(layers))
        self.after_norm = layer_norm(dim)
        self.mask_conv_padding = mask_conv_padding

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Encode.

        Args:
            x: ``(B, T, D)``.
            mask: ``(B, T)`` or ``(B, 1, T)`` bool, True = valid frame; None for unpadded input.

        Returns:
            ``(B, T, D)``. Padded positions hold whatever the blocks computed there.
        """
        if mask is not None and mask.dim() == 2:
            mask = mask.unsqueeze(1)
        conv_mask = mask[:, 0] if (mask is not None and self.mask_conv_padding) else None
        x, pos_emb = self.embed(x)
        for block in self.encoders:
            x = block(x, pos_emb, mask, conv_mask)
        return self.after_norm(x)
