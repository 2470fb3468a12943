"""Corpus readers on hand-written layouts (no media is decoded): text formats, split rules, layout errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from l2s.corpora import grid, layout, lrs, lrw
from l2s.errors import InputError


def _touch(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_grid_align_units_and_silences(tmp_path):
    align = _touch(tmp_path / "a.align", "0 23750 sil\n23750 29500 bin\n29500 34000 blue\n34000 35500 sp\n"
                                         "35500 41000 at\n41000 47250 f\n47250 53000 two\n53000 61000 now\n"
                                         "61000 74500 sil\n")
    words = grid.read_align(align)
    assert [w for w, _, _ in words] == ["bin", "blue", "at", "f", "two", "now"]
    assert words[0][1:] == pytest.approx((0.95, 1.18))  # 23750 / 1000 frames at 25 fps
    assert words[-1][2] == pytest.approx(2.44)
    with pytest.raises(InputError, match="start end word"):
        grid.read_align(_touch(tmp_path / "b.align", "0 sil\n"))


def test_grid_layout_splits(tmp_path):
    for spk in ("s1", "s2", "s4", "s20", "s22", "s29"):
        for k in range(12):
            code = f"bba{chr(97 + k)}2n"
            _touch(tmp_path / spk / f"{code}.mpg")
            _touch(tmp_path / "align" / spk / f"{code}.align", "0 1000 sil\n1000 9000 bin\n9000 20000 blue\n")
    _touch(tmp_path / "s4" / "noalign.mpg")  # no transcript: skipped
    read = grid.read_grid(tmp_path)
    unseen = read.splits["test-unseen"]
    assert {u.speaker for u in unseen} == {"s1", "s2", "s20", "s22"} and len(unseen) == 48
    seen = [u for s in ("train", "valid", "test-seen") for u in read.splits[s]]
    assert {u.speaker for u in seen} == {"s4", "s29"} and len(seen) == 24
    assert len(read.splits["train"]) > len(read.splits["valid"])  # ~90/5/5
    assert all(u.text == "bin blue" and u.align is not None for u in seen)
    four = [u for s in ("train", "valid", "test-seen") for u in read.splits[f"4speakers/{s}"]]
    assert {u.speaker for u in four} == {"s1", "s2", "s4", "s29"} and len(four) == 48
    assert {u.id for u in read.splits["4speakers/test-seen"] if u.speaker == "s4"} == \
        {u.id for u in read.splits["test-seen"] if u.speaker == "s4"}
    assert {u.speaker for u in read.splits["4speakers/test-unseen"]} == {"s20", "s22"}
    again = grid.read_grid(tmp_path)  # the split is a stable hash, not a random draw
    assert [u.id for u in again.splits["valid"]] == [u.id for u in read.splits["valid"]]
    with pytest.raises(InputError, match="not the GRID layout"):
        grid.read_grid(_touch(tmp_path / "other" / "x.txt").parent)


def test_lrs_text_header_and_word_table(tmp_path):
    txt = _touch(tmp_path / "00001.txt", "Text:  WHEN YOU {LAUGH} ABOUT IT\nConf:  3\n\n"
                                         "WORD START END ASDSCORE\nWHEN 0.10 0.30 1.2\nYOU 0.30 0.41 2.0\n")
    header = layout.read_text_header(txt)
    assert header["Text"] == "WHEN YOU {LAUGH} ABOUT IT" and header["Conf"] == "3"
    assert layout.normalise_text(header["Text"]) == "when you laugh about it"
    assert layout.read_word_table(txt) == [("WHEN", 0.10, 0.30), ("YOU", 0.30, 0.41)]
    with pytest.raises(InputError, match="Text:"):
        layout.read_text_header(_touch(tmp_path / "bad.txt", "hello\n"))


def _lrs_clip(base: Path, key: str, text: str = "HELLO WORLD") -> None:
    _touch(base / f"{key}.mp4")
    _touch(base / f"{key}.txt", f"Text:  {text}\nConf:  3\n")


def test_lrs2_lists_flags_and_missing_files(tmp_path):
    base = tmp_path / "mvlrs_v1"
    _lrs_clip(base / "main", "111/00001")
    _lrs_clip(base / "main", "222/00001")
    _lrs_clip(base / "pretrain", "333/00001")
    _touch(tmp_path / "train.txt", "111/00001\n")
    _touch(tmp_path / "val.txt", "")
    _touch(tmp_path / "test.txt", "222/00001 NF\n444/00002\n")  # 444 is listed but missing
    _touch(tmp_path / "pretrain.txt", "333/00001\n")
    read = lrs.read_lrs2(tmp_path)
    assert [u.id for u in read.splits["test"]] == ["main/222/00001", "main/444/00002"]
    assert read.splits["test"][0].extra["flags"] == ["NF"] and read.splits["test"][0].text == "hello world"
    assert read.splits["test"][1].text == ""  # no transcript: rejected at preparation, not dropped here
    assert read.lists["test"] == ["222/00001 NF", "444/00002"]
    assert [u.id for u in read.splits["pretrain"]] == ["pretrain/333/00001"]
    assert [u.id for u in read.splits["train_pretrain"]] == ["pretrain/333/00001", "main/111/00001"]
    (tmp_path / "val.txt").unlink()
    with pytest.raises(InputError, match="val.txt"):
        lrs.read_lrs2(tmp_path)


def test_lrs3_test_is_the_folder_and_valid_speakers_are_held_out(tmp_path):
    for k in range(300):
        _lrs_clip(tmp_path / "trainval", f"spk{k:08d}/50001")
        _lrs_clip(tmp_path / "pretrain", f"spk{k:08d}/00001")
    for k in range(5):
        _lrs_clip(tmp_path / "test", f"tst{k:08d}/00001")
    read = lrs.read_lrs3(tmp_path)
    assert len(read.splits["test"]) == 5 and read.lists["test"][0] == "tst00000000/00001"
    valid_spk = {u.speaker for u in read.splits["valid"]}
    assert valid_spk and not valid_spk & {u.speaker for u in read.splits["train"]}
    assert len(read.splits["train"]) == 300 - len(valid_spk)
    assert len(read.splits["train_pretrain"]) == 600 - 2 * len(valid_spk)
    assert not valid_spk & {u.speaker for u in read.splits["train_pretrain"]}
    with pytest.raises(InputError, match="not the LRS3 layout"):
        lrs.read_lrs3(_touch(tmp_path / "x" / "y.txt").parent)


def test_lrw_words_and_durations(tmp_path):
    for folder in ("train", "val", "test"):
        _touch(tmp_path / "ABOUT" / folder / "ABOUT_00001.mp4")
        _touch(tmp_path / "ABOUT" / folder / "ABOUT_00001.txt", "Text: ABOUT\nConf: 1\n\nDuration: 0.53 seconds\n")
    read = lrw.read_lrw(tmp_path)
    assert {k: len(v) for k, v in read.splits.items()} == {"train": 1, "valid": 1, "test": 1}
    u = read.splits["valid"][0]
    assert u.id == "valid/ABOUT_00001" and u.text == "about" and u.extra["word_duration"] == 0.53
    assert read.lists["val"] == ["ABOUT_00001"]
    with pytest.raises(InputError, match="not the LRW layout"):
        lrw.read_lrw(tmp_path / "ABOUT" / "train")


def test_segment_words_respects_the_limit():
    words = [("a", 0.0, 0.5), ("b", 0.6, 1.0), ("c", 1.1, 2.6), ("d", 2.7, 2.9), ("long", 3.0, 6.0)]
    runs = layout.segment_words(words, max_seconds=2.0)
    assert runs == [(0.0, 1.0, ["a", "b"]), (1.1, 2.9, ["c", "d"]), (3.0, 6.0, ["long"])]


def test_lrs3_long_pretrain_clip_is_segmented(tmp_path):
    table = "".join(f"W{k} {k * 2.0:.2f} {k * 2.0 + 1.5:.2f} 1.0\n" for k in range(30))  # 59.5 s of words
    key = "spk00000001/00001"
    _touch(tmp_path / "pretrain" / f"{key}.mp4")
    _touch(tmp_path / "pretrain" / f"{key}.txt", "Text:  " + " ".join(f"W{k}" for k in range(30)) +
           "\nConf:  3\n\nWORD START END ASDSCORE\n" + table)
    read = lrs.read_lrs3(tmp_path)
    segs = read.splits["pretrain"]
    assert len(segs) == 3 and all(u.extra["segment"][1] - u.extra["segment"][0] <= 24 for u in segs)
    assert segs[0].id == f"pretrain/{key}_00" and segs[0].text.split()[0] == "w0"
    assert read.lists["pretrain"] == [key]  # the official list keeps the clip key
    assert len(lrs.read_lrs3(tmp_path, max_seconds=None).splits["pretrain"]) == 1


def test_a_crashing_worker_rejects_its_clip_and_the_run_goes_on(tmp_path, monkeypatch):
    """A native crash (the worker process dies) must not stop a --jobs run: the culprit is rejected."""
    import os

    from l2s.corpora import prepare_corpus as pc
    from l2s.data.manifest import Utterance

    def fake_prepare(utt, files):
        if utt.id == "c/3":
            os._exit(3)  # what a segfault in a decoder looks like to the pool
        return 5

    monkeypatch.setattr(pc, "prepare_clip", fake_prepare)  # inherited by the forked workers
    utts = [Utterance(id=f"c/{k}", text="x", video=tmp_path / f"{k}.mp4") for k in range(8)]
    read = layout.CorpusLayout(name="lrw", root=tmp_path, splits={"train": utts})
    result = pc.prepare_corpus(read, tmp_path / "out", jobs=2)
    assert result.rejected == 1 and result.done == 7 and result.splits == {"train": 7}
    rejects = (tmp_path / "out" / "rejects.jsonl").read_text()
    assert '"c/3"' in rejects and "worker process died" in rejects
