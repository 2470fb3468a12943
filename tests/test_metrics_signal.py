"""Intrusive and non-intrusive metrics on a TTS utterance: identity, white noise, silence."""

import numpy as np
import pytest

from l2s.metrics.intelligibility import estoi, pesq_wb, stoi
from l2s.metrics.spectral import f0_scores, mcd
from tests._eval_speech import speech


@pytest.fixture(scope="module")
def ref():
    return speech(0)


@pytest.fixture(scope="module")
def noise(ref):
    return (0.1 * np.random.default_rng(0).standard_normal(len(ref))).astype(np.float32)


def test_identity_pair_is_perfect(ref):
    assert stoi(ref, ref).value == pytest.approx(1.0, abs=1e-6)
    assert estoi(ref, ref).value == pytest.approx(1.0, abs=1e-6)
    assert mcd(ref, ref).value == pytest.approx(0.0, abs=1e-9)
    assert mcd(ref, ref, dtw=True).value == pytest.approx(0.0, abs=1e-5)
    assert pesq_wb(ref, ref).value > 4.5
    f0 = f0_scores(ref, ref)
    assert f0.f0_rmse.value == 0.0 and f0.vuv_error.value == 0.0 and f0.logf0_corr.value == pytest.approx(1.0)
    assert f0.gpe.value == 0.0 and f0.f0_rmse_fine.value == 0.0


def test_white_noise_scores_low(ref, noise):
    # STOI's clipping step (degraded bands clipped at 15 dB above the clean ones) correlates
    # even pure noise with the clean envelope: STOI(speech, white noise) is about 0.35-0.45 on
    # 2-3 s clips. ESTOI has no such floor and is the one that drops below 0.3.
    assert estoi(ref, noise).value < 0.3
    assert stoi(ref, noise).value < 0.5
    assert pesq_wb(ref, noise).value < 1.5
    assert mcd(ref, noise).value > 10.0


def test_degenerate_inputs_are_missing_with_a_reason(ref):
    silent = np.zeros_like(ref)
    for score in (stoi(ref, silent), estoi(ref, silent), pesq_wb(ref, silent), mcd(silent, ref)):
        assert score.value is None and "silent" in score.reason
    short = pesq_wb(ref[:1000], ref[:1000])
    assert short.value is None and "shorter" in short.reason
    f0 = f0_scores(ref, silent)
    assert f0.f0_rmse.value is None and f0.f0_rmse.reason


def test_shifted_copy_scores_like_identity_after_alignment(ref):
    from l2s.metrics.align import align

    late = np.concatenate([np.zeros(1234, np.float32), ref])
    a = align(ref, late)
    assert a.lag == 1234
    assert stoi(a.ref, a.hyp).value == pytest.approx(1.0, abs=1e-6)


def test_gross_pitch_error_splits_octave_errors_from_fine_ones():
    from l2s.metrics.spectral import GROSS_PITCH_TOLERANCE, PitchErrorSums, pitch_error_sums

    ref = np.array([100.0, 100.0, 100.0, 100.0, 200.0, 0.0])
    hyp = np.array([110.0, 90.0, 200.0, 100.0, 50.0, 120.0])  # two fine errors, two octave errors
    both = (ref > 0) & (hyp > 0)
    sums = pitch_error_sums(ref, hyp, both)
    assert sums.frames == 5 and sums.gross == 2
    assert sums.gpe == pytest.approx(0.4)
    assert sums.fine_rmse == pytest.approx(np.sqrt((100 + 100 + 0) / 3))
    assert sums.rmse == pytest.approx(np.sqrt((100 + 100 + 100 ** 2 + 0 + 150 ** 2) / 5))
    # the tolerance is relative to the reference: 19 % off is fine, 21 % is gross
    limit = 100 * (1 + GROSS_PITCH_TOLERANCE)
    edge = pitch_error_sums(np.array([100.0, 100.0]), np.array([limit - 1, limit + 1]), np.ones(2, bool))
    assert edge.gross == 1
    # pooled sums are what two clips give together
    pooled = sums + edge
    assert pooled.frames == 7 and pooled.gross == 3
    assert np.isnan(PitchErrorSums().rmse) and np.isnan(PitchErrorSums().gpe)


def test_f0_scores_report_gpe_of_an_octave_shifted_copy(ref):
    from l2s.features.pitch import extract_f0

    track = extract_f0(ref)
    doubled = type(track)(f0=track.f0 * 2, voiced=track.voiced, frame_rate=track.frame_rate)
    scores = f0_scores(ref, ref, ref_track=track, hyp_track=doubled)
    assert scores.gpe.value == pytest.approx(1.0)  # every voiced frame an octave off
    assert scores.f0_rmse_fine.value is None and scores.f0_rmse_fine.reason
    same = f0_scores(ref, ref)
    assert same.gpe.value == 0.0 and same.f0_rmse_fine.value == 0.0
