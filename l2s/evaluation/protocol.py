"""Benchmark protocols (``eval/protocols/*.yaml``): which split, which ASR, which metrics.

A protocol fixes everything that makes two result tables comparable. ``l2s evaluate
--protocol FILE`` takes its metrics, ASR and alignment bound unless given on the
command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import yaml

from l2s.errors import InputError
from l2s.evaluation.runner import METRIC_COLUMNS

_REQUIRED = ("name", "corpus", "split", "metrics", "asr")


@dataclass(frozen=True)
class Protocol:
    """One benchmark definition.

    Attributes:
        name: protocol id (``synthgrid-test-seen``...).
        corpus: corpus name (``synthgrid``, ``lrs3``, ``lrs2``, ``grid``).
        split: split name in that corpus.
        metrics: metric groups (keys of ``METRIC_COLUMNS``).
        asr: ASR spec for WER.
        max_lag_s: alignment bound for intrusive metrics.
        ref: how to build the REF set (a manifest path pattern, or a list file in the corpus).
        description: what the benchmark measures and where its split comes from.
        primary: the headline metric of the table.
    """

    name: str
    corpus: str
    split: str
    metrics: Tuple[str, ...]
    asr: str
    max_lag_s: float = 0.5
    ref: Optional[str] = None
    description: str = ""
    primary: str = "wer"


def load_protocol(path: Path) -> Protocol:
    """Read and validate a protocol file (unknown metrics and missing keys are an :class:`InputError`)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: unreadable protocol ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a protocol is a YAML mapping")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise InputError(f"{path}: protocol misses {', '.join(missing)}")
    metrics = tuple(data["metrics"])
    unknown = [m for m in metrics if m not in METRIC_COLUMNS]
    if unknown:
        raise InputError(f"{path}: unknown metric(s) {', '.join(unknown)}")
    known = set(Protocol.__dataclass_fields__)
    extra = sorted(set(data) - known - {"notes", "sources", "speakers", "num_utterances"})
    if extra:
        raise InputError(f"{path}: unknown protocol key(s) {', '.join(extra)}")
    fields = {k: v for k, v in data.items() if k in known}
    fields["metrics"] = metrics
    return Protocol(**fields)
