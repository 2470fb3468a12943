"""Padding collation: a list of item dicts to one batch dict."""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch


def pad_stack(seqs: Sequence[torch.Tensor], pad_value: float = 0.0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Pad tensors along their first axis and stack them.

    Args:
        seqs: tensors of shape ``(T_i, ...)`` with equal trailing shapes.

    Returns:
        ``(B, T_max, ...)`` padded tensor and ``(B,)`` int64 lengths.
    """
    lengths = torch.tensor([s.shape[0] for s in seqs], dtype=torch.long)
    out = seqs[0].new_full((len(seqs), int(lengths.max()), *seqs[0].shape[1:]), pad_value)
    for i, s in enumerate(seqs):
        out[i, : s.shape[0]] = s
    return out, lengths


def collate(items: List[Dict[str, Any]], pad_values: Dict[str, float] = None) -> Dict[str, Any]:
    """Collate item dicts: arrays are padded on their first axis (``<key>_lengths`` added),
    scalars become tensors, anything else (ids, text) becomes a list.
    """
    pad_values = pad_values or {}
    batch: Dict[str, Any] = {}
    for key in items[0]:
        values = [it[key] for it in items]
        first = values[0]
        if isinstance(first, np.ndarray):
            values = [torch.from_numpy(np.ascontiguousarray(v)) for v in values]
            first = values[0]
        if isinstance(first, torch.Tensor) and first.dim() > 0:
            batch[key], batch[f"{key}_lengths"] = pad_stack(values, pad_values.get(key, 0.0))
        elif isinstance(first, (int, float)) and not isinstance(first, bool):
            batch[key] = torch.tensor(values)
        else:
            batch[key] = values
    return batch
