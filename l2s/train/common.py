"""Pieces every training stage shares: the recipe's model config, data loaders from manifests, DDP helpers,
metric files."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import operator
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch.utils.data import DataLoader

from l2s.arch import Architecture, architectures, lookup
from l2s.data.batching import BucketBatchSampler
from l2s.data.collate import collate
from l2s.data.dataset import ManifestDataset
from l2s.data.manifest import read_manifest
from l2s.errors import InputError
from l2s.io.atomic import atomic_write_text

logger = logging.getLogger(__name__)


def model_config(hparams: Mapping[str, Any], family: str, archs: Optional[Sequence[str]] = None,
                 derived: Optional[Mapping[str, Any]] = None, reserved: Tuple[str, ...] = (),
                 overrides: Optional[Mapping[str, Any]] = None) -> Tuple[Architecture, Any]:
    """The architecture and the typed config of the model a recipe trains, built once from its three keys:
    ``arch`` (a member of the stage's table), ``preset`` (one of its presets) and ``model`` (field overrides).

    Args:
        family: the stage.
        archs: the architectures this stage's trainer trains (None: every member with weights).
        derived: fields the trainer sets from the other stages or the data (the lip reader's feature width).
        reserved: dotted paths of fields the trainer derives later; the recipe may not set them either.
        overrides: the trainer's own overrides on top of the recipe's.

    Raises:
        InputError: an architecture the trainer does not train, an unknown preset or field, an override of a
            derived field.
    """
    arch = hparams.get("arch")
    trainable = list(archs) if archs is not None else \
        sorted(name for name, entry in architectures(family).items() if entry.needs_weights)
    if arch not in trainable:
        raise InputError(f"recipe: arch {arch!r}: the {family} stage trains {', '.join(trainable)}")
    entry = lookup(family, arch, InputError)
    model = hparams.get("model") or {}
    if not isinstance(model, Mapping):
        raise InputError(f"recipe: model must be a mapping of {entry.config_cls.__name__} fields, got {model!r}")
    config = entry.configure(hparams.get("preset"), {**dict(model), **dict(overrides or {})},
                             f"recipe model ({family} {arch})", InputError, derived, reserved)
    return entry, config


def rank_and_world() -> tuple:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def make_loader(manifest: str, fields: Sequence[str], hparams: Mapping[str, Any], train: bool,
                tokenizer: Optional[Callable[[str], Sequence[int]]] = None,
                pad_values: Optional[Dict[str, float]] = None) -> DataLoader:
    """A DataLoader over a manifest with length-bucketed batches under ``max_frames_per_batch``.

    Under DDP both kinds shard batches across ranks: training batches padded by repetition so the ranks
    step together, evaluation batches each exactly once (the brain gathers the ranks' statistics, see
    :meth:`~l2s.train.brain.L2SBrain.gather_eval`). A split with fewer batches than ranks is evaluated
    whole on every rank (a rank without a batch would miss DDP's first buffer broadcast).
    """
    dataset = ManifestDataset(read_manifest(manifest), fields=fields, tokenizer=tokenizer)
    rank, world = rank_and_world()
    options = dict(max_frames=int(hparams["max_frames_per_batch"]), max_batch=int(hparams.get("max_batch", 64)),
                   shuffle=train, seed=int(hparams.get("seed", 0)), pad=train)
    sampler = BucketBatchSampler(dataset.lengths(), rank=rank, world_size=world, **options)
    if not train and len(sampler.batches) < world:
        sampler = BucketBatchSampler(dataset.lengths(), **options)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=int(hparams.get("num_workers", 0)),
                      collate_fn=partial(collate, pad_values=pad_values or {}))


def is_sharded(loader: Any) -> bool:
    """Whether ``loader`` gives this rank only its share of the batches (:func:`make_loader` under DDP)."""
    return getattr(getattr(loader, "batch_sampler", None), "world_size", 1) > 1


def _payload(value: Any) -> Any:
    """What one rank sends of an accumulator: metric objects as their (ids, scores) lists."""
    if isinstance(value, Mapping):
        return {k: _payload(v) for k, v in value.items()}
    if hasattr(value, "scores") and hasattr(value, "ids"):  # SpeechBrain's ErrorRateStats and kin
        return ("__metric__", list(value.ids), list(value.scores))
    return value


def _merge(local: Any, values: List[Any]) -> Any:
    first = values[0]
    if isinstance(first, Mapping):
        keys = dict.fromkeys(k for v in values for k in v)
        return {k: _merge(local.get(k) if isinstance(local, Mapping) else None, [v[k] for v in values if k in v])
                for k in keys}
    if isinstance(first, tuple) and first and first[0] == "__metric__":
        local.ids = [i for v in values for i in v[1]]
        local.scores = [s for v in values for s in v[2]]
        local.summary = {}
        return local
    return functools.reduce(operator.add, values)


def merge_across_ranks(value: Any) -> Any:
    """One rank's share of an evaluation's statistics, merged with every other rank's.

    Numbers and objects that add (:class:`~l2s.metrics.spectral.PitchErrorSums`) are summed; mappings
    merge key by key; SpeechBrain metric objects (``ids``/``scores``) get every rank's utterances.
    Without DDP the value comes back as it is.
    """
    rank, world = rank_and_world()
    if world == 1:
        return value
    gathered: List[Any] = [None] * world
    torch.distributed.all_gather_object(gathered, _payload(value))
    return _merge(value, gathered)


def mean_across_ranks(mean: float, count: int) -> float:
    """The mean over every rank's ``count`` values, given each rank's own ``mean`` of them."""
    total, n = merge_across_ranks({"sum": float(mean) * count, "n": count}).values()
    return total / n if n else float(mean)


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


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the valid frames of ``(B, 80, T)`` tensors (``mask (B, 1, T)``)."""
    return ((pred - target) ** 2 * mask).sum() / (mask.sum() * pred.shape[1]).clamp_min(1.0)


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the valid frames of ``(B, 80, T)`` tensors (``mask (B, 1, T)``)."""
    return ((pred - target).abs() * mask).sum() / (mask.sum() * pred.shape[1]).clamp_min(1.0)


def frozen_model(model: torch.nn.Module, device: str) -> torch.nn.Module:
    """``model`` on ``device`` in eval mode with its parameters frozen (a stage the trainer only reads)."""
    for p in model.parameters():
        p.requires_grad_(False)
    return model.to(device).eval()


def check_ema_decay(hparams: Mapping[str, Any]) -> None:
    """The recipe's ``ema_decay``: a number in [0, 1) or null.

    Raises:
        InputError: anything else.
    """
    decay = hparams.get("ema_decay")
    if decay is not None and (isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 <= decay < 1):
        raise InputError(f"ema_decay must be a number in [0, 1) or null, got {decay!r}")
