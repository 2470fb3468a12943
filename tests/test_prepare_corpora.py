"""``l2s prepare grid|lrs2|lrs3|lrw`` on miniature replicas of the official layouts (built from SynthGRID clips)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from l2s.cli import main
from l2s.corpora.prepare_corpus import prepare_corpus, read_corpus
from l2s.data.dataset import ManifestDataset
from l2s.data.manifest import read_manifest
from l2s.features.pitch import F0_TRACKER
from tests import replicas

BUILDERS = {"grid": replicas.build_grid, "lrs2": replicas.build_lrs2, "lrs3": replicas.build_lrs3,
            "lrw": replicas.build_lrw}
FIELDS = ("id", "text", "roi", "wav", "mel", "f0")


@pytest.fixture(scope="module")
def source_rows(tmp_path_factory):
    return replicas.make_source_clips(tmp_path_factory.mktemp("synthgrid"), n=6, seed=3)


@pytest.fixture(scope="module")
def prepared(source_rows, tmp_path_factory):
    """Each replica built and prepared once: name -> (root, out, build info, result)."""
    done = {}
    for name, build in BUILDERS.items():
        root = tmp_path_factory.mktemp(f"{name}_root")
        info = build(source_rows, root)
        out = tmp_path_factory.mktemp(f"{name}_prepared")
        jobs = 2 if name == "lrw" else 1  # one corpus through the process pool
        done[name] = (root, out, info, prepare_corpus(read_corpus(name, root), out, jobs=jobs))
    return done


def _rejects(out: Path):
    return [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("name", list(BUILDERS))
def test_replica_prepares_into_loadable_manifests(prepared, source_rows, name):
    root, out, info, result = prepared[name]
    rejects = _rejects(out)
    assert [r["id"] for r in rejects] == [info["broken"]]
    assert rejects[0]["reason"].strip()
    assert result.rejected == 1 and result.done == 6 and result.skipped == 0
    texts = {r["text"] for r in source_rows}
    seen = set()
    for split, count in result.splits.items():
        utts = read_manifest(out / f"{split}.jsonl")
        assert len(utts) == count
        for k, u in enumerate(utts):
            assert u.text == u.text.lower() and u.text
            assert u.extra["text_orig"].lower() == u.text
            if name == "lrw":
                assert len(u.text.split()) == 1 and any(t.startswith(u.text) for t in texts)
            else:
                assert u.text in texts
            seen.add(u.id)
        if not utts:
            continue
        ds = ManifestDataset(utts, fields=FIELDS)
        item = ds[0]
        t = item["roi"].shape[0]
        assert item["roi"].shape == (t, 96, 96) and item["roi"].dtype == np.uint8
        assert item["wav"].shape == (640 * t,) and np.abs(item["wav"]).max() > 0.01
        assert item["mel"].shape == (4 * t, 80) and item["f0"].shape == (4 * t,)
        # the stored features are the ones the dataset computes from the stored wav
        np.testing.assert_allclose(np.load(utts[0].mel), item["mel"], atol=1e-4)
        np.testing.assert_allclose(np.load(utts[0].f0), item["f0"], atol=1e-3)
        # speech was found voiced (SynthGRID clips are 35-60 % pauses and unvoiced sounds; Piper ones ~30 % voiced)
        assert (item["f0"] > 0).mean() > 0.05
    assert info["broken"] not in seen and len(seen) == 6


def test_rerun_skips_finished_clips(prepared):
    root, out, info, _ = prepared["lrw"]
    stamp = {p: p.stat().st_mtime_ns for p in (out / "roi").iterdir()}
    result = CliRunner().invoke(main, ["prepare", "lrw", str(root), str(out), "--jobs", "2"])
    assert result.exit_code == 0, result.output
    assert "0 prepared, 6 already done, 1 rejected" in result.stdout
    assert {p: p.stat().st_mtime_ns for p in (out / "roi").iterdir()} == stamp
    assert [r["id"] for r in _rejects(out)] == [info["broken"]]


def test_f0_targets_of_another_tracker_are_recomputed(prepared, tmp_path):
    root, out, _, _ = prepared["lrs2"]
    copy = tmp_path / "prepared"
    shutil.copytree(out, copy)
    assert json.loads((copy / "prepare.json").read_text())["f0_tracker"] == F0_TRACKER
    f0_files = sorted((copy / "f0").iterdir())
    expected = {p.name: np.load(p) for p in f0_files}
    for p in f0_files:
        np.save(p, np.zeros_like(expected[p.name]))
    roi_stamps = {p: p.stat().st_mtime_ns for p in (copy / "roi").iterdir()}
    summary = json.loads((copy / "prepare.json").read_text())
    summary["f0_tracker"] = "an older tracker"
    (copy / "prepare.json").write_text(json.dumps(summary))

    result = prepare_corpus(read_corpus("lrs2", root), copy)
    assert result.done == 0 and result.skipped == 6
    for p in f0_files:
        np.testing.assert_array_equal(np.load(p), expected[p.name])
    assert {p: p.stat().st_mtime_ns for p in (copy / "roi").iterdir()} == roi_stamps
    assert json.loads((copy / "prepare.json").read_text())["f0_tracker"] == F0_TRACKER
    # with the current tracker recorded, a rerun leaves the F0 files alone
    f0_stamps = {p: p.stat().st_mtime_ns for p in f0_files}
    prepare_corpus(read_corpus("lrs2", root), copy)
    assert {p: p.stat().st_mtime_ns for p in f0_files} == f0_stamps


def test_grid_splits_align_and_studio_audio(prepared):
    root, out, info, result = prepared["grid"]
    unseen = read_manifest(out / "test-unseen.jsonl")
    assert sorted(u.id for u in unseen) == sorted(info["unseen"]) and all(u.speaker == "s1" for u in unseen)
    seen = [u for s in ("train", "valid", "test-seen") for u in read_manifest(out / f"{s}.jsonl")]
    assert seen and all(u.speaker == "s3" for u in seen)
    assert (out / "lists" / "test-unseen.txt").read_text().split() == [u.id for u in unseen]
    four = [u for s in ("train", "valid", "test-seen") for u in read_manifest(out / "4speakers" / f"{s}.jsonl")]
    assert sorted(u.id for u in four) == sorted(info["unseen"])  # s1 is one of the four speakers
    assert all(u.roi.is_file() for u in four)
    studio = next(u for u in seen if u.id == info["audio_25k"])
    assert studio.extra["audio_source"].endswith(".wav")
    assert "truncated" in _rejects(out)[0]["reason"]


def test_lrs_lists_and_splits(prepared):
    _, out2, info2, res2 = prepared["lrs2"]
    assert res2.splits == {"pretrain": 1, "train": 2, "valid": 1, "test": 2, "train_pretrain": 3}
    assert (out2 / "lists" / "test.txt").read_text().splitlines() == info2["lists"]["test"]
    flagged = [u for u in read_manifest(out2 / "test.jsonl") if u.extra.get("flags")]
    assert len(flagged) == 1 and flagged[0].extra["flags"] == ["NF"]
    _, out3, info3, res3 = prepared["lrs3"]
    assert res3.splits["test"] == 2 and res3.splits["pretrain"] == 2 and res3.splits["trainval"] == 2
    assert res3.splits["train"] + res3.splits["valid"] == 2 and res3.splits["train_pretrain"] >= 2
    # the official test list is every clip of test/, the broken one included (it is only missing from the manifest)
    expected = sorted(i.split("/", 1)[1] for i in info3["ids"][4:] + [info3["broken"]])
    assert (out3 / "lists" / "test.txt").read_text().split() == expected
    assert all(u.landmarks is None for u in read_manifest(out3 / "train.jsonl"))  # ROI from face detection


def test_cli_bad_root_is_one_line_exit_2(tmp_path):
    for corpus in ("grid", "lrs2", "lrs3", "lrw"):
        result = CliRunner().invoke(main, ["prepare", corpus, str(tmp_path), str(tmp_path / "out")])
        assert result.exit_code == 2, (corpus, result.output)
        assert len(result.stderr.strip().splitlines()) == 1 and f"not the {corpus.upper()}" in result.stderr
        assert not (tmp_path / "out").exists()
    missing = CliRunner().invoke(main, ["prepare", "lrs3", str(tmp_path / "nope"), str(tmp_path / "out")])
    assert missing.exit_code == 2 and "no such folder" in missing.stderr


@pytest.mark.parametrize("name", ["grid", "lrs2", "lrs3"])
def test_recipe_manifests_are_what_prepare_writes(prepared, name):
    """Every manifest a recipe stage reads is one that ``l2s prepare <corpus>`` writes."""
    from l2s.train.common import model_config
    from l2s.train.runner import load_hparams

    _, out, _, _ = prepared[name]
    recipes = Path(__file__).resolve().parents[1] / "recipes" / name / "hparams"
    folders = [out, out / "4speakers"] if name == "grid" else [out]
    for stage, folder in [(s, f) for s in ("vsr", "prior") for f in folders]:
        overrides = f"data_folder: {folder}\noutput_folder: {out}/exp\n"
        if stage == "prior":
            overrides += "vsr_model: /nowhere\n"
        elif name != "grid":
            overrides += "tokenizer_dir: /nowhere\n"
        hparams = load_hparams(str(recipes / f"{stage}.yaml"), overrides)
        assert hparams["stage"] == stage
        manifests = [hparams["train_manifest"], hparams["valid_manifest"], *hparams["test_manifests"].values()]
        for manifest in manifests:
            assert Path(manifest).is_file(), (stage, manifest)
        if stage == "vsr":
            _, config = model_config(hparams, "vsr")
            assert config.d_model == 768  # the base size
            assert config.tokenizer == ("char" if name == "grid" else "sentencepiece")


def test_long_pretrain_clips_are_cut_into_segments(prepared, tmp_path):
    """LRS pretrain clips longer than the limit become word-aligned segments (Auto-AVSR's seg24s, here 1.2 s)."""
    from l2s.corpora.layout import CorpusLayout
    from l2s.corpora.lrs import read_lrs2

    root, _, _, _ = prepared["lrs2"]
    full = read_lrs2(root)
    assert len(full.splits["pretrain"]) == 1 and "segment" not in full.splits["pretrain"][0].extra
    segments = read_lrs2(root, max_seconds=1.2).splits["pretrain"]
    assert len(segments) >= 2
    assert [u.id for u in segments] == [f"{full.splits['pretrain'][0].id}_{k:02d}" for k in range(len(segments))]
    words = " ".join(u.text for u in segments)
    assert words == full.splits["pretrain"][0].text  # every word lands in exactly one segment
    layout = CorpusLayout(name="lrs2", root=root, splits={"pretrain": segments})
    result = prepare_corpus(layout, tmp_path)
    assert result.done == len(segments) and result.rejected == 0
    for u in read_manifest(tmp_path / "pretrain.jsonl"):
        start, end = u.extra["segment"]
        assert end - start <= 1.2
        assert abs(u.num_frames - (end - start) * 25) <= 2
        assert len(np.load(u.roi)) == u.num_frames
