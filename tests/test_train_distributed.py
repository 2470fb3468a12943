"""Training under DDP: evaluation batches shared out among ranks and their statistics gathered; the budget's
broadcast on the rank's device under NCCL and on the CPU under gloo; TensorBoard logging."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from l2s.data.manifest import Utterance, write_manifest
from l2s.metrics.spectral import PitchErrorSums
from l2s.train import budget
from l2s.train.common import make_loader, mean_across_ranks, merge_across_ranks

ITEMS = 7


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, manifest: str, out: str) -> None:
    from speechbrain.utils.metric_stats import ErrorRateStats

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        hparams = {"max_frames_per_batch": 20, "max_batch": 2, "seed": 0}
        loader = make_loader(manifest, ("id", "roi"), hparams, train=False)
        ids = [i for batch in loader for i in batch["id"]]
        rates = ErrorRateStats()
        targets = [["a", "c"] if i.endswith(("1", "3")) else ["a", "b"] for i in ids]
        rates.append(ids, [["a", "b"]] * len(ids), targets)
        sums = merge_across_ranks({"items": float(len(ids)), "pitch": PitchErrorSums(1, 4.0, 0, 1)})
        rates = merge_across_ranks(rates)
        loss = mean_across_ranks(float(rank + 1), len(loader))
        stop = budget._all_agree(rank == 0)  # rank 0 decides for all, on the CPU under gloo
        record = {"ids": ids, "batches": len(loader), "items": sums["items"], "pitch_frames": sums["pitch"].frames,
                  "wer": rates.summarize("error_rate"), "merged_ids": sorted(rates.ids), "loss": loss, "stop": stop}
        Path(out, f"rank{rank}.json").write_text(json.dumps(record))
    finally:
        dist.destroy_process_group()


def test_evaluation_batches_are_shared_out_and_their_statistics_gathered(tmp_path):
    rng = np.random.default_rng(0)
    utts = []
    for i in range(ITEMS):
        np.save(tmp_path / f"u{i}.npy", rng.integers(0, 256, (4 + i, 96, 96), dtype=np.uint8))
        utts.append(Utterance(id=f"u{i}", roi=tmp_path / f"u{i}.npy", num_frames=4 + i))
    write_manifest(tmp_path / "valid.jsonl", utts)
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path / "valid.jsonl"), str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    seen = ranks[0]["ids"] + ranks[1]["ids"]
    assert sorted(seen) == sorted(u.id for u in utts)  # every utterance once, none padded in
    assert set(ranks[0]["ids"]).isdisjoint(ranks[1]["ids"]) and all(r["ids"] for r in ranks)
    for r in ranks:
        assert r["items"] == ITEMS and r["pitch_frames"] == 2 and r["merged_ids"] == sorted(seen)
        assert r["wer"] == pytest.approx(100 * 2 / (2 * ITEMS))  # u1 and u3 have one error in two words
        batches = [ranks[0]["batches"], ranks[1]["batches"]]
        assert r["loss"] == pytest.approx((1 * batches[0] + 2 * batches[1]) / sum(batches))
        assert r["stop"] is True


def test_a_split_smaller_than_the_ranks_is_evaluated_whole(tmp_path, monkeypatch):
    np.save(tmp_path / "u.npy", np.zeros((4, 96, 96), np.uint8))
    write_manifest(tmp_path / "one.jsonl", [Utterance(id="u", roi=tmp_path / "u.npy", num_frames=4)])
    monkeypatch.setattr("l2s.train.common.rank_and_world", lambda: (1, 2))
    loader = make_loader(str(tmp_path / "one.jsonl"), ("id",), {"max_frames_per_batch": 20}, train=False)
    assert [b["id"] for b in loader] == [["u"]] and loader.batch_sampler.world_size == 1
    train = make_loader(str(tmp_path / "one.jsonl"), ("id",), {"max_frames_per_batch": 20}, train=True)
    assert train.batch_sampler.world_size == 2 and len(train) == 1  # training pads: both ranks step


def test_budget_flag_lives_on_the_ranks_gpu_under_nccl(monkeypatch):
    monkeypatch.setattr(dist, "get_backend", lambda group=None: "nccl")
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 3)
    assert budget.collective_device() == torch.device("cuda", 3)
    monkeypatch.setattr(dist, "get_backend", lambda group=None: "gloo")
    assert budget.collective_device() == torch.device("cpu")


def test_tensorboard_logs_statistics_by_epoch_and_examples(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from l2s.train.tensorboard import Example, TensorBoard

    board = TensorBoard(tmp_path, every=2, examples=1)
    assert not board.renders(1) and board.renders(2)
    for epoch in (1, 2):
        board.log_epoch(epoch, {"epoch": epoch, "lr": 0.1}, {"loss": 2.0 / epoch}, {"loss": 3.0 / epoch, "WER": 50.0})
    mel = torch.linspace(-1, 1, 80 * 20).reshape(80, 20)
    board.log_examples(2, [Example("u0/prior", mel=mel, wav=torch.sin(torch.arange(3200) / 5.0)),
                           Example("u0/clean", mel=mel, vocode=True)])
    board.log_test("test-unseen", {"loss": 1.5, "note": "text"}, 2)
    board.close()
    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0, "audio": 0}).Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss/valid")] == [(1, 3.0), (2, 1.5)]
    assert [e.step for e in events.Scalars("WER/valid")] == [1, 2]
    assert [(e.step, e.value) for e in events.Scalars("loss/test-unseen")] == [(2, 1.5)]
    assert set(events.Tags()["images"]) == {"u0/prior/mel", "u0/clean/mel"}
    assert set(events.Tags()["audio"]) == {"u0/prior/audio", "u0/clean/audio"}  # the clean mel via Griffin-Lim
    assert events.Audio("u0/clean/audio")[0].length_frames == 20 * 160
