"""Building blocks shared by the conformer encoder and the transformer decoder (ESPnet conventions).

* :func:`sinusoid`: the Transformer sinusoid, ``pe(p)[2i] = sin(p w_i)``, ``pe(p)[2i+1] = cos(p w_i)``,
  ``w_i = exp(-2i ln(10000) / d)``, computed in float32 as ESPnet does.
* :class:`MultiHeadedAttention`: scaled dot-product attention with q/k/v/out Linear layers.
* :class:`RelPositionMultiHeadedAttention`: Transformer-XL relative attention (Dai et al. 2019, sec. 3.3)
  in ESPnet's "latest" form: learnt biases ``pos_bias_u``/``pos_bias_v`` and a projected table of
  relative positions ``i - j`` from ``T - 1`` down to ``-(T - 1)``.
* :class:`PositionwiseFeedForward`: ``w_2(ReLU(w_1 x))``.

Masks are boolean, True = keep, broadcastable to ``(B, H, T_q, T_k)``; masked scores are set to
the float32 minimum before the softmax and the masked weights to exactly zero after it.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

#: ESPnet's LayerNorm epsilon, used by every encoder and decoder LayerNorm.
LAYER_NORM_EPS = 1e-12


def layer_norm(dim: int) -> nn.LayerNorm:
    """A LayerNorm with ESPnet's epsilon (1e-12)."""
    return nn.LayerNorm(dim, eps=LAYER_NORM_EPS)


def sinusoid(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal encodings of (possibly negative) positions.

    Args:
        positions: ``(N,)`` positions.
        dim: encoding width (even).

    Returns:
        ``(N, dim)`` float32, sines on even and cosines on odd channels.
    """
    omega = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=positions.device)
                      * -(math.log(10000.0) / dim))
    angles = positions.to(torch.float32).unsqueeze(1) * omega
    table = torch.empty(positions.numel(), dim, dtype=torch.float32, device=positions.device)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles)
    return table


class PositionwiseFeedForward(nn.Module):
    """``w_2(dropout(ReLU(w_1 x)))`` on ``(B, T, D)``."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.w_1 = nn.Linear(dim, hidden)
        self.w_2 = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(self.dropout(torch.relu(self.w_1(x))))


class MultiHeadedAttention(nn.Module):
    """Multi-head scaled dot-product attention.

    Set :attr:`keep_attention` to store the last attention weights ``(B, H, T_q, T_k)`` in :attr:`attn`
    (for inspection and tests; off by default so training does not hold them).
    """

    def __init__(self, heads: int, dim: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.d_k = dim // heads
        self.linear_q = nn.Linear(dim, dim)
        self.linear_k = nn.Linear(dim, dim)
        self.linear_v = nn.Linear(dim, dim)
        self.linear_out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)
        self.keep_attention = False
        self.attn: Optional[torch.Tensor] = None

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, D) -> (B, T, H, d_k)``."""
        return x.view(x.shape[0], -1, self.heads, self.d_k)

    def _attend(self, scores: torch.Tensor, value: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        """Softmax over keys, weighted sum of values, output projection: ``(B, H, T_q, T_k) -> (B, T_q, D)``."""
        if mask is not None:
            if mask.dim() == 3:  # (B, T_q or 1, T_k) -> broadcast over heads
                mask = mask.unsqueeze(1)
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
            attn = torch.softmax(scores, dim=-1).masked_fill(~mask, 0.0)
        else:
            attn = torch.softmax(scores, dim=-1)
        if self.keep_attention:
            self.attn = attn.detach()
        out = torch.matmul(self.dropout(attn), value)  # (B, H, T_q, d_k)
        out = out.transpose(1, 2).reshape(out.shape[0], -1, self.heads * self.d_k)
        return self.linear_out(out)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Attend ``query (B, T_q, D)`` over ``key``/``value (B, T_k, D)``; returns ``(B, T_q, D)``."""
        q = self._split(self.linear_q(query)).transpose(1, 2)
        k = self._split(self.linear_k(key)).transpose(1, 2)
        v = self._split(self.linear_v(value)).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.d_k)
        return self._attend(scores, v, mask)


def rel_shift(x: torch.Tensor) -> torch.Tensor:
    """Turn scores against the relative table into scores against keys.

    Args:
        x: ``(B, H, T, 2T - 1)`` where column ``c`` is relative position ``T - 1 - c``.

    Returns:
        ``(B, H, T, T)`` with ``out[i, j] = x[i, j + T - 1 - i]`` (relative position ``i - j``).
    """
    batch, heads, length, width = x.shape
    index = (torch.arange(length, device=x.device).unsqueeze(0)
             - torch.arange(length, device=x.device).unsqueeze(1) + length - 1)  # (T, T)
    return torch.gather(x, 3, index.expand(batch, heads, length, length))


class RelPositionMultiHeadedAttention(MultiHeadedAttention):
    """Self-attention with relative positions (Transformer-XL, ESPnet ``RelPositionMultiHeadedAttention``).

    ``scores = ((q + u) k^T + rel_shift((q + v) p^T)) / sqrt(d_k)`` with ``p = linear_pos(pos_emb)``.
    """

    def __init__(self, heads: int, dim: int, dropout: float) -> None:
        super().__init__(heads, dim, dropout)
        self.linear_pos = nn.Linear(dim, dim, bias=False)
        self.pos_bias_u = nn.Parameter(torch.empty(heads, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.empty(heads, self.d_k))
        nn.init.xavier_uniform_(self.pos_bias_u)
        nn.init.xavier_uniform_(self.pos_bias_v)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,  # type: ignore[override]
                pos_emb: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Attend with relative positions.

        Args:
            query, key, value: ``(B, T, D)``.
            pos_emb: ``(1, 2T - 1, D)`` from :class:`l2s.models.vsr.conformer.RelPositionalEncoding`.
            mask: ``(B, 1, T)`` key mask, True = valid, or None.

        Returns:
            ``(B, T, D)``.
        """
        q = self._split(self.linear_q(query))  # (B, T, H, d_k)
        k = self._split(self.linear_k(key)).transpose(1, 2)
        v = self._split(self.linear_v(value)).transpose(1, 2)
        p = self._split(self.linear_pos(pos_emb)).transpose(1, 2)  # (1, H, 2T-1, d_k)
        content = torch.matmul((q + self.pos_bias_u).transpose(1, 2), k.transpose(-2, -1))
        position = rel_shift(torch.matmul((q + self.pos_bias_v).transpose(1, 2), p.transpose(-2, -1)))
        return self._attend((content + position) / math.sqrt(self.d_k), v, mask)
