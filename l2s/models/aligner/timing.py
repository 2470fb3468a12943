"""The timing head: frame posteriors over the lip reader's tokens that are trained to be *on time*.

A CTC head is free to emit a token on any frame of its word, or before or after it: CTC's loss does
not care when, and a bidirectional encoder uses that freedom. The bundled lip reader's CTC head (a
0.1-weight auxiliary of its attention decoder) aligns SynthGRID test-unseen words with a median error of
about 140 ms. The timing head reads the same frozen features and is trained by frame-level
cross-entropy to put each word's tokens inside the word's true span (spread evenly over it), the space
between words on the pauses and the blank before and after the speech; the same Viterbi search
(:func:`l2s.align.ctc.viterbi`) then runs on its posteriors. It speaks the lip reader's vocabulary, so
any text that tokenizer can write aligns, and it is small (about 170k parameters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple

import torch
from torch import nn


@dataclass(frozen=True)
class TimingConfig:
    """Sizes of a :class:`TimingHead`.

    Attributes:
        vocab_size: the lip reader's vocabulary (blank 0 included).
        feature_dim: width ``D`` of the lip reader's features.
        hidden: channels of the temporal convolutions.
        kernel: their width in video frames.
        layers: how many.
        dropout: dropout before each convolution in training.
    """

    vocab_size: int
    feature_dim: int
    hidden: int = 128
    kernel: int = 5
    layers: int = 2
    dropout: float = 0.1


class TimingHead(nn.Module):
    """Features ``(B, T, D)`` -> frame log-posteriors ``(B, T, V)`` over the lip reader's tokens."""

    def __init__(self, config: TimingConfig) -> None:
        super().__init__()
        self.config = config
        dims = [config.feature_dim] + [config.hidden] * config.layers
        self.convs = nn.ModuleList(nn.Conv1d(a, b, config.kernel, padding=config.kernel // 2)
                                   for a, b in zip(dims, dims[1:]))
        self.norms = nn.ModuleList(nn.LayerNorm(config.hidden) for _ in range(config.layers))
        self.dropout = nn.Dropout(config.dropout)
        self.out = nn.Linear(config.hidden, config.vocab_size)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = features
        for conv, norm in zip(self.convs, self.norms):
            x = torch.relu(norm(conv(self.dropout(x).transpose(1, 2)).transpose(1, 2)))
        return torch.log_softmax(self.out(x), dim=-1)


def frame_targets(num_frames: int, words: Sequence[Tuple[int, int, Sequence[int]]], blank: int,
                  separator: int) -> torch.Tensor:
    """The frame labels the timing head learns.

    Args:
        num_frames: frames of the clip.
        words: ``(start, end, token ids)`` of each word, frames ``[start, end)``, in order.
        blank: the blank id (before the first word and after the last).
        separator: the token between two words (a character tokenizer's space; ``blank`` for a
            SentencePiece one, whose words carry their own ``▁``).

    Returns:
        ``(T,)`` int64: each word's tokens spread evenly over its frames, ``separator`` between words.
    """
    target = torch.full((num_frames,), blank, dtype=torch.long)
    if words:
        first, last = words[0][0], words[-1][1]
        target[max(0, first):max(0, min(num_frames, last))] = separator
    for start, end, tokens in words:
        start, end = max(0, start), min(num_frames, end)
        if end <= start or not tokens:
            continue
        k = torch.arange(end - start) * len(tokens) // (end - start)
        target[start:end] = torch.as_tensor(list(tokens), dtype=torch.long)[k]
    return target
