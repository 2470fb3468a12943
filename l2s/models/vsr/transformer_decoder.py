"""Transformer decoder (ESPnet ``TransformerDecoder``, pre-norm) over encoder memory.

Input: ``Embedding(ys) * sqrt(D) + sinusoid(0, 1, ...)``; blocks of self-attention (causal),
cross-attention and feed-forward, each pre-normed with a residual; ``after_norm``; ``output_layer``.
Key names match ESPnet (``embed.0`` is the token embedding). :meth:`TransformerDecoder.forward_one_step`
scores the next token with a per-layer cache, as beam search needs.
"""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch
from torch import nn

from l2s.models.vsr.attention import MultiHeadedAttention, PositionwiseFeedForward, layer_norm, sinusoid


class PositionalEncoding(nn.Module):
    """``x * sqrt(D) + sinusoid(positions 0..L-1)``, then dropout, on ``(B, L, D)``."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.dim = dim
        self.scale = math.sqrt(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        table = sinusoid(torch.arange(x.shape[1], device=x.device), self.dim).to(x.dtype)
        return self.dropout(x * self.scale + table)


def causal_mask(length: int, device: Optional[torch.device] = None) -> torch.Tensor:
    """``(1, L, L)`` bool, True on and below the diagonal."""
    return torch.ones(length, length, dtype=torch.bool, device=device).tril().unsqueeze(0)


class DecoderLayer(nn.Module):
    """``x + SelfAttn(LN1 x)``, ``+ SrcAttn(LN2 x, memory)``, ``+ FFN(LN3 x)``."""

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float, attention_dropout: float) -> None:
        super().__init__()
        self.self_attn = MultiHeadedAttention(heads, dim, attention_dropout)
        self.src_attn = MultiHeadedAttention(heads, dim, attention_dropout)
        self.feed_forward = PositionwiseFeedForward(dim, ffn, dropout)
        self.norm1 = layer_norm(dim)
        self.norm2 = layer_norm(dim)
        self.norm3 = layer_norm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, tgt_mask: torch.Tensor, memory: torch.Tensor,
                memory_mask: Optional[torch.Tensor] = None, cache: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Run the block.

        Args:
            x: ``(B, L, D)`` block input.
            tgt_mask: ``(B or 1, L, L)`` self-attention mask, True = keep.
            memory: ``(B, T, D)`` encoder output.
            memory_mask: ``(B, 1, T)`` True = valid frame, or None.
            cache: ``(B, L - 1, D)`` this block's outputs for the first ``L - 1`` positions; then only
                the last position is computed (the result is the same, by causality).

        Returns:
            ``(B, L, D)``.
        """
        h = self.norm1(x)
        if cache is None:
            query, residual, mask = h, x, tgt_mask
        else:
            query, residual, mask = h[:, -1:], x[:, -1:], tgt_mask[:, -1:]
        out = residual + self.dropout(self.self_attn(query, h, h, mask))
        h = self.norm2(out)
        out = out + self.dropout(self.src_attn(h, memory, memory, memory_mask))
        out = out + self.dropout(self.feed_forward(self.norm3(out)))
        return out if cache is None else torch.cat([cache, out], dim=1)


class TransformerDecoder(nn.Module):
    """Attention decoder producing next-token logits.

    Args:
        vocab_size: output tokens ``V``.
        dim: width ``D``.
        heads: attention heads.
        ffn: feed-forward hidden units.
        layers: number of blocks.
        dropout: residual, feed-forward and positional dropout.
        attention_dropout: dropout on attention weights.
    """

    def __init__(self, vocab_size: int, dim: int, heads: int, ffn: int, layers: int, dropout: float = 0.1,
                 attention_dropout: float = 0.1) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Embedding(vocab_size, dim), PositionalEncoding(dim, dropout))
        self.decoders = nn.ModuleList(DecoderLayer(dim, heads, ffn, dropout, attention_dropout)
                                      for _ in range(layers))
        self.after_norm = layer_norm(dim)
        self.output_layer = nn.Linear(dim, vocab_size)

    def forward(self, ys_in: torch.Tensor, memory: torch.Tensor,
                memory_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Teacher-forced logits.

        Args:
            ys_in: ``(B, L)`` token ids starting with sos (padding with eos is harmless: attention is causal).
            memory: ``(B, T, D)`` encoder output.
            memory_mask: ``(B, T)`` or ``(B, 1, T)`` True = valid frame, or None.

        Returns:
            ``(B, L, V)`` logits.
        """
        return self.output_layer(self.hidden(ys_in, memory, memory_mask))

    def hidden(self, ys_in: torch.Tensor, memory: torch.Tensor,
               memory_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Teacher-forced states before the output layer, ``(B, L, D)`` (the decoder's "context" that
        sequence-level distillation matches; arguments as :meth:`forward`)."""
        if memory_mask is not None and memory_mask.dim() == 2:
            memory_mask = memory_mask.unsqueeze(1)
        x = self.embed(ys_in)
        mask = causal_mask(ys_in.shape[1], ys_in.device)
        for layer in self.decoders:
            x = layer(x, mask, memory, memory_mask)
        return self.after_norm(x)

    def forward_one_step(self, ys: torch.Tensor, memory: torch.Tensor,
                         cache: Optional[List[torch.Tensor]] = None,
                         memory_mask: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """Log-probabilities of the next token after each prefix.

        Args:
            ys: ``(N, L)`` prefixes (sos first).
            memory: ``(N, T, D)``.
            cache: per-layer ``(N, L - 1, D)`` outputs from the previous step, or None.
            memory_mask: ``(N, T)`` True = valid frame, for padded utterances (None: one utterance each,
                unpadded, as the beam search has).

        Returns:
            ``(N, V)`` log-probabilities and the new per-layer cache ``(N, L, D)``.
        """
        x = self.embed(ys)
        mask = causal_mask(ys.shape[1], ys.device)
        if memory_mask is not None and memory_mask.dim() == 2:
            memory_mask = memory_mask.unsqueeze(1)
        new_cache = []
        for index, layer in enumerate(self.decoders):
            x = layer(x, mask, memory, memory_mask, None if cache is None else cache[index])
            new_cache.append(x)
        logits = self.output_layer(self.after_norm(x[:, -1]))
        return torch.log_softmax(logits, dim=-1), new_cache
