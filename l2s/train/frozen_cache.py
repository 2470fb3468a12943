"""Outputs of frozen networks, computed once per utterance and reused every epoch.

The F0/DDSP and mel-generator stages condition on a frozen lip reader (and the latter on a
frozen DDSP prior) whose input is not augmented, so an utterance's conditions are the same in
every epoch; on a CPU the frozen encoder costs as much as the model being trained. The cache
keeps each utterance's unpadded output on the CPU (a 3 s SynthGRID clip: 75 x 256 floats of
features, 300 x 80 of prior mel) and rebuilds padded batches from it. The DDSP prior's noise
draw is then fixed per utterance during training, which is the price of the speed.
"""

from __future__ import annotations

from typing import Callable, Dict, Sequence

import torch


class FrozenCache:
    """Memoise ``compute(indices) -> (B, ..., T)`` outputs per utterance id.

    Args:
        time_dim: the time axis of each output (``1`` for ``(B, T, D)``, ``-1`` for ``(B, C, T)``).
        enabled: False computes every time (the cache then only passes through).
    """

    def __init__(self, time_dim: int, enabled: bool = True):
        if time_dim == 0:
            raise ValueError("time_dim 0 is the batch axis")
        self.item_dim = time_dim - 1 if time_dim > 0 else time_dim  # the time axis of one item
        self.enabled = enabled
        self.store: Dict[str, torch.Tensor] = {}

    def __call__(self, ids: Sequence[str], lengths: torch.Tensor, compute: Callable[[torch.Tensor], torch.Tensor],
                 total: int) -> torch.Tensor:
        """The batch output, padded with zeros to ``total`` steps along the time axis.

        Args:
            ids: utterance ids of the batch.
            lengths: ``(B,)`` valid steps of each item's output.
            compute: maps the indices (a ``(K,)`` long tensor) of the items to compute to their
                ``(K, ..., T)`` output.
            total: padded length of the batch output.
        """
        if not self.enabled:
            return compute(torch.arange(len(ids)))
        missing = [i for i, uid in enumerate(ids) if uid not in self.store]
        if missing:
            out = compute(torch.tensor(missing))
            for k, i in enumerate(missing):
                self.store[ids[i]] = out[k].narrow(self.item_dim, 0, int(lengths[i])).detach().cpu()
        padded = []
        for uid in ids:
            x = self.store[uid]
            after = x.dim() - 1 - self.item_dim % x.dim()  # axes after the time axis (F.pad lists them first)
            padded.append(torch.nn.functional.pad(x, [0, 0] * after + [0, total - x.shape[self.item_dim]]))
        return torch.stack(padded)
