"""l2s.io.audio: read (soundfile, PyAV fallback), resample, atomic PCM-16 wav writes."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from l2s.config import SAMPLE_RATE
from l2s.errors import InputError, OutputError
from l2s.io.audio import AUDIO_FORMATS, read_audio, resample, write_audio, write_wav
from tests._io_media import make_audio_only


def _sine(freq: float, seconds: float, sample_rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(wav: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wav * np.hanning(len(wav))))
    return float(np.fft.rfftfreq(len(wav), 1.0 / sample_rate)[np.argmax(spectrum)])


@pytest.mark.parametrize("orig_sr", [8000, 22050, 44100, 48000])
def test_resample_keeps_frequency_and_length(orig_sr):
    wav = _sine(440.0, 1.0, orig_sr)
    out = resample(wav, orig_sr, SAMPLE_RATE)
    assert out.dtype == np.float32 and out.shape == (SAMPLE_RATE,)
    assert _peak_hz(out, SAMPLE_RATE) == pytest.approx(440.0, abs=1.0)
    core = out[1000:-1000]
    assert np.sqrt(np.mean(core ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_resample_identity_and_bad_rates():
    wav = _sine(100.0, 0.1, SAMPLE_RATE).astype(np.float64)
    out = resample(wav, SAMPLE_RATE, SAMPLE_RATE)
    assert out.dtype == np.float32 and np.allclose(out, wav, atol=1e-7)
    with pytest.raises(ValueError):
        resample(wav, 0, SAMPLE_RATE)


def test_write_wav_then_read_audio_round_trip(tmp_path):
    wav = _sine(300.0, 0.5, SAMPLE_RATE)
    wav[10] = 3.0  # out of range: clipped, not wrapped
    path = tmp_path / "sub" / "a.wav"
    write_wav(path, wav)
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
    back = read_audio(path)
    assert back.dtype == np.float32 and back.shape == wav.shape
    assert back[10] == pytest.approx(1.0, abs=1e-4)
    wav[10] = 1.0
    assert np.abs(back - wav).max() < 1e-4  # 16-bit quantisation
    write_wav(path, wav[None, :])  # (1, N) is mono too, and overwrites
    assert read_audio(path).shape == wav.shape
    with pytest.raises(ValueError):
        write_wav(tmp_path / "stereo.wav", np.zeros((2, 100), np.float32))


def test_write_wav_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "out.wav"
    write_wav(path, _sine(200.0, 0.1, SAMPLE_RATE))
    original = path.read_bytes()
    real_write_bytes = Path.write_bytes

    def disk_fills_up(self, data):
        real_write_bytes(self, data[:6])  # half a file, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "write_bytes", disk_fills_up)
    for target in (path, tmp_path / "new.wav"):
        with pytest.raises(OutputError, match=f"{target.name}: cannot write the output: No space left on device"):
            write_wav(target, _sine(500.0, 0.2, SAMPLE_RATE))
    assert path.read_bytes() == original  # the previous file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]  # no partial or temporary file


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg", ".mp3"])
def test_write_audio_takes_the_type_from_the_suffix(tmp_path, suffix):
    wav = _sine(440.0, 0.5, SAMPLE_RATE, 0.5)
    path = tmp_path / f"out{suffix}"
    write_audio(path, wav)
    info = sf.info(str(path))
    assert info.format == AUDIO_FORMATS[suffix][0] and info.samplerate == SAMPLE_RATE and info.channels == 1
    back = read_audio(path)
    assert abs(back.shape[0] - wav.shape[0]) <= 1200  # mp3 may pad by a frame
    assert _peak_hz(back[:wav.shape[0]], SAMPLE_RATE) == pytest.approx(440.0, abs=3.0)


def test_write_audio_refuses_other_suffixes(tmp_path):
    with pytest.raises(InputError, match=r"\.aiff audio"):
        write_audio(tmp_path / "out.aiff", np.zeros(100, np.float32))
    assert not list(tmp_path.iterdir())


def test_read_audio_downmixes_and_resamples_flac(tmp_path):
    left, right = _sine(440.0, 0.5, 44100, 0.6), _sine(440.0, 0.5, 44100, 0.2)
    path = tmp_path / "stereo.flac"
    sf.write(str(path), np.stack([left, right], axis=1), 44100)
    wav = read_audio(path)
    assert wav.shape == (SAMPLE_RATE // 2,)
    assert _peak_hz(wav, SAMPLE_RATE) == pytest.approx(440.0, abs=2.0)
    assert np.sqrt(np.mean(wav[500:-500] ** 2)) == pytest.approx(0.4 / np.sqrt(2), rel=0.02)


def test_read_audio_falls_back_to_pyav(tmp_path):
    wav = read_audio(make_audio_only(tmp_path / "voice.m4a", seconds=1.0))
    assert abs(len(wav) - SAMPLE_RATE) <= 16
    assert _peak_hz(wav, SAMPLE_RATE) == pytest.approx(440.0, abs=2.0)


def test_read_audio_bad_inputs(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("not audio")
    for path, reason in [(tmp_path / "nope.wav", "no such file"), (tmp_path, "directory"),
                         (tmp_path / "empty.wav", "empty"), (tmp_path / "text.wav", "not a readable audio")]:
        with pytest.raises(InputError, match=reason):
            read_audio(path)
