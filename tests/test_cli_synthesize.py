"""``l2s synthesize`` through CliRunner on a tiny UNTRAINED pipeline (random weights; the audio is noise).

Inputs are random-frame videos with a landmark sidecar (:func:`l2s.bench.write_synthetic_clip`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from l2s.bench import write_synthetic_clip
from l2s.cli import main
from l2s.config import SAMPLE_RATE, SAMPLES_PER_VIDEO_FRAME
from l2s.pipeline import build_untrained_pipeline
from tests._io_media import video_packets

FRAMES = 30
FAST = ["--steps", "3", "--seed", "0", "--device", "cpu"]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    return str(build_untrained_pipeline(tmp_path_factory.mktemp("model") / "tiny", "tiny"))


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    for i, name in enumerate(("alpha", "beta", "gamma")):
        write_synthetic_clip(folder / f"{name}.mp4", FRAMES, seed=i)
    return folder


def run(*args, env=None):
    return CliRunner().invoke(main, ["synthesize", *map(str, args)], env=env)


def _one_line_error(result) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("l2s: error:"), result.stderr
    assert "Traceback" not in result.output


def test_wav_output_with_sidecar_and_plot(model, clips, tmp_path):
    out = tmp_path / "voiced.wav"
    result = run(clips / "alpha.mp4", "-o", out, "--model", model, "--plot", *FAST)
    assert result.exit_code == 0, result.output
    wav, sr = sf.read(out)
    assert sr == SAMPLE_RATE and wav.shape == (FRAMES * SAMPLES_PER_VIDEO_FRAME,)
    assert np.abs(wav).max() > 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["model"]["weights"] == "untrained" and record["model"]["name"] == "untrained-tiny"
    assert record["settings"]["steps"] == 3 and record["settings"]["seed"] == 0
    assert record["settings"]["text_source"] == "vsr" and isinstance(record["confidences"], list)
    assert set(record["timings_s"]) == {"roi", "vsr", "aligner", "prior", "generator", "vocoder", "total"}
    # the lip-read text on the timeline: words and phonemes (an untrained reader may read nothing)
    assert set(record["alignment"]) >= {"words", "phonemes", "segments"}
    assert record["alignment"]["text"] == " ".join(record["text"].split()).lower() or not record["text"].strip()
    assert record["duration_s"] == pytest.approx(FRAMES / 25)
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_mp4_output_keeps_the_picture_and_takes_the_text(model, clips, tmp_path):
    out = tmp_path / "voiced.mp4"
    result = run(clips / "beta.mp4", "-o", out, "--model", model, "--text", "bin blue at f two now", *FAST)
    assert result.exit_code == 0, result.output
    assert video_packets(out) == video_packets(clips / "beta.mp4")  # the video stream copied untouched
    import av

    with av.open(str(out)) as container:
        assert len(container.streams.audio) == 1
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["text"] == "bin blue at f two now" and record["settings"]["text_source"] == "given"
    assert [w["word"] for w in record["alignment"]["words"]] == "bin blue at f two now".split()


def test_transcripts_beside_the_audio(model, clips, tmp_path):
    srt = pytest.importorskip("srt")
    out = tmp_path / "voiced.wav"
    result = run(clips / "beta.mp4", "-o", out, "--model", model, "--text", "bin blue at f two now",
                 "--output-format", "all", "--word-timestamps", "--plot", *FAST)
    assert result.exit_code == 0, result.output
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".png", ".srt", ".tsv", ".txt", ".vtt", ".wav"]
    cues = list(srt.parse(out.with_suffix(".srt").read_text()))
    assert "<u>bin</u>" in cues[0].content and len(cues) >= 6
    assert out.with_suffix(".txt").read_text() == "bin blue at f two now\n"


def test_text_from_txt_steers_each_clip_toward_its_transcript(model, clips, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name, text in (("alpha", "bin blue at f two now"), ("beta", "set red by g nine again")):
        (folder / f"{name}.mp4").write_bytes((clips / f"{name}.mp4").read_bytes())
        (folder / f"{name}.landmarks.npz").write_bytes((clips / f"{name}.landmarks.npz").read_bytes())
        (folder / f"{name}.txt").write_text(f"  {text}\n")
    out = tmp_path / "out"
    result = run(folder, "-o", out, "--model", model, "--text-from-txt", *FAST)
    assert result.exit_code == 0, result.output
    for name, text in (("alpha", "bin blue at f two now"), ("beta", "set red by g nine again")):
        record = json.loads((out / f"{name}.json").read_text())
        assert record["text"] == text and record["settings"]["text_source"] == "given"
    _one_line_error(run(folder, "-o", out, "--model", model, "--text-from-txt", "--text", "x", *FAST))
    (folder / "beta.txt").unlink()
    missing = run(folder / "beta.mp4", "-o", tmp_path / "b.wav", "--model", model, "--text-from-txt", *FAST)
    _one_line_error(missing)
    assert not (tmp_path / "b.wav").exists()


def test_start_step_overrides_shallow_diffusion(model, clips, tmp_path):
    for given, stored in (("0", None), ("7", 7)):
        out = tmp_path / f"start{given}.wav"
        result = run(clips / "alpha.mp4", "-o", out, "--model", model, "--start-step", given, *FAST)
        assert result.exit_code == 0, result.output
        assert json.loads(out.with_suffix(".json").read_text())["settings"]["start_step"] == stored


def test_folder_mode_resumes(model, clips, tmp_path):
    out = tmp_path / "out"
    first = run(clips, "-o", out, "--model", model, *FAST)
    assert first.exit_code == 0, first.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["alpha.json", "alpha.wav", "beta.json", "beta.wav", "gamma.json", "gamma.wav"]
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    second = run(clips, "-o", out, "--model", model, *FAST)
    assert second.exit_code == 0 and "3 clip(s) already finished" in second.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    # beta's audio without its sidecar: l2s cannot tell it from a file of the user's, so it refuses to
    # replace it (before any work) and names it
    (out / "beta.json").unlink()
    third = run(clips, "-o", out, "--model", model, *FAST)
    _one_line_error(third)
    assert "beta.wav exists and was not written by l2s" in third.stderr and "--overwrite" in third.stderr
    assert (out / "beta.wav").stat().st_mtime_ns == stamps["beta.wav"]
    (out / "beta.wav").unlink()
    fourth = run(clips, "-o", out, "--model", model, *FAST)
    assert fourth.exit_code == 0 and "voiced 1 clip(s), skipped 2" in fourth.stderr
    assert (out / "beta.json").is_file() and (out / "alpha.wav").stat().st_mtime_ns == stamps["alpha.wav"]
    # other settings: every clip is made again, and said so
    fifth = run(clips, "-o", out, "--model", model, "--steps", "2", "--seed", "0", "--device", "cpu")
    assert fifth.exit_code == 0 and "voiced 3 clip(s), skipped 0" in fifth.stderr
    assert fifth.stderr.count("made with other settings (steps 3 -> 2)") == 3


def test_torchrun_rank_takes_its_share(model, clips, tmp_path):
    out = tmp_path / "ranked"
    result = run(clips, "-o", out, "--model", model, *FAST, env={"RANK": "1", "WORLD_SIZE": "2"})
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.wav")) == ["beta.wav"]  # inputs 1::2 of alpha, beta, gamma


def test_bad_inputs_exit_2_with_one_line(model, clips, tmp_path):
    _one_line_error(run(tmp_path / "missing.mp4", "-o", tmp_path / "x.wav", "--model", model))
    _one_line_error(run(clips / "alpha.mp4", "-o", tmp_path / "x.txt", "--model", model))
    _one_line_error(run(clips / "alpha.mp4", "-o", tmp_path / "x.wav", "--model", tmp_path / "no-model"))
    _one_line_error(run(clips / "alpha.mp4", "-o", tmp_path / "x.wav", "--model", model, "--ref-audio",
                        tmp_path / "nobody.wav"))
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video")
    _one_line_error(run(not_video, "-o", tmp_path / "x.wav", "--model", model, *FAST))
    assert not (tmp_path / "x.wav").exists() and not (tmp_path / "x.json").exists()


def test_without_model_the_missing_default_is_a_clear_error(clips, tmp_path, monkeypatch):
    monkeypatch.setattr("l2s.hub.bundled_dir", lambda name: None)  # a build without the bundled default
    result = run(clips / "alpha.mp4", "-o", tmp_path / "x.wav")
    _one_line_error(result)
    assert "synthgrid-small" in result.stderr and "--model" in result.stderr


def test_without_model_the_bundled_default_voices_the_clip(clips, tmp_path):
    from l2s.hub import bundled_dir

    if bundled_dir("synthgrid-small") is None:
        pytest.skip("this build has no bundled synthgrid-small")
    out = tmp_path / "x.wav"
    result = run(clips / "alpha.mp4", "-o", out, "--seed", "0", "--device", "cpu")
    assert result.exit_code == 0, result.output
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["model"]["name"] == "synthgrid-small" and record["model"]["weights"] == "trained"
    # random-frame input: the synthetic-face model warns about nothing, but the output is a full clip
    assert sf.read(out)[0].shape == (FRAMES * SAMPLES_PER_VIDEO_FRAME,)
