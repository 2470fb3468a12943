"""Percentile bootstrap intervals over utterances (resampling clips, as the benchmark tables report them)."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from l2s.metrics.wer import ErrorCounts

#: Resamples drawn, and the seed: an interval is reproducible from the same scores.
DRAWS = 1000
SEED = 0
#: Two-sided coverage of the interval.
LEVEL = 0.95


def bootstrap_interval(values: np.ndarray, weights: Optional[np.ndarray] = None, draws: int = DRAWS,
                       level: float = LEVEL, seed: int = SEED) -> Optional[Tuple[float, float]]:
    """The percentile interval of a corpus statistic under resampling of the utterances.

    Args:
        values: ``(N,)`` per-utterance values: scores, or with ``weights`` the numerators of a ratio
            (a WER's errors per utterance).
        weights: ``(N,)`` the denominators (reference words): the statistic is ``sum(values) / sum(weights)``,
            as a corpus-level WER is; None: the mean of ``values``.
        draws: resamples; level: coverage; seed: of the resampling.

    Returns:
        ``(low, high)``, or None for fewer than two utterances.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    if n < 2:
        return None
    idx = np.random.default_rng(seed).integers(0, n, size=(draws, n))
    if weights is None:
        stats = values[idx].mean(axis=1)
    else:
        w = np.asarray(weights, dtype=np.float64)[idx].sum(axis=1)
        stats = values[idx].sum(axis=1) / np.maximum(w, 1e-12)
    alpha = (1.0 - level) / 2
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(low), float(high)


def error_rate(counts: Sequence[ErrorCounts], unit: str = "wer") -> Tuple[float, Optional[Tuple[float, float]]]:
    """The corpus WER (``unit`` "wer") or CER ("cer") of per-utterance counts, errors summed over summed reference
    length (0 for no reference at all), and its :func:`bootstrap_interval` (None for fewer than two utterances).

    Raises:
        ValueError: another unit.
    """
    if unit not in ("wer", "cer"):
        raise ValueError(f"unit must be 'wer' or 'cer', got {unit!r}")
    words = unit == "wer"
    errors = np.asarray([c.word_errors if words else c.char_errors for c in counts], dtype=np.float64)
    lengths = np.asarray([c.ref_words if words else c.ref_chars for c in counts], dtype=np.float64)
    return float(errors.sum() / max(lengths.sum(), 1.0)), bootstrap_interval(errors, lengths)
