import pytest
import torch
from safetensors.torch import load_file

from l2s.features.mel import MelSpectrogram, denormalize_mel, normalize_log_mel, slaney_mel_filterbank, wav_to_mel


def test_shape_and_batching():
    wav = torch.randn(3, 16000)
    mel = wav_to_mel(wav)
    assert mel.shape == (3, 80, 101)
    single = wav_to_mel(wav[1])
    assert torch.allclose(single, mel[1], atol=1e-5)


def test_normalisation_roundtrip():
    x = torch.randn(2, 80, 10)
    assert torch.allclose(normalize_log_mel(denormalize_mel(x)), x, atol=1e-6)


def test_differentiable():
    wav = torch.randn(1, 4000, requires_grad=True)
    wav_to_mel(wav).sum().backward()
    assert wav.grad is not None and torch.isfinite(wav.grad).all() and wav.grad.abs().sum() > 0


def test_matches_lipvoicer_reference(lipvoicer_fixtures):
    ref = load_file(str(lipvoicer_fixtures / "mel.io.safetensors"))
    fb = torch.from_numpy(slaney_mel_filterbank(16000, 640, 80, 20.0, 8000.0))
    assert torch.allclose(fb, ref["mel_filterbank"], atol=1e-6)
    # Peak normalisation from the int16-valued samples, as LipVoicer's loader does it.
    mel_norm = wav_to_mel(ref["waveform_int16_as_float"])
    log_mel = MelSpectrogram()(ref["waveform"])
    assert torch.allclose(log_mel, ref["mel_log"], atol=1e-4)
    assert torch.allclose(mel_norm, ref["mel_norm"], atol=1e-4)
    assert (log_mel - ref["mel_log"]).abs().max() < 1e-4
    mag = MelSpectrogram().magnitude(ref["waveform"][None])[0]
    assert mag.shape == ref["magnitude"].shape
    assert torch.allclose(mag, ref["magnitude"], atol=2e-4)


def test_rejects_nothing_silently_on_silence():
    mel = wav_to_mel(torch.zeros(1, 1600), normalized=True)
    assert torch.isfinite(mel).all()
    assert torch.allclose(mel, torch.full_like(mel, -1.0), atol=1e-4)


@pytest.mark.parametrize("n", [159, 160, 161, 24000])
def test_frame_count(n):
    assert wav_to_mel(torch.randn(n)).shape[-1] == 1 + n // 160
