import json

import numpy as np
import pytest
import torch

from l2s.data.batching import BucketBatchSampler
from l2s.data.collate import collate, pad_stack
from l2s.data.dataset import ManifestDataset, fit_length
from l2s.data.manifest import Utterance, read_manifest, write_manifest
from l2s.errors import InputError


def test_manifest_roundtrip_relative_paths(tmp_path):
    (tmp_path / "a.npy").write_bytes(b"")
    utts = [Utterance(id="a", text="bin blue", speaker="s1", duration=1.2, num_frames=30, roi=tmp_path / "a.npy",
                      extra={"split": "train"})]
    write_manifest(tmp_path / "m.jsonl", utts)
    rec = json.loads((tmp_path / "m.jsonl").read_text())
    assert rec["roi"] == "a.npy" and rec["split"] == "train"
    back = read_manifest(tmp_path / "m.jsonl")
    assert back[0].roi == (tmp_path / "a.npy").resolve()
    assert back[0].num_frames == 30 and back[0].extra == {"split": "train"}


def test_manifest_errors(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"id": "a"}\n{"id": "a"}\n')
    with pytest.raises(InputError, match="duplicate ids: a"):
        read_manifest(p)
    p.write_text("{not json\n")
    with pytest.raises(InputError, match="not JSON"):
        read_manifest(p)
    with pytest.raises(InputError, match="no such manifest"):
        read_manifest(tmp_path / "missing.jsonl")


def test_csv_manifest(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("id,wav,duration,text\nu1,x/u1.wav,2.5,set red\n")
    (u,) = read_manifest(p)
    assert u.wav == tmp_path.resolve() / "x/u1.wav" and u.duration == 2.5 and u.text == "set red"


def test_bucket_sampler_budget_and_coverage():
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 100, size=200)
    s = BucketBatchSampler(lengths, max_frames=400, max_batch=16, seed=1)
    batches = list(s)
    assert sorted(i for b in batches for i in b) == list(range(200))
    for b in batches:
        assert len(b) <= 16 and (len(b) == 1 or max(lengths[b]) * len(b) <= 400)
    s.set_epoch(1)
    assert [b for b in s] != batches  # reshuffled batch order


def test_bucket_sampler_ranks_disjoint_and_equal_steps():
    lengths = list(range(1, 50))
    r0 = list(BucketBatchSampler(lengths, 60, rank=0, world_size=2))
    r1 = list(BucketBatchSampler(lengths, 60, rank=1, world_size=2))
    assert len(r0) == len(r1)
    covered = {i for b in r0 + r1 for i in b}
    assert covered == set(range(49))


def test_collate_pads_and_reports_lengths():
    items = [{"id": "a", "roi": np.ones((3, 2, 2), np.uint8), "tokens": np.array([1, 2]), "dur": 1.0},
             {"id": "b", "roi": np.ones((5, 2, 2), np.uint8), "tokens": np.array([3]), "dur": 2.0}]
    b = collate(items, pad_values={"tokens": -1})
    assert b["roi"].shape == (2, 5, 2, 2) and b["roi_lengths"].tolist() == [3, 5]
    assert b["tokens"].tolist() == [[1, 2], [3, -1]]
    assert b["id"] == ["a", "b"] and b["dur"].tolist() == [1.0, 2.0]
    x, n = pad_stack([torch.zeros(2), torch.zeros(4)])
    assert x.shape == (2, 4) and n.tolist() == [2, 4]


def test_dataset_roi_and_tokens(tmp_path):
    roi = np.random.default_rng(0).integers(0, 255, (7, 96, 96), dtype=np.uint8)
    np.save(tmp_path / "u.npy", roi)
    ds = ManifestDataset([Utterance(id="u", text="ab", roi=tmp_path / "u.npy", num_frames=7)],
                         fields=("id", "roi", "tokens"), tokenizer=lambda t: [ord(c) - 96 for c in t])
    item = ds[0]
    assert np.array_equal(item["roi"], roi) and item["tokens"].tolist() == [1, 2]
    assert ds.lengths().tolist() == [7]
    assert fit_length(np.ones(3), 5).tolist() == [1, 1, 1, 0, 0]
