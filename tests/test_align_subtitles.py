"""Transcript writers: srt and vtt parse with standard subtitle parsers, tsv and txt as Whisper writes them."""

from __future__ import annotations

import io

import pytest

from l2s.align.subtitles import expand_formats, render, timestamp, write_outputs
from l2s.errors import InputError
from tests.test_align_timeline import _alignment


def test_srt_parses_with_the_srt_library():
    srt = pytest.importorskip("srt")
    cues = list(srt.parse(render("srt", _alignment())))
    assert [c.content for c in cues] == ["bin blue", "now"]
    assert cues[0].start.total_seconds() == 0.2 and cues[1].end.total_seconds() == 1.8
    words = list(srt.parse(render("srt", _alignment(), word_timestamps=True)))
    assert [c.content for c in words][:3] == ["<u>bin</u> blue", "bin blue", "bin <u>blue</u>"]
    assert words[1].start.total_seconds() == 0.36 and words[1].end.total_seconds() == 0.4  # the pause


def test_vtt_parses_with_webvtt():
    webvtt = pytest.importorskip("webvtt")
    vtt = webvtt.from_buffer(io.StringIO(render("vtt", _alignment())))
    assert [(c.start, c.end, c.text) for c in vtt] == [("00:00:00.200", "00:00:00.680", "bin blue"),
                                                       ("00:00:01.400", "00:00:01.800", "now")]
    words = webvtt.from_buffer(io.StringIO(render("vtt", _alignment(), word_timestamps=True)))
    assert len(words.captions) == 4 and words.captions[-1].raw_text == "<u>now</u>"


def test_tsv_txt_json_and_files(tmp_path):
    assert render("tsv", _alignment()).splitlines() == ["start\tend\ttext", "200\t680\tbin blue", "1400\t1800\tnow"]
    assert render("tsv", _alignment(), word_timestamps=True).splitlines()[1] == "200\t360\tbin"
    assert render("txt", _alignment()) == "bin blue\nnow\n" and render("txt", None, "hello") == "hello\n"
    assert timestamp(3725.5, ",") == "01:02:05,500"
    paths = write_outputs(tmp_path / "out", "clip", expand_formats("all"), _alignment())
    assert sorted(p.name for p in paths) == ["clip.json", "clip.srt", "clip.tsv", "clip.txt", "clip.vtt"]
    with pytest.raises(InputError):
        expand_formats("docx")
