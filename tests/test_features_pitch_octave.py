"""The octave check of the F0 tracker (l2s.features.pitch): weak fundamentals are read at the right octave."""

from __future__ import annotations

import numpy as np
import pytest

from l2s.config import CONTRACT
from l2s.features.pitch import extract_f0, octave_check, subharmonic_energies

SR = CONTRACT.audio.sample_rate
HOP = CONTRACT.f0.hop_length


def _harmonic(f0: float, seconds: float, gains_db, seed: int = 0) -> np.ndarray:
    """A steady harmonic tone: harmonic ``k`` (1-based) at ``gains_db[k - 1]`` dB, random phases, a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = sum(10 ** (g / 20) * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi))
            for k, g in enumerate(gains_db, start=1))
    x = x / np.abs(x).max() * 0.5
    return x + 1e-3 * rng.standard_normal(len(x))


def _inner(track) -> np.ndarray:
    f = track.f0[10:-10]
    assert track.voiced[10:-10].all()
    return f


# 100 Hz with a weak fundamental and odd harmonics 4 dB under the even ones (the SynthGRID Piper voice)
WEAK_FUNDAMENTAL = [-30, 0, -4, 0, -4, -2, -6, -4, -8, -6, -10, -8]


def test_a_weak_fundamental_is_read_at_its_octave():
    x = _harmonic(100.0, 1.0, WEAK_FUNDAMENTAL)
    raw = _inner(extract_f0(x, check_octave=False))
    checked = _inner(extract_f0(x))
    assert np.median(raw) > 180  # WORLD alone reads the even harmonics' spacing
    np.testing.assert_allclose(checked, 100.0, rtol=0.02)


def test_a_clean_voice_is_left_as_it_is():
    x = _harmonic(220.0, 1.0, [0, -6, -10, -14, -18, -22])
    raw = extract_f0(x, check_octave=False)
    checked = extract_f0(x)
    np.testing.assert_array_equal(checked.f0, raw.f0)
    np.testing.assert_allclose(_inner(checked), 220.0, rtol=0.01)


def test_a_second_clean_voice_in_the_clip_keeps_its_octave():
    low = _harmonic(110.0, 0.6, [0, -6, -10, -14, -18, -22], seed=1)
    high = _harmonic(240.0, 0.6, [0, -6, -10, -14, -18, -22], seed=2)
    x = np.concatenate([low, np.zeros(SR // 4), high])
    f = extract_f0(x).f0
    first, second = f[10:50], f[95:135]
    np.testing.assert_allclose(first[first > 0], 110.0, rtol=0.02)
    np.testing.assert_allclose(second[second > 0], 240.0, rtol=0.02)


def test_single_frame_octave_jumps_inside_a_run_are_removed():
    x = _harmonic(200.0, 0.5, [0, -6, -10, -14, -18, -22])
    n = 1 + len(x) // HOP
    track = np.full(n, 200.0)
    track[:3] = 0.0
    track[20:23] = 100.0  # a tracker's octave drop
    track[30] = 400.0
    out = octave_check(x, track, SR, HOP, CONTRACT.f0.f0_floor, CONTRACT.f0.f0_ceil)
    assert (out[:3] == 0).all()
    np.testing.assert_array_equal(out[3:], 200.0)


def test_subharmonic_energy_separates_the_two_voices():
    weak = _harmonic(100.0, 0.5, WEAK_FUNDAMENTAL)
    clean = _harmonic(200.0, 0.5, [0, -6, -10, -14, -18, -22])
    ratios = []
    for x in (weak, clean):
        track = np.zeros(1 + len(x) // HOP)
        track[5:-5] = 200.0  # both read at 200 Hz
        harmonic, sub = subharmonic_energies(x, track, SR, HOP)
        assert (harmonic[:5] == 0).all() and (sub[:5] == 0).all()
        ratios.append(10 * np.log10(sub[5:-5].sum() / harmonic[5:-5].sum()))
    assert ratios[0] > -6 and ratios[1] < -30


@pytest.mark.parametrize("method", ["dio", "harvest"])
def test_silence_stays_unvoiced(method):
    track = extract_f0(np.zeros(SR // 2), method)
    assert not track.voiced.any() and (track.f0 == 0).all()
