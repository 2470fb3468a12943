"""``l2s vocode``: copy-synthesis through the CLI, errors as one line and exit 2, nothing left behind."""

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from l2s.cli import main
from l2s.features.mel import wav_to_mel
from l2s.vocoder import save_vocoder
from l2s.vocoder.vocos import VOCOS_TINY, VocosVocoder


def run(*args):
    return CliRunner().invoke(main, list(args))


def tone(path, seconds=0.5, rate=16000):
    t = np.arange(int(seconds * rate)) / rate
    x = sum((0.3 / k) * np.sin(2 * np.pi * 150 * k * t) for k in range(1, 12))
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 1e-3 * np.random.default_rng(0).standard_normal(t.shape)
    sf.write(str(path), x.astype(np.float32), rate)
    return x


def one_line_error(r):
    assert r.exit_code == 2, (r.output, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("l2s: error:") and "Traceback" not in r.stderr


def test_help_names_the_default():
    r = run("vocode", "--help")
    assert r.exit_code == 0 and "bundled" in r.output and "griffinlim" in r.output and "--vocoder" in r.output


@pytest.mark.parametrize("vocoder, bound", [("griffinlim", 0.12), (None, 0.25)])
def test_copy_synthesis_griffinlim_and_default(tmp_path, vocoder, bound):
    tone(tmp_path / "in.wav")
    out = tmp_path / "out" / "out.wav"
    extra = ["--vocoder", vocoder] if vocoder else []
    r = run("vocode", str(tmp_path / "in.wav"), "-o", str(out), "--device", "cpu", *extra)
    assert r.exit_code == 0, r.stderr
    y, sr = sf.read(str(out), dtype="float32")
    x, _ = sf.read(str(tmp_path / "in.wav"), dtype="float32")
    assert sr == 16000 and y.shape == x.shape
    l1 = (wav_to_mel(torch.from_numpy(y)) - wav_to_mel(torch.from_numpy(x))).abs().mean()
    # model-space mel L1 of the resynthesis of a harmonic tone: Griffin-Lim measured 0.084; the default
    # (the bundled Vocos-small, trained on speech only, so a pure tone is out of its domain) 0.160
    assert l1 < bound
    assert [p.name for p in out.parent.iterdir()] == ["out.wav"]


def test_resamples_input_and_takes_a_model_dir(tmp_path):
    tone(tmp_path / "in44.wav", seconds=0.3, rate=44100)
    save_vocoder(VocosVocoder(VOCOS_TINY), tmp_path / "vocos")
    r = run("vocode", str(tmp_path / "in44.wav"), "-o", str(tmp_path / "o.wav"), "--vocoder", str(tmp_path / "vocos"))
    assert r.exit_code == 0, r.stderr
    y, sr = sf.read(str(tmp_path / "o.wav"))
    assert sr == 16000 and y.shape == (4800,)


def test_bad_inputs(tmp_path):
    out = tmp_path / "out.wav"
    one_line_error(run("vocode", str(tmp_path / "missing.wav"), "-o", str(out)))
    (tmp_path / "junk.wav").write_bytes(b"not audio at all" * 10)
    one_line_error(run("vocode", str(tmp_path / "junk.wav"), "-o", str(out)))
    tone(tmp_path / "in.wav", seconds=0.1)
    one_line_error(run("vocode", str(tmp_path / "in.wav"), "-o", str(out), "--vocoder", "no-such-vocoder"))
    one_line_error(run("vocode", str(tmp_path / "in.wav"), "-o", str(tmp_path)))
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "junk.wav"]


def test_folder_and_manifest_inputs(tmp_path):
    src = tmp_path / "ref"
    src.mkdir()
    tone(src / "a.wav", seconds=0.2)
    tone(src / "b.wav", seconds=0.3)
    r = run("vocode", str(src), "-o", str(tmp_path / "hyp"))
    assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "hyp").iterdir()) == ["a.wav", "b.wav"]
    assert sf.info(str(tmp_path / "hyp" / "b.wav")).frames == 4800
    (tmp_path / "set.jsonl").write_text('{"id": "u1", "wav": "ref/a.wav"}\n')
    r = run("vocode", str(tmp_path / "set.jsonl"), "-o", str(tmp_path / "hyp2"))
    assert r.exit_code == 0, r.stderr
    assert [p.name for p in (tmp_path / "hyp2").iterdir()] == ["u1.wav"]
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line_error(run("vocode", str(empty), "-o", str(tmp_path / "hyp3")))
    assert not (tmp_path / "hyp3").exists()


@pytest.mark.parametrize("suffix, kind", [(".flac", "FLAC"), (".ogg", "OGG"), (".mp3", "MP3")])
def test_the_output_type_follows_its_suffix(tmp_path, suffix, kind):
    tone(tmp_path / "in.wav", seconds=0.3)
    out = tmp_path / f"out{suffix}"
    r = run("vocode", str(tmp_path / "in.wav"), "-o", str(out), "--vocoder", "griffinlim")
    assert r.exit_code == 0, r.stderr
    assert sf.info(str(out)).format == kind  # not a RIFF wav under another name


def test_an_unknown_output_type_is_refused_before_the_vocoder_loads(tmp_path, monkeypatch):
    tone(tmp_path / "in.wav", seconds=0.1)
    monkeypatch.setattr("l2s.vocoder.registry.get_vocoder", lambda *a, **k: pytest.fail("vocoder loaded"))
    one_line_error(run("vocode", str(tmp_path / "in.wav"), "-o", str(tmp_path / "out.aiff")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]


def test_stdin_to_stdout_and_never_over_the_input(tmp_path):
    tone(tmp_path / "in.wav", seconds=0.3)
    data = (tmp_path / "in.wav").read_bytes()
    r = CliRunner().invoke(main, ["vocode", "-", "-o", "-", "--vocoder", "griffinlim"], input=data)
    assert r.exit_code == 0, r.stderr
    assert r.stdout_bytes[:4] == b"RIFF"
    filed = run("vocode", str(tmp_path / "in.wav"), "-o", str(tmp_path / "o.wav"), "--vocoder", "griffinlim")
    assert filed.exit_code == 0 and r.stdout_bytes == (tmp_path / "o.wav").read_bytes()  # the same wav either way
    one_line_error(run("vocode", str(tmp_path / "in.wav"), "-o", str(tmp_path / "in.wav"), "--vocoder", "griffinlim"))
    assert (tmp_path / "in.wav").read_bytes() == data


def test_from_mel_renders_mel_files_as_copy_synthesis_renders_the_recording(tmp_path):
    """A recording's own mel file rendered with --from-mel gives what copy-synthesis of the recording gives."""
    x = tone(tmp_path / "in.wav", seconds=0.3)
    mel = wav_to_mel(torch.from_numpy((x / np.abs(x).max() / 1.1).astype(np.float32))).T.numpy()  # the peak level
    np.save(tmp_path / "in.npy", mel)
    r = run("vocode", str(tmp_path / "in.npy"), "-o", str(tmp_path / "m.wav"), "--vocoder", "griffinlim", "--from-mel")
    assert r.exit_code == 0, r.stderr
    copy = run("vocode", str(tmp_path / "in.wav"), "-o", str(tmp_path / "c.wav"), "--vocoder", "griffinlim")
    assert copy.exit_code == 0, copy.stderr
    y, _ = sf.read(str(tmp_path / "m.wav"), dtype="float32")
    c, _ = sf.read(str(tmp_path / "c.wav"), dtype="float32")
    assert y.shape == (mel.shape[0] * 160,) and y.shape[0] >= c.shape[0]
    np.testing.assert_allclose(y[:c.shape[0]], c, atol=1e-2)  # measured: at most 0.004 apart (peak-level rounding)
    assert np.corrcoef(y[:c.shape[0]], c)[0, 1] > 0.999
    (tmp_path / "set.jsonl").write_text('{"id": "u1", "mel": "in.npy"}\n')
    r = run("vocode", str(tmp_path / "set.jsonl"), "-o", str(tmp_path / "hyp"), "--vocoder", "griffinlim", "--from-mel")
    assert r.exit_code == 0, r.stderr
    assert [p.name for p in (tmp_path / "hyp").iterdir()] == ["u1.wav"]
    # refused in one line: a manifest without mels, a wav, a mel of the wrong shape
    (tmp_path / "wavs.jsonl").write_text('{"id": "u1", "wav": "in.wav"}\n')
    one_line_error(run("vocode", str(tmp_path / "wavs.jsonl"), "-o", str(tmp_path / "h2"), "--from-mel"))
    one_line_error(run("vocode", str(tmp_path / "in.wav"), "-o", str(tmp_path / "w.wav"), "--from-mel"))
    np.save(tmp_path / "bad.npy", np.zeros((80, 3), np.float32))
    one_line_error(run("vocode", str(tmp_path / "bad.npy"), "-o", str(tmp_path / "b.wav"), "--from-mel",
                       "--vocoder", "griffinlim"))
    assert not (tmp_path / "h2").exists() and not (tmp_path / "w.wav").exists() and not (tmp_path / "b.wav").exists()
