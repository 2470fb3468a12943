"""The duration model: how a word's span is shared among its phonemes.

Forced alignment places words on the video frames; a word's phonemes are then laid end to end inside
its span, each taking a *share* of it. :class:`DurationModel` predicts the shares from the phoneme
identities (with their neighbours and their place in the word) and the lip reader's features over the
span: the mouth shows when a vowel opens or the lips close. It is small (about 25k parameters) and is
trained by the ``aligner`` stage (:mod:`l2s.train.aligner`) on SynthGRID's ``align.json``
phoneme intervals.

Without a trained model, the shares come from each phoneme's mean duration in the training data
(:attr:`DurationModel.mean_duration`, stored in the same directory), or are equal when nothing is known.

It is stored with the timing head in an ``aligner`` model directory (:mod:`l2s.models.aligner.model`),
with the phoneme inventory it was trained with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from l2s.errors import ModelError
from l2s.text.phonemes import BLANK_ID, PhonemeInventory


@dataclass(frozen=True)
class DurationConfig:
    """Sizes of a :class:`DurationModel`.

    Attributes:
        num_phonemes: inventory size.
        feature_dim: width ``D`` of the lip reader's features.
        embed_dim: phoneme embedding width.
        feature_proj: width each resampled feature frame is projected to.
        bins: the word's features are resampled to this many points.
        margin: video frames of context taken either side of the word's span.
        hidden: hidden width.
    """

    num_phonemes: int
    feature_dim: int
    embed_dim: int = 32
    feature_proj: int = 16
    bins: int = 8
    margin: int = 1
    hidden: int = 64


# per phoneme: relative position, 1 / count, first, last (the word's own shape)
_SHAPE_FEATURES = 4


class DurationModel(nn.Module):
    """Phoneme shares of words from phoneme ids and the lip reader's features.

    Args:
        config: sizes.
        inventory: the phoneme inventory the ids index (stored with the model).
    """

    def __init__(self, config: DurationConfig, inventory: PhonemeInventory) -> None:
        super().__init__()
        if len(inventory) != config.num_phonemes:
            raise ModelError(f"inventory of {len(inventory)} phonemes, config says {config.num_phonemes}")
        self.config, self.inventory = config, inventory
        self.embed = nn.Embedding(config.num_phonemes, config.embed_dim, padding_idx=BLANK_ID)
        self.context = nn.Conv1d(config.embed_dim + _SHAPE_FEATURES, config.hidden, kernel_size=3, padding=1)
        self.feature_proj = nn.Linear(config.feature_dim, config.feature_proj)
        self.span = nn.Linear(config.bins * config.feature_proj + 1, config.hidden)
        self.mix = nn.Linear(config.hidden, config.hidden)
        self.out = nn.Linear(config.hidden, 1)
        #: mean seconds of each phoneme in the training data (0: never seen), the fallback
        self.register_buffer("mean_duration", torch.zeros(config.num_phonemes))

    def forward(self, phonemes: torch.Tensor, features: torch.Tensor, span_frames: torch.Tensor) -> torch.Tensor:
        """Log-shares of each word's phonemes.

        Args:
            phonemes: ``(W, P)`` phoneme ids, padded with ``<blank>`` (0).
            features: ``(W, bins, D)`` each word's features resampled by :func:`word_features`.
            span_frames: ``(W,)`` each word's length in video frames.

        Returns:
            ``(W, P)`` log-shares (log-softmax over each word's phonemes; -inf on padding).
        """
        valid = phonemes != BLANK_ID
        count = valid.sum(1, keepdim=True).clamp(min=1).float().expand(phonemes.shape)
        index = torch.arange(phonemes.shape[1], device=phonemes.device).float().expand(phonemes.shape)
        shape = torch.stack([index / (count - 1).clamp(min=1), 1.0 / count, (index == 0).float(),
                             (index == count - 1).float()], dim=-1)
        x = torch.cat([self.embed(phonemes), shape], dim=-1) * valid.unsqueeze(-1)
        ctx = self.context(x.transpose(1, 2)).transpose(1, 2)  # (W, P, H)
        f = self.feature_proj(features).flatten(1)
        span = self.span(torch.cat([f, span_frames.float().clamp(min=1).log().unsqueeze(1)], dim=1))
        h = torch.relu(self.mix(torch.relu(ctx + span.unsqueeze(1))))
        logits = self.out(h).squeeze(-1).masked_fill(~valid, float("-inf"))
        return torch.log_softmax(logits, dim=1)

    def mean_shares(self, phonemes: Sequence[int]) -> torch.Tensor:
        """``(P,)`` shares in proportion to the phonemes' mean durations (equal where none is known)."""
        d = self.mean_duration[torch.as_tensor(list(phonemes), dtype=torch.long)]
        known = d > 0
        if not bool(known.any()):
            return torch.full((len(phonemes),), 1.0 / max(1, len(phonemes)))
        d = torch.where(known, d, d[known].mean())
        return d / d.sum()


def equal_shares(count: int) -> torch.Tensor:
    """``(count,)`` equal shares: what is left without any duration knowledge."""
    return torch.full((count,), 1.0 / max(1, count))


def word_features(features: torch.Tensor, spans: Sequence[Tuple[int, int]], bins: int, margin: int) -> torch.Tensor:
    """Each word's features, ``margin`` frames either side included, resampled to ``bins`` points.

    Args:
        features: ``(T, D)`` one clip's lip-reader features.
        spans: ``(start, end)`` video frames of each word.

    Returns:
        ``(W, bins, D)``.
    """
    num_frames = features.shape[0]
    out = []
    for start, end in spans:
        lo, hi = max(0, start - margin), min(num_frames, end + margin)
        seg = features[lo:max(hi, lo + 1)].t().unsqueeze(0)  # (1, D, n)
        out.append(F.interpolate(seg, size=bins, mode="linear", align_corners=True)[0].t())
    return torch.stack(out) if out else features.new_zeros((0, bins, features.shape[1]))


def pad_phonemes(words: Sequence[Sequence[int]]) -> torch.Tensor:
    """``(W, P_max)`` ids padded with ``<blank>``."""
    width = max((len(w) for w in words), default=1)
    out = torch.full((len(words), max(1, width)), BLANK_ID, dtype=torch.long)
    for i, w in enumerate(words):
        out[i, :len(w)] = torch.as_tensor(list(w), dtype=torch.long)
    return out


@torch.no_grad()
def predict_shares(model: DurationModel, words: Sequence[Sequence[int]], features: torch.Tensor,
                   spans: Sequence[Tuple[int, int]]) -> List[torch.Tensor]:
    """Each word's phoneme shares from the model (one batch for the clip).

    Args:
        words: each word's phoneme ids.
        features: ``(T, D)`` the clip's lip-reader features.
        spans: each word's ``(start, end)`` video frames.
    """
    if not words:
        return []
    device = next(model.parameters()).device
    feats = word_features(features.to(device), spans, model.config.bins, model.config.margin)
    lengths = torch.tensor([end - start for start, end in spans], device=device)
    shares = model(pad_phonemes(words).to(device), feats, lengths).exp().cpu()
    return [shares[i, :len(w)] for i, w in enumerate(words)]
