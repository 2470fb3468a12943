"""Pieces every training stage shares: data loaders from manifests, DDP helpers, metric files."""

from __future__ import annotations

import hashlib
import json
import logging
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import torch
from torch.utils.data import DataLoader

from l2s.data.batching import BucketBatchSampler
from l2s.data.collate import collate
from l2s.data.dataset import ManifestDataset
from l2s.data.manifest import read_manifest
from l2s.io.atomic import atomic_write_text

logger = logging.getLogger(__name__)


def rank_and_world() -> tuple:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def make_loader(manifest: str, fields: Sequence[str], hparams: Mapping[str, Any], train: bool,
                tokenizer: Optional[Callable[[str], Sequence[int]]] = None,
                pad_values: Optional[Dict[str, float]] = None) -> DataLoader:
    """A DataLoader over a manifest with length-bucketed batches under ``max_frames_per_batch``.

    Training loaders shard batches across DDP ranks; evaluation loaders do not (every rank
    sees everything, and only the main process reports).
    """
    dataset = ManifestDataset(read_manifest(manifest), fields=fields, tokenizer=tokenizer)
    rank, world = rank_and_world() if train else (0, 1)
    sampler = BucketBatchSampler(dataset.lengths(), max_frames=int(hparams["max_frames_per_batch"]),
                                 max_batch=int(hparams.get("max_batch", 64)), shuffle=train,
                                 seed=int(hparams.get("seed", 0)), rank=rank, world_size=world)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=int(hparams.get("num_workers", 0)),
                      collate_fn=partial(collate, pad_values=pad_values or {}))


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DDP / DataParallel wrapper."""
    return getattr(module, "module", module)


def weight_digest(module: torch.nn.Module) -> str:
    """SHA-256 of a module's state (names, dtypes, shapes and values), to compare copies of a model."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def rank_digests(module: torch.nn.Module) -> List[str]:
    """:func:`weight_digest` of ``module`` on every DDP rank (one entry without DDP).

    DDP keeps replicas identical by averaging gradients; a mismatch means a bug (a
    rank-dependent branch, an unsynchronised buffer) and is logged as an error.
    """
    digest = weight_digest(module)
    rank, world = rank_and_world()
    if world == 1:
        return [digest]
    gathered: List[Any] = [None] * world
    torch.distributed.all_gather_object(gathered, digest)
    if len(set(gathered)) > 1:
        logger.error("model replicas differ across DDP ranks: %s", gathered)
    return [str(d) for d in gathered]


def write_metrics(path: Path, metrics: Mapping[str, Any]) -> None:
    """Write a JSON metrics file atomically (merged with what the file already holds)."""
    path = Path(path)
    old = json.loads(path.read_text()) if path.is_file() else {}
    old.update(metrics)
    atomic_write_text(path, json.dumps(old, indent=2, sort_keys=True) + "\n")
