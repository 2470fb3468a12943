"""``--shard i/n``, torchrun and srun ranks: every input is done by exactly one process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from l2s.bench import write_synthetic_clip
from l2s.cli import main
from l2s.errors import InputError
from l2s.pipeline import build_untrained_pipeline
from l2s.sharding import Shard, env_shard, local_rank, parse_shard, resolve_shard


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_parts_are_disjoint_and_cover_every_item(count):
    items = list(range(11))
    parts = [parse_shard(f"{i}/{count}").take(items) for i in range(1, count + 1)]
    assert sorted(x for part in parts for x in part) == items


def test_a_shard_split_among_ranks_is_the_nested_split():
    items = list(range(23))
    for outer in range(3):
        for inner in range(2):
            combined = Shard(outer, 3).within(Shard(inner, 2))
            assert combined.take(items) == Shard(inner, 2).take(Shard(outer, 3).take(items))


@pytest.mark.parametrize("text", ["0/2", "3/2", "a/b", "1", "1/0", "1/2/3", ""])
def test_bad_shards_are_refused(text):
    with pytest.raises(InputError, match="expected i/n"):
        parse_shard(text)


def test_launchers_environment():
    assert env_shard({}) == Shard()
    assert env_shard({"RANK": "1", "WORLD_SIZE": "4"}) == Shard(1, 4, "torchrun RANK/WORLD_SIZE")
    step = {"SLURM_STEP_ID": "0", "SLURM_PROCID": "2", "SLURM_NTASKS": "8", "SLURM_STEP_NUM_TASKS": "3",
            "SLURM_LOCALID": "1"}
    assert (env_shard(step).index, env_shard(step).count) == (2, 3)
    assert local_rank(step) == 1 and local_rank({"LOCAL_RANK": "3", **step}) == 3
    # a batch script outside srun sees SLURM_NTASKS and SLURM_PROCID=0, but it is one process
    assert env_shard({"SLURM_NTASKS": "4", "SLURM_PROCID": "0"}) == Shard()
    # torchrun inside an srun step: torchrun's ranks win
    assert env_shard({**step, "RANK": "0", "WORLD_SIZE": "2"}).count == 2
    both = resolve_shard("2/3", {"RANK": "1", "WORLD_SIZE": "2"})
    assert (both.index, both.count) == (1 + 3 * 1, 6)
    with pytest.raises(InputError):
        env_shard({"RANK": "2", "WORLD_SIZE": "2"})
    with pytest.raises(InputError, match="SLURM_PROCID"):
        env_shard({"SLURM_STEP_ID": "0", "SLURM_PROCID": "x"})


def test_synthesize_shards_cover_a_folder_exactly_once(tmp_path, monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "SLURM_STEP_ID"):
        monkeypatch.delenv(name, raising=False)
    model = build_untrained_pipeline(tmp_path / "model", "micro")
    clips = tmp_path / "clips"
    names = ["a", "b", "c", "d", "e"]
    for i, name in enumerate(names):
        write_synthetic_clip(clips / f"{name}.mp4", 12, seed=i)
    out = tmp_path / "out"
    made = {}
    for part in ("1/2", "2/2"):
        before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.wav")} if out.is_dir() else {}
        result = CliRunner().invoke(main, ["synthesize", str(clips), "-o", str(out), "--model", str(model),
                                           "--shard", part, "--steps", "2", "--seed", "0", "--device", "cpu"])
        assert result.exit_code == 0, result.output
        after = {p.name: p.stat().st_mtime_ns for p in out.glob("*.wav")}
        assert {k: after[k] for k in before} == before  # the other shard's outputs untouched
        made[part] = sorted(set(after) - set(before))
        assert f"(shard {part})" in result.stderr
    assert made == {"1/2": ["a.wav", "c.wav", "e.wav"], "2/2": ["b.wav", "d.wav"]}
    assert sorted(p.stem for p in out.glob("*.json")) == names
    bad = CliRunner().invoke(main, ["synthesize", str(clips), "-o", str(out), "--shard", "3/2"])
    assert bad.exit_code == 2 and "--shard 3/2" in bad.stderr


def test_prepare_shards_then_one_unsharded_run_writes_the_manifests(tmp_path, monkeypatch):
    import l2s.corpora.prepare_corpus as prep
    from l2s.corpora.layout import CorpusLayout
    from l2s.data.manifest import Utterance, read_manifest

    ids = [f"s1_{k:02d}" for k in range(7)]
    layout = CorpusLayout(name="toy", root=tmp_path, splits={
        "train": [Utterance(id=i, text="bin blue", video=tmp_path / f"{i}.mp4") for i in ids[:5]],
        "test": [Utterance(id=i, text="lay red", video=tmp_path / f"{i}.mp4") for i in ids[5:]]})
    prepared = []

    def fake_prepare_clip(utt, files):  # the files a clip leaves, without decoding any video
        if utt.id == "s1_03":
            raise InputError("no face in any frame")
        prepared.append(utt.id)
        for path, array in ((files.roi, np.zeros((5, 96, 96), np.uint8)), (files.mel, np.zeros((20, 80))),
                            (files.f0, np.zeros(20))):
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, array)
        files.wav.parent.mkdir(parents=True, exist_ok=True)
        files.wav.write_bytes(b"RIFF")
        return 5

    monkeypatch.setattr(prep, "prepare_clip", fake_prepare_clip)
    monkeypatch.setattr(prep, "read_corpus", lambda name, root: layout)
    monkeypatch.setattr(prep, "_recorded_f0_tracker", lambda out_dir: prep.F0_TRACKER)
    out = tmp_path / "prepared"
    by_shard = {}
    for part in ("1/2", "2/2"):
        start = len(prepared)
        result = CliRunner().invoke(main, ["prepare", "synthgrid", str(tmp_path), str(out), "--shard", part])
        assert result.exit_code == 0, result.output
        assert f"shard {part}" in result.output and "manifests: none" in result.output
        by_shard[part] = prepared[start:]
        i, n = part.split("/")
        assert (out / f"rejects.shard-{i}-of-{n}.jsonl").is_file()
    assert sorted(p.name for p in out.glob("*.jsonl")) == ["rejects.shard-1-of-2.jsonl", "rejects.shard-2-of-2.jsonl"]
    assert not (out / "prepare.json").exists()  # no manifests, no record: that is the unsharded run's
    assert set(by_shard["1/2"]).isdisjoint(by_shard["2/2"])
    assert sorted(by_shard["1/2"] + by_shard["2/2"]) == [i for i in ids if i != "s1_03"]
    rejects = [json.loads(line) for line in (out / "rejects.shard-2-of-2.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rejects] == ["s1_03"]  # sorted ids: s1_03 is the 4th, in part 2
    start = len(prepared)
    result = CliRunner().invoke(main, ["prepare", "synthgrid", str(tmp_path), str(out)])
    assert result.exit_code == 0, result.output
    assert prepared[start:] == [] and "0 prepared, 6 already done, 1 rejected" in result.output
    assert [u.id for u in read_manifest(out / "train.jsonl")] == ["s1_00", "s1_01", "s1_02", "s1_04"]
    assert [u.id for u in read_manifest(out / "test.jsonl")] == ["s1_05", "s1_06"]
    assert Path(out / "prepare.json").is_file()
