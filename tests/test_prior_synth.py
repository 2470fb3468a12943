"""The harmonic-plus-noise synthesiser: pitch accuracy, no aliasing, gradients, voicing, lengths."""

import math

import numpy as np
import pytest
import torch

from l2s.config import HOP_LENGTH, SAMPLE_RATE
from l2s.features.pitch import extract_f0
from l2s.models.prior.ddsp import (DDSPControls, HarmonicPlusNoise, accumulate_phase, filtered_noise, harmonic_synth,
                                   nyquist_gain, upsample_linear)


def _band_fraction(wav: torch.Tensor, lo: float, hi: float, n_fft: int = 1024) -> float:
    """Fraction of the power spectrogram's energy in ``[lo, hi)`` Hz."""
    window = torch.hann_window(n_fft, dtype=wav.dtype)
    power = torch.stft(wav, n_fft, n_fft // 4, window=window, center=False, return_complex=True).abs() ** 2
    freqs = torch.fft.rfftfreq(n_fft, 1.0 / SAMPLE_RATE)
    band = (freqs >= lo) & (freqs < hi)
    return (power[:, band].sum() / power.sum()).item()


def _const(value: float, frames: int, *extra: int) -> torch.Tensor:
    return torch.full((1, frames, *extra), value)


@pytest.mark.parametrize("n_harmonics", [1, 8])
@pytest.mark.parametrize("f0", [110.0, 150.0, 240.0])
def test_tone_pitch_measured_by_pyworld(f0, n_harmonics):
    frames = 80
    wav = harmonic_synth(_const(f0, frames), _const(0.5, frames), _const(1.0, frames, n_harmonics))
    track = extract_f0(wav[0].numpy())
    inner = track.f0[3:-3]  # the edge frames see half a window
    assert track.voiced[3:-3].all()
    assert np.abs(inner / f0 - 1.0).max() < 0.01


def test_glide_pitch_measured_by_pyworld():
    frames = 200
    f0 = torch.linspace(80.0, 400.0, frames)[None]
    wav = harmonic_synth(f0, _const(0.5, frames), _const(1.0, frames, 8))
    track = extract_f0(wav[0].numpy())
    assert track.voiced[3:frames - 3].all()
    assert np.abs(track.f0[3:frames - 3] / f0[0, 3:-3].numpy() - 1.0).max() < 0.01


def test_output_length_is_frames_times_hop():
    for frames in (1, 7, 50):
        wav = harmonic_synth(_const(200.0, frames), _const(0.3, frames), _const(1.0, frames, 5))
        noise = filtered_noise(_const(0.1, frames, 65))
        assert wav.shape == noise.shape == (1, frames * HOP_LENGTH)


def test_upsample_linear_hits_frame_centres():
    x = torch.tensor([[1.0, 3.0, 7.0]])
    up = upsample_linear(x)
    assert up.shape == (1, 3 * HOP_LENGTH)
    assert up[0, 0] == 1.0 and up[0, HOP_LENGTH] == 3.0 and up[0, 2 * HOP_LENGTH] == 7.0
    assert up[0, HOP_LENGTH // 2].item() == pytest.approx(2.0)
    assert torch.all(up[0, 2 * HOP_LENGTH:] == 7.0)  # held after the last centre


def test_glide_keeps_nothing_above_nyquist():
    """80 -> 400 Hz glide: harmonics that are (or become) >= Nyquist must not fold back."""
    frames = 100
    f0 = torch.linspace(80.0, 400.0, frames)[None]
    amp = _const(0.5, frames)
    # (a) Harmonics 1-3 plus 101-200, the latter at or above Nyquist throughout (101 * 80 > 8000):
    # only the first three may sound, so nothing may lie above 3 * 400 Hz.
    dist = torch.zeros(1, frames, 200)
    dist[..., :3] = 1.0
    dist[..., 100:] = 1.0
    wav = harmonic_synth(f0, amp, dist)
    assert _band_fraction(wav, 1300.0, SAMPLE_RATE / 2 + 1) < 1e-6
    phase = accumulate_phase(f0).reshape(1, -1)
    aliased = sum(torch.sin(k * phase) for k in (1, 2, 3, *range(101, 201)))
    assert _band_fraction(aliased, 1300.0, SAMPLE_RATE / 2 + 1) > 0.1  # the check sees aliasing
    # (b) Harmonics 20-40 cross Nyquist during the glide; the lowest one sounding is >= 20 * 80 Hz,
    # so energy below 1 kHz could only be aliases (k * f0 beyond 15 kHz folds below 1 kHz).
    dist = torch.zeros(1, frames, 40)
    dist[..., 19:] = 1.0
    wav = harmonic_synth(f0, amp, dist)
    aliased = sum(torch.sin(k * phase) for k in range(20, 41))
    assert _band_fraction(aliased, 0.0, 1000.0) > 1e-3
    assert _band_fraction(wav, 0.0, 1000.0) < 1e-4


def test_nyquist_gain_is_zero_from_nyquist_up_and_one_well_below():
    freqs = torch.tensor([100.0, 7000.0, 7800.0, 8000.0, 9000.0])
    gain = nyquist_gain(freqs)
    assert gain[0] == 1.0 and gain[1] == 1.0 and 0.0 < gain[2] < 1.0 and gain[3] == 0.0 and gain[4] == 0.0
    assert torch.equal(nyquist_gain(freqs, taper=0.0), torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0]))


def test_phase_stays_precise_on_long_clips():
    """Two minutes at 150 Hz: the wrapped float32 phase matches the exact float64 one.

    (A plain float32 cumsum of the phase increments drifts by about 7.5e-3 rad here.)
    """
    frames = 12000
    f0 = 150.0
    phase = accumulate_phase(_const(f0, frames)).reshape(-1).double()
    n = torch.arange(phase.numel(), dtype=torch.float64)
    exact = torch.remainder(2 * math.pi * f0 * n / SAMPLE_RATE, 2 * math.pi)
    diff = torch.remainder(phase - exact + math.pi, 2 * math.pi) - math.pi
    assert diff.abs().max().item() < 1e-3


def test_gradients_reach_f0_and_amplitude():
    frames = 20
    f0 = torch.full((1, frames), 180.0, requires_grad=True)
    amplitude = torch.full((1, frames), 0.4, requires_grad=True)
    logits = torch.zeros(1, frames, 16, requires_grad=True)
    wav = harmonic_synth(f0, amplitude, torch.softmax(logits, -1))
    target = torch.sin(2 * math.pi * 190.0 * torch.arange(wav.shape[1]) / SAMPLE_RATE)
    ((wav - target) ** 2).mean().backward()
    for grad in (f0.grad, amplitude.grad, logits.grad):
        assert torch.isfinite(grad).all()
        assert grad.abs().sum() > 0


def test_filtered_noise_follows_its_filter():
    frames = 100
    g = torch.Generator().manual_seed(1)
    mags = torch.zeros(1, frames, 65)
    mags[..., :17] = 1.0  # pass 0-2 kHz (band i is at i * 125 Hz)
    noise = filtered_noise(mags, generator=g)
    assert _band_fraction(noise, 0.0, 2300.0) > 0.97
    assert _band_fraction(noise, 3500.0, SAMPLE_RATE / 2 + 1) < 1e-3
    flat = filtered_noise(torch.ones(1, frames, 65), generator=g)
    assert 0.1 < _band_fraction(flat, 4000.0, SAMPLE_RATE / 2 + 1) / 0.5 < 1.5  # white stays white


def test_voicing_switch_gives_harmonics_then_noise_never_silence():
    frames = 60
    voiced = torch.zeros(1, frames, dtype=torch.bool)
    voiced[:, :30] = True
    controls = DDSPControls(amplitude=_const(0.5, frames), harmonic_distribution=_const(1.0, frames, 10) / 10,
                            noise_magnitudes=_const(0.02, frames, 65))
    out = HarmonicPlusNoise()(_const(150.0, frames), voiced, controls, generator=torch.Generator().manual_seed(0))
    assert out.wav.shape == (1, frames * HOP_LENGTH)
    frame_rms = out.wav.reshape(frames, HOP_LENGTH).pow(2).mean(-1).sqrt()
    harm_rms = out.harmonic.reshape(frames, HOP_LENGTH).pow(2).mean(-1).sqrt()
    noise_rms = out.noise.reshape(frames, HOP_LENGTH).pow(2).mean(-1).sqrt()
    assert (frame_rms > 5e-3).all()  # no silent frame anywhere
    assert (harm_rms[:29] > 0.1).all()
    assert torch.all(out.harmonic[0, 30 * HOP_LENGTH:] == 0)  # unvoiced: harmonic part silent
    assert (noise_rms[30:] > 5e-3).all()  # ... and noise on
    track = extract_f0(out.wav[0].numpy())
    assert abs(np.median(track.f0[3:27]) / 150.0 - 1.0) < 0.01
