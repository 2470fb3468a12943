"""Percentile bootstrap intervals over utterances (resampling clips, as the benchmark tables report them)."""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

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
