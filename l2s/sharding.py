"""Which part of a batch this process takes: ``--shard i/n``, ``torchrun``'s ranks, or a SLURM step's tasks.

Batch commands (``l2s synthesize``, ``l2s prepare``) split their inputs so that processes started
apart never do the same work:

* ``--shard i/n`` (1-based): the i-th of n parts, e.g. one task of a SLURM job array
  (``--shard $((SLURM_ARRAY_TASK_ID + 1))/$SLURM_ARRAY_TASK_COUNT`` with ``--array=0-3``);
* under ``torchrun``: ``RANK`` of ``WORLD_SIZE``;
* else inside an ``srun`` step: ``SLURM_PROCID`` of ``SLURM_STEP_NUM_TASKS`` (``SLURM_NTASKS`` where
  the step count is missing). A batch script itself, outside ``srun``, also sees ``SLURM_NTASKS`` and
  ``SLURM_PROCID=0`` but is one process: without ``SLURM_STEP_ID`` the SLURM variables are not used.

Both combine: ``--shard 2/4`` under two ranks gives each rank half of the second quarter. Part i of n
is ``items[i-1::n]``, so the parts of any n are disjoint and cover the items exactly once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Mapping, Optional, Sequence, TypeVar

from l2s.errors import InputError

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """Part ``index`` (0-based) of ``count``, and where that came from (for messages)."""

    index: int = 0
    count: int = 1
    source: str = "none"

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise InputError(f"shard {self.index + 1}/{self.count} ({self.source}): expected 1 <= i <= n")

    def take(self, items: Sequence[T]) -> List[T]:
        """This part of ``items``: ``items[index::count]``."""
        return list(items[self.index::self.count])

    def within(self, inner: "Shard") -> "Shard":
        """Part ``inner`` of this part, as one part of the whole (``items[i::n][r::w] == items[i + n r::n w]``)."""
        if inner.count == 1:
            return self
        if self.count == 1:
            return inner
        return Shard(self.index + self.count * inner.index, self.count * inner.count,
                     f"{self.source} and {inner.source}")

    def __str__(self) -> str:
        return f"{self.index + 1}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"i/n"`` (1-based) -> :class:`Shard`.

    Raises:
        InputError: not two integers with 1 <= i <= n.
    """
    parts = str(text).split("/")
    try:
        index, count = (int(p) for p in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        index = count = None
    if index is None or count is None or count < 1 or not 1 <= index <= count:
        raise InputError(f"--shard {text}: expected i/n with 1 <= i <= n, e.g. 1/4")
    return Shard(index - 1, count, "--shard")


def _int(environ: Mapping[str, str], name: str) -> Optional[int]:
    value = environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise InputError(f"{name}={value!r}: expected an integer") from None


def env_shard(environ: Mapping[str, str] = os.environ) -> Shard:
    """This process's part from ``torchrun`` (``RANK``/``WORLD_SIZE``) or an ``srun`` step (``SLURM_PROCID``),
    or the whole when neither launched it.

    Raises:
        InputError: a variable that is not an integer, or a rank outside its world.
    """
    world = _int(environ, "WORLD_SIZE")
    if world is not None:
        return Shard(_int(environ, "RANK") or 0, world, "torchrun RANK/WORLD_SIZE")
    if environ.get("SLURM_STEP_ID") is not None and _int(environ, "SLURM_PROCID") is not None:
        tasks = _int(environ, "SLURM_STEP_NUM_TASKS") or _int(environ, "SLURM_NTASKS") or 1
        return Shard(_int(environ, "SLURM_PROCID") or 0, tasks, "SLURM_PROCID/SLURM_NTASKS")
    return Shard()


def resolve_shard(option: Optional[str] = None, environ: Mapping[str, str] = os.environ) -> Shard:
    """The part this process takes: ``--shard`` (if given) split further among the launcher's processes."""
    outer = parse_shard(option) if option else Shard()
    return outer.within(env_shard(environ))


def local_rank(environ: Mapping[str, str] = os.environ) -> int:
    """The process's index on its node (``LOCAL_RANK`` from torchrun, ``SLURM_LOCALID`` in an srun step), for
    picking its GPU."""
    value = _int(environ, "LOCAL_RANK")
    if value is None and environ.get("SLURM_STEP_ID") is not None:
        value = _int(environ, "SLURM_LOCALID")
    return value or 0
