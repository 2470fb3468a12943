"""A wall-clock budget for the epoch loop (``max_train_minutes`` in a recipe, or ``--max_train_minutes=N``).

Training stops at the first epoch boundary after the budget is spent: the last epoch is whole,
validated and checkpointed, and the run then scores the test splits and exports the best
checkpoint as usual. The budget counts from the start of this run, so a resumed run gets a new one.
Under DDP, rank 0's clock decides for every rank (they must leave the loop together).
"""

from __future__ import annotations

import logging
import time
from typing import Iterable, Iterator, Optional

import torch

logger = logging.getLogger(__name__)


def collective_device() -> torch.device:
    """Where a tensor must live for a collective of the current process group: NCCL reduces only CUDA
    tensors (on the rank's own device), gloo CPU ones."""
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _all_agree(stop: bool) -> bool:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        flag = torch.tensor([1.0 if stop else 0.0], device=collective_device())
        torch.distributed.broadcast(flag, src=0)
        return bool(flag.item())
    return stop


def within_budget(epochs: Iterable[int], max_minutes: Optional[float],
                  clock=time.monotonic) -> Iterator[int]:
    """Yield from ``epochs`` (e.g. a SpeechBrain ``EpochCounter``) until ``max_minutes`` have passed.

    Args:
        epochs: the epoch loop to bound.
        max_minutes: the budget; None or <= 0: no budget.
        clock: seconds, monotonic (a parameter for tests).
    """
    start = clock()
    for epoch in epochs:
        yield epoch
        if max_minutes and max_minutes > 0 and _all_agree(clock() - start > 60.0 * max_minutes):
            logger.info("stopping after epoch %d: the %.1f-minute training budget is spent", epoch, max_minutes)
            return
