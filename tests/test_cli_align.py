"""``l2s transcribe`` and ``l2s align`` with transcript outputs (txt, json, srt, vtt, tsv) on SynthGRID clips."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from l2s.cli import main
from l2s.data.manifest import read_manifest
from l2s.hub import bundled_dir


@pytest.fixture(scope="module")
def clip():
    from tests._melgen_corpus import tiny_corpus

    if bundled_dir("synthgrid-small") is None:
        pytest.skip("this build has no bundled synthgrid-small")
    return read_manifest(tiny_corpus().data / "test-unseen.jsonl")[0]


def _one_line_error(result) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("l2s: error:"), result.stderr


def test_transcribe_prints_text_or_writes_every_format(clip, tmp_path):
    srt = pytest.importorskip("srt")
    base = ["transcribe", str(clip.video), "--sidecar", str(clip.landmarks), "--beam", "0"]
    result = CliRunner().invoke(main, base)
    assert result.exit_code == 0, result.output
    text = result.stdout.strip()
    assert len(result.stdout.splitlines()) == 1 and text
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [*base, "--output-format", "all", "--output-dir", str(out), "--word-timestamps"])
    assert result.exit_code == 0, result.output
    stem = clip.video.stem
    assert sorted(p.name for p in out.iterdir()) == [f"{stem}.{x}" for x in ("json", "srt", "tsv", "txt", "vtt")]
    data = json.loads((out / f"{stem}.json").read_text())
    assert data["text"] == text and data["language"] == "en-us"
    assert [w["word"] for w in data["words"]] == text.split()
    assert data["phonemes"] and {"phoneme", "start", "end"} <= set(data["phonemes"][0])
    assert len(list(srt.parse((out / f"{stem}.srt").read_text()))) >= len(data["words"])
    result = CliRunner().invoke(main, [*base, "--output-format", "srt"])  # one format to stdout
    assert result.exit_code == 0 and list(srt.parse(result.stdout))
    _one_line_error(CliRunner().invoke(main, [*base, "--output-format", "all"]))
    _one_line_error(CliRunner().invoke(main, ["transcribe", str(clip.video), str(clip.video), "--output-dir",
                                              str(out), "--output-format", "json"]))


def test_align_places_a_known_transcript(clip, tmp_path):
    base = ["align", str(clip.video), "--sidecar", str(clip.landmarks)]
    result = CliRunner().invoke(main, [*base, "--text", clip.text])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [w["word"] for w in data["words"]] == clip.text.split()
    starts = [w["start"] for w in data["words"]]
    assert starts == sorted(starts) and all(w["end"] > w["start"] for w in data["words"])
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [*base, "--text", clip.text, "--output-format", "vtt", "--output-dir", str(out)])
    assert result.exit_code == 0 and (out / f"{clip.video.stem}.vtt").read_text().startswith("WEBVTT")
    too_long = " ".join(["seven"] * 60)
    _one_line_error(CliRunner().invoke(main, [*base, "--text", too_long, "--output-dir", str(tmp_path / "bad")]))
    assert not (tmp_path / "bad").exists()
    _one_line_error(CliRunner().invoke(main, [*base, "--text", "bin", "--language", "xx-nowhere"]))
