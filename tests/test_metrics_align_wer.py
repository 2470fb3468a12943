"""Alignment (cross-correlation lag, DTW) and WER/CER (jiwer + Whisper normaliser)."""

import itertools

import numpy as np
import pytest

from l2s.metrics.align import align, dtw_path, find_lag
from l2s.metrics.wer import corpus_counts, error_counts, normalize_text, wer_cer


@pytest.mark.parametrize("lag", [0, 321, -457])
def test_shifted_copy_is_aligned_back_with_its_lag(lag):
    rng = np.random.default_rng(0)
    ref = rng.standard_normal(8000).astype(np.float32) * np.hanning(8000).astype(np.float32)
    hyp = np.roll(np.pad(ref, 1000), lag)  # hyp[n + lag] == ref[n], 1000 zeros each side
    a = align(ref, hyp[1000:], max_lag_s=0.1)
    assert a.lag == lag
    assert a.correlation > 0.999
    np.testing.assert_allclose(a.hyp, a.ref, atol=1e-6)
    assert len(a.ref) == len(a.hyp) >= 8000 - abs(lag)


def test_lag_search_is_bounded():
    rng = np.random.default_rng(1)
    ref = rng.standard_normal(4000)
    hyp = np.concatenate([np.zeros(2000), ref])  # true lag 2000 samples = 125 ms
    assert find_lag(ref, hyp, max_lag=4000)[0] == 2000
    assert abs(find_lag(ref, hyp, max_lag=500)[0]) <= 500


def test_dtw_path_is_the_minimum_over_all_monotonic_paths():
    rng = np.random.default_rng(2)
    cost = rng.random((4, 5))

    def paths(i, j):  # brute force from (0, 0)
        if (i, j) == (3, 4):
            yield [(i, j)]
            return
        for di, dj in ((1, 1), (1, 0), (0, 1)):
            if i + di <= 3 and j + dj <= 4:
                for rest in paths(i + di, j + dj):
                    yield [(i, j)] + rest

    best = min(sum(cost[p] for p in path) for path in paths(0, 0))
    path = dtw_path(cost)
    assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (3, 4)
    assert all(0 <= a[0] - b[0] <= 1 and 0 <= a[1] - b[1] <= 1 for a, b in itertools.pairwise(path[::-1]))
    assert cost[path[:, 0], path[:, 1]].sum() == pytest.approx(best)


def test_known_jiwer_case():
    # "box" for "fox" (1 substitution), "jumps" added (1 insertion), "brown" dropped in the second.
    c = error_counts("the quick brown fox", "the quick brown box jumps")
    assert (c.substitutions, c.deletions, c.insertions, c.ref_words) == (1, 0, 1, 4)
    assert c.wer == pytest.approx(0.5)
    assert error_counts("the quick brown fox", "the quick fox").deletions == 1
    wer, cer = wer_cer("the quick brown fox", "the quick brown box jumps")
    assert wer.value == pytest.approx(0.5)
    assert cer.value == pytest.approx(7 / 19)  # 1 substituted + 6 inserted (" jumps") of 19 characters


def test_whisper_normaliser_applies_to_both_sides():
    assert normalize_text("Mr. Smith's colour, 2 dogs!") == normalize_text("mister smith's color 2 dogs")
    assert wer_cer("Hello, World!", "hello world")[0].value == 0.0


def test_corpus_wer_is_errors_over_all_reference_words():
    total = corpus_counts(["a b c d", "e f"], ["a b c x", "e f"])
    assert total.wer == pytest.approx(1 / 6)  # not the mean of 0.25 and 0


def test_empty_reference_is_missing_with_a_reason_and_empty_hypothesis_deletes_all():
    wer, cer = wer_cer("  ", "hello")
    assert wer.value is None and "empty" in wer.reason
    assert wer_cer("one two", "")[0].value == 1.0


@pytest.mark.parametrize("seed, delay", [(0, 0), (1, 200), (2, 0), (3, 200)])
def test_a_phase_rebuilt_copy_is_aligned_within_a_hop(seed, delay):
    # Griffin-Lim rebuilds the phase: the waveform correlation of such a copy peaks at spurious lags
    # (up to 500 samples on these signals); the spectrogram search stays within one hop of the truth.
    import torch

    from l2s.vocoder import copy_synthesis
    from l2s.vocoder.griffinlim import GriffinLim, GriffinLimOptions
    from tests._signals import harmonic

    ref = harmonic(2.0, 110.0 + 35 * seed, seed)
    with torch.no_grad():
        copy = copy_synthesis(GriffinLim(GriffinLimOptions(n_iter=16, seed=seed)), ref).numpy()
    hyp = np.concatenate([np.zeros(delay, np.float32), copy])
    lag, _ = find_lag(ref.numpy(), hyp, max_lag=8000)
    assert abs(lag - delay) <= 16
