"""SynthGRID: clips on disk, their alignment, the audio-visual link, reproducibility, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("piper")
pytest.importorskip("pyworld")

from l2s.cli import main  # noqa: E402
from l2s.config import SAMPLES_PER_VIDEO_FRAME, SAMPLE_RATE  # noqa: E402
from l2s.corpora.synthgrid.generate import (CorpusOptions, make_clips, plan_corpus, read_manifest,  # noqa: E402
                                            write_corpus)
from l2s.io.audio import read_audio  # noqa: E402

KEYS = {"face_box": (4,), "mouth_corners": (2, 2), "outer_lip": (12, 2), "inner_lip": (12, 2), "eye_corners": (4, 2)}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthgrid")
    return root, make_clips(root, n=4, seed=0, speakers=2)


def _load(root, row):
    wav = read_audio(root / row["wav"]).astype(np.float64)
    align = json.loads((root / row["align"]).read_text())
    marks = dict(np.load(root / row["landmarks"]))
    return wav, align, marks


def test_clip_files_and_shapes(clips):
    from l2s.io.video import read_video

    root, rows = clips
    assert len(rows) == 4 and len({r["speaker"] for r in rows}) == 2
    for row in rows:
        wav, align, marks = _load(root, row)
        t = row["num_frames"]
        assert len(wav) == t * SAMPLES_PER_VIDEO_FRAME and row["duration"] == pytest.approx(len(wav) / SAMPLE_RATE)
        assert (root / row["txt"]).read_text().strip() == row["text"] == align["text"]
        assert len(row["text"].split()) == 6 and [w["word"] for w in align["words"]] == row["text"].split()
        video = read_video(root / row["video"], with_audio=False)
        assert video.frames.shape == (t, 160, 160, 3) and video.audio is None
        for key, shape in KEYS.items():
            assert marks[key].shape == (t, *shape) and marks[key].dtype == np.float32
        box = marks["face_box"]
        lips = marks["outer_lip"]
        assert (lips[..., 0] > box[:, None, 0]).all() and (lips[..., 1] < box[:, None, 3]).all()


def test_word_intervals_contain_the_speech_energy(clips):
    root, rows = clips
    for row in rows:
        wav, align, _ = _load(root, row)
        inside = np.zeros(len(wav), bool)
        for w in align["words"]:
            inside[int(w["start"] * SAMPLE_RATE):int(np.ceil(w["end"] * SAMPLE_RATE))] = True
        energy = wav ** 2
        assert energy[inside].sum() / energy.sum() > 0.99
        # and the words are in order, inside the clip, with phonemes inside them
        starts = [w["start"] for w in align["words"]]
        assert starts == sorted(starts) and align["words"][-1]["end"] <= row["duration"]
        assert align["words"][0]["start"] <= align["phonemes"][0]["start"]


def test_mouth_opening_follows_the_audio_envelope(clips):
    """Pearson r between inner-lip opening and the dB envelope over voiced frames, mean over clips >= 0.5."""
    import pyworld

    root, rows = clips
    rs = []
    for row in rows:
        wav, _, marks = _load(root, row)
        t = row["num_frames"]
        opening = marks["inner_lip"][:, 9, 1] - marks["inner_lip"][:, 3, 1]
        env = np.sqrt((wav.reshape(t * 4, -1) ** 2).mean(1)).reshape(t, 4).mean(1)
        f0, _ = pyworld.dio(wav, SAMPLE_RATE, frame_period=1000 * 4 / 100 / 4)
        voiced = (np.pad(f0, (0, 4 * t))[:4 * t].reshape(t, 4) > 0).sum(1) >= 2
        assert voiced.sum() > 10
        rs.append(np.corrcoef(opening[voiced], 20 * np.log10(env[voiced] + 1e-4))[0, 1])
    assert np.mean(rs) >= 0.5, rs


def test_bilabials_close_the_lips(clips):
    root, rows = clips
    n = 0
    for row in rows:
        _, align, marks = _load(root, row)
        opening = marks["inner_lip"][:, 9, 1] - marks["inner_lip"][:, 3, 1]
        assert opening.max() > 4.0  # the mouth does open
        for p in align["phonemes"]:
            if p["viseme"] == "bilabial":
                mid = int((p["start"] + p["end"]) / 2 * align["fps"])
                assert opening[max(0, mid - 1):mid + 2].min() < 0.1, p
                n += 1
    assert n >= 2


def test_same_seed_same_bytes_and_rerun_skips(clips, tmp_path):
    from l2s.io.video import read_video

    root, rows = clips
    again = make_clips(tmp_path, n=1, seed=0, speakers=2)[0]
    for key in ("wav", "txt", "align", "landmarks"):
        assert (tmp_path / again[key]).read_bytes() == (root / rows[0][key]).read_bytes(), key
    # x264's SIMD code occasionally encodes identical frames a little differently (see encode.py)
    pairs = ((root, rows[0]), (tmp_path, again))
    a, b = (read_video(r / x["video"], with_audio=False).frames.astype(float) for r, x in pairs)
    assert np.abs(a - b).mean() < 1.0
    opts = CorpusOptions(speakers=2, unseen_speakers=1, clips_per_speaker=1, seed=0)
    first = write_corpus(tmp_path / "c", opts)
    second = write_corpus(tmp_path / "c", opts)
    assert (first.made, second.made, second.skipped) == (2, 0, 2)
    assert read_manifest(tmp_path / "c" / "test-unseen.jsonl")[0]["speaker"] == "s02"


def test_splits_hold_seen_and_unseen_speakers_and_disjoint_sentences():
    speakers, specs = plan_corpus(CorpusOptions(speakers=5, unseen_speakers=2, clips_per_speaker=20, seed=3))
    by = {s: [c for c in specs if c.split == s] for s in ("train", "valid", "test-seen", "test-unseen")}
    assert {c.speaker.id for c in by["test-unseen"]} == {"s04", "s05"}
    assert {c.speaker.id for c in by["train"]} == {"s01", "s02", "s03"} == {c.speaker.id for c in by["test-seen"]}
    train = {c.words for c in by["train"]}
    assert not train & {c.words for c in by["test-seen"] + by["valid"] + by["test-unseen"]}
    assert len({(c.speaker.id, c.utt_id) for c in specs}) == len(specs) == 100


def test_cli_synthgrid_and_bad_input(tmp_path):
    runner = CliRunner()
    out = tmp_path / "corpus"
    res = runner.invoke(main, ["corpus", "synthgrid", str(out), "--speakers", "2", "--unseen-speakers", "1",
                               "--clips-per-speaker", "1", "--size", "96", "--preview", str(tmp_path / "p.png")])
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "corpus.json").read_text())
    assert meta["splits"] == {"train": 1, "valid": 0, "test-seen": 0, "test-unseen": 1}
    assert [s["id"] for s in meta["speakers"]] == ["s01", "s02"] and meta["unseen_speakers"] == ["s02"]
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    bad = runner.invoke(main, ["corpus", "synthgrid", str(tmp_path / "bad"), "--speakers", "2",
                               "--unseen-speakers", "2"])
    assert bad.exit_code == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()
