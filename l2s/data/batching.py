"""Length-bucketed batches under a frame budget (as Auto-AVSR batches), DDP-aware."""

from __future__ import annotations

import math
from typing import Iterator, List, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler


class BucketBatchSampler(Sampler[List[int]]):
    """Batches of similar-length items whose padded size stays under ``max_frames``.

    Items are sorted by length, cut into batches whose ``len(batch) * max_len`` is at
    most ``max_frames`` (an item longer than the budget gets a batch of its own), and
    the batch order is shuffled each epoch (``set_epoch``). Under DDP every rank
    takes every ``world_size``-th batch of the same order; for training the batch list is
    padded by repetition so all ranks run the same number of steps, for evaluation
    (``pad=False``) it is not, so the ranks' batches together are each batch exactly once.

    Args:
        lengths: length of each item (any unit, e.g. video frames).
        max_frames: padded-size budget per batch.
        max_batch: hard cap on items per batch.
        pad: repeat batches so every rank gets as many (training), or not (evaluation).
    """

    def __init__(self, lengths: Sequence[int], max_frames: int, max_batch: int = 64, shuffle: bool = True,
                 seed: int = 0, rank: int = 0, world_size: int = 1, pad: bool = True):
        if max_frames <= 0 or max_batch <= 0:
            raise ValueError("max_frames and max_batch must be positive")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.max_frames, self.max_batch = max_frames, max_batch
        self.shuffle, self.seed = shuffle, seed
        self.rank, self.world_size, self.pad = rank, world_size, pad
        self.epoch = 0
        self.batches = self._make_batches()

    def _make_batches(self) -> List[List[int]]:
        order = np.argsort(self.lengths, kind="stable")
        batches: List[List[int]] = []
        current: List[int] = []
        longest = 0
        for idx in order:
            length = int(self.lengths[idx])
            grown = max(longest, length)
            if current and (grown * (len(current) + 1) > self.max_frames or len(current) >= self.max_batch):
                batches.append(current)
                current, grown = [], length
            current.append(int(idx))
            longest = grown
        if current:
            batches.append(current)
        return batches

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[List[int]]:
        order = list(range(len(self.batches)))
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(len(order), generator=g).tolist()
        if self.pad:
            per_rank = math.ceil(len(order) / self.world_size)
            order = (order * math.ceil(per_rank * self.world_size / max(len(order), 1)))[: per_rank * self.world_size]
        for i in order[self.rank::self.world_size]:
            yield self.batches[i]

    def __len__(self) -> int:
        if self.pad:
            return math.ceil(len(self.batches) / self.world_size)
        return len(range(self.rank, len(self.batches), self.world_size))
