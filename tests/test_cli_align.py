"""``l2s transcribe`` and ``l2s align`` with transcript outputs (txt, json, srt, vtt, tsv) on SynthGRID clips,
under the CLI's output rules (never over an input, checked before the model loads, one unit per video)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from l2s.cli import main
from l2s.data.manifest import read_manifest
from l2s.hub import bundled_dir
from tests._faults import read_only_folder


@pytest.fixture(scope="module")
def clip():
    from tests._tiny_corpus import tiny_corpus

    if bundled_dir("synthgrid-small") is None:
        pytest.skip("this build has no bundled synthgrid-small")
    return read_manifest(tiny_corpus().data / "test-unseen.jsonl")[0]


def _one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("l2s: error:"), result.stderr
    return lines[0]


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


def test_stdin_is_read_and_printed(clip):
    data = clip.video.read_bytes()
    side = ["--sidecar", str(clip.landmarks)]
    filed = CliRunner().invoke(main, ["transcribe", str(clip.video), *side, "--beam", "0", "--output-format", "srt"])
    piped = CliRunner().invoke(main, ["transcribe", "-", *side, "--beam", "0", "--output-format", "srt"], input=data)
    assert piped.exit_code == 0 and piped.stdout == filed.stdout and piped.stdout.strip()
    aligned = CliRunner().invoke(main, ["align", "-", *side, "--text", clip.text], input=data)
    assert aligned.exit_code == 0, aligned.output
    assert [w["word"] for w in json.loads(aligned.stdout)["words"]] == clip.text.split()


def test_output_dir_is_checked_before_the_model_loads(clip, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        pytest.fail("the model was loaded before the outputs were checked")

    monkeypatch.setattr("l2s.models.vsr.load_vsr", refuse)
    monkeypatch.setattr("l2s.align.Aligner.from_pretrained", refuse)
    folder = tmp_path / "in"
    folder.mkdir()
    video = folder / "lm.mp4"
    video.write_bytes(clip.video.read_bytes())
    lm = folder / "lm.json"
    lm.write_text("{}")
    before = hashlib.sha256(lm.read_bytes()).hexdigest()
    # the JSON transcript of lm.mp4 would replace the language model it is read with
    line = _one_line_error(CliRunner().invoke(main, ["transcribe", str(video), "--lm", str(lm), "--output-dir",
                                                     str(folder), "--output-format", "json"]))
    assert f"{lm}: is the input {lm}; l2s never writes over its inputs" in line
    assert hashlib.sha256(lm.read_bytes()).hexdigest() == before
    named = folder / "talk.txt"  # a video whose name ends like a transcript
    named.write_bytes(clip.video.read_bytes())
    for command in (["transcribe", str(named)], ["align", str(named), "--text", "bin"]):
        line = _one_line_error(CliRunner().invoke(main, [*command, "--output-dir", str(folder), "--output-format",
                                                         "txt"]))
        assert f"{named}: is the input" in line
    with read_only_folder(tmp_path / "ro") as ro:
        line = _one_line_error(CliRunner().invoke(main, ["transcribe", str(clip.video), "--output-dir", str(ro),
                                                         "--output-format", "srt"]))
        assert f"{ro / clip.video.stem}.srt: cannot write the output in {ro}" in line
    for bad in (["transcribe", "-", "--output-dir", str(tmp_path / "d")],
                ["transcribe", "-", str(clip.video)],
                ["align", "-", "--text", "bin", "--output-dir", str(tmp_path / "d")],
                ["transcribe", str(clip.video), "--output-dir", "-"],
                ["transcribe", str(clip.video), "--output-dir", str(lm)]):
        _one_line_error(CliRunner().invoke(main, bad, input=b"x"))
    assert not (tmp_path / "d").exists() and not Path("-").exists()


def test_a_full_disk_leaves_no_transcript(clip, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real = Path.write_text

    def write_text(self, data, *args, **kwargs):
        if self.name.endswith(".tmp.vtt"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    result = CliRunner().invoke(main, ["transcribe", str(clip.video), "--sidecar", str(clip.landmarks), "--beam", "0",
                                       "--output-format", "all", "--output-dir", str(out)])
    line = _one_line_error(result)
    assert f"{out / clip.video.stem}.vtt: cannot write the output: No space left on device" in line
    assert list(out.iterdir()) == []  # the json, srt, tsv and txt go with it: one unit per video
