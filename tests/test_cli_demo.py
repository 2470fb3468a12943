"""``l2s demo`` through CliRunner with an untrained micro pipeline (random weights: the speech is noise)."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from l2s.cli import main
from l2s.config import SAMPLE_RATE
from l2s.corpora.synthgrid.generate import CorpusOptions, plan_corpus
from l2s.pipeline import build_untrained_pipeline
from l2s.pipeline.demo import demo_clip_spec

FAST = ["--steps", "2", "--solver", "dpmsolver++", "--device", "cpu", "--seed", "3"]
REPORT_KEYS = {"model", "clip", "true_text", "lip_read_text", "wer_lip_read", "asr", "asr_transcript", "wer_asr",
               "stoi", "align_lag_ms", "timings_s", "synthesis", "notes", "files"}


@pytest.fixture(scope="module")
def micro(tmp_path_factory) -> Path:
    return build_untrained_pipeline(tmp_path_factory.mktemp("untrained") / "micro", preset="micro")


def _streams(path: Path) -> set:
    with av.open(str(path)) as container:
        return {s.type for s in container.streams}


def test_demo_clip_is_a_held_out_speaker_on_a_test_sentence():
    opts = CorpusOptions()
    speakers, specs = plan_corpus(opts)
    held_out = {s.id for s in speakers[opts.speakers - opts.unseen_speakers:]}
    corpus = {(s.speaker.id, s.words): s.seed for s in specs if s.split == "test-unseen"}
    a, b = demo_clip_spec(0), demo_clip_spec(0)
    assert a == b and a.split == "test-unseen" and a.speaker.id in held_out
    assert (a.speaker.id, a.words) in corpus and corpus[(a.speaker.id, a.words)] != a.seed  # a fresh rendering


def test_demo_writes_every_file_and_a_report(micro, tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "-o", str(out), "--model", str(micro), "--asr", "none", *FAST])
    assert result.exit_code == 0, result.output
    for name in ("input_silent.mp4", "voiced.mp4", "voiced.wav", "ground_truth.wav", "report.json", "report.txt"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert _streams(out / "input_silent.mp4") == {"video"}
    assert _streams(out / "voiced.mp4") == {"video", "audio"}
    voiced, sr = sf.read(out / "voiced.wav")
    truth, sr_truth = sf.read(out / "ground_truth.wav")
    assert sr == sr_truth == SAMPLE_RATE and voiced.shape == truth.shape and np.abs(truth).max() > 0.01
    report = json.loads((out / "report.json").read_text())
    assert set(report) == REPORT_KEYS
    assert report["model"]["name"] == "untrained-micro" and report["clip"]["split"] == "test-unseen"
    assert report["true_text"] == demo_clip_spec(3).text and report["asr"] is None
    assert report["wer_lip_read"] is not None and report["wer_lip_read"] >= 0
    assert report["stoi"] is None or 0 <= report["stoi"] <= 1
    assert report["synthesis"]["settings"]["steps"] == 2 and report["synthesis"]["settings"]["seed"] == 3
    assert set(report["timings_s"]) == {"model", "clip", "voice", "score", "total"}
    assert report["true_text"] in (out / "report.txt").read_text() and report["true_text"] in result.stdout
    assert "[5/5]" in result.stderr and str(out) in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]  # assembled beside it and renamed


def test_demo_transcribes_with_whisper_when_available(micro, tmp_path):
    pytest.importorskip("whisper")
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "-o", str(out), "--model", str(micro), *FAST])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    if report["asr"] is None:
        pytest.skip("Whisper tiny.en weights are not available: " + "; ".join(report["notes"]))
    assert report["asr"] == "whisper:tiny.en" and isinstance(report["asr_transcript"], str)
    assert report["wer_asr"] is not None


def test_demo_without_a_bundled_model_is_one_line_exit_2(monkeypatch, tmp_path):
    monkeypatch.setattr("l2s.hub.bundled_dir", lambda name: None)
    result = CliRunner().invoke(main, ["demo", "-o", str(tmp_path / "demo")])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("l2s: error:") and "--model" in lines[0]
    assert not any(tmp_path.iterdir())


def test_demo_refuses_to_replace_a_folder_that_is_not_a_demo(micro, tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    result = CliRunner().invoke(main, ["demo", "-o", str(tmp_path), "--model", str(micro), *FAST])
    assert result.exit_code == 2 and (tmp_path / "mine.txt").read_text() == "keep"
    assert result.stderr.strip().splitlines()[-1].startswith("l2s: error:")
