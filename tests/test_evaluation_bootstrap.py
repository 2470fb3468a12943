"""The bootstrap intervals of l2s evaluate's aggregates."""

import numpy as np

from l2s.evaluation.bootstrap import bootstrap_interval, error_rate
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


def test_error_rate_is_the_corpus_rate_of_the_counts_with_its_interval():
    counts = [ErrorCounts(1, 0, 0, 5, 2, 20), ErrorCounts(0, 1, 1, 4, 3, 18), ErrorCounts(0, 0, 0, 6, 0, 25)]
    wer, wer_ci = error_rate(counts, "wer")
    cer, cer_ci = error_rate(counts, "cer")
    assert wer == 3 / 15 and cer == 5 / 63
    assert wer_ci == bootstrap_interval(np.array([1, 2, 0]), np.array([5, 4, 6]))
    assert cer_ci == bootstrap_interval(np.array([2, 3, 0]), np.array([20, 18, 25]))
    assert error_rate(counts[:1], "wer")[1] is None and error_rate([], "cer") == (0.0, None)
