"""The bootstrap intervals of l2s evaluate's aggregates."""

import numpy as np

from l2s.evaluation.bootstrap import bootstrap_interval
from l2s.evaluation.runner import aggregate
from l2s.metrics.base import Score
from l2s.metrics.wer import ErrorCounts


def test_mean_interval_covers_the_mean_and_narrows_with_more_clips():
    rng = np.random.default_rng(1)
    small, large = rng.normal(0.7, 0.05, 50), rng.normal(0.7, 0.05, 2000)
    lo_s, hi_s = bootstrap_interval(small)
    lo_l, hi_l = bootstrap_interval(large)
    assert lo_s < small.mean() < hi_s and lo_l < large.mean() < hi_l
    assert hi_l - lo_l < hi_s - lo_s
    assert bootstrap_interval(small) == (lo_s, hi_s)  # seeded
    assert bootstrap_interval(np.array([0.5])) is None


def test_ratio_interval_is_of_the_corpus_ratio():
    errors, words = np.array([0, 0, 6, 0]), np.array([6, 6, 6, 6])
    lo, hi = bootstrap_interval(errors, words)
    assert 0.0 <= lo < 6 / 24 < hi <= 1.0


def test_aggregate_reports_the_corpus_wer_with_its_interval():
    counts = [ErrorCounts(1, 0, 0, 6, 1, 20), ErrorCounts(0, 0, 0, 6, 0, 20), ErrorCounts(3, 0, 0, 6, 5, 20)]
    rows = [{"wer": Score("wer", c.wer)} for c in counts]
    agg = aggregate(rows, ["wer"], counts)["wer"]
    assert agg.value == 4 / 18
    assert agg.ci95 is not None and agg.ci95[0] <= agg.value <= agg.ci95[1]
