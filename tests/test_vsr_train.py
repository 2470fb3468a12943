"""The ``vsr`` training stage: a smoke run of the SynthGRID recipe, resume, export, and DDP on CPU."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from l2s.cli import main
from l2s.data.manifest import Utterance, write_manifest
from l2s.models.vsr import load_vsr

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "synthgrid" / "hparams" / "vsr.yaml"
TEXTS = ["bin blue at a one now", "set red by b two soon", "lay green in c three again",
         "place white with d four please"]
TINY = ["--number_of_epochs=1", "--max_frames_per_batch=40", "--test_beam_size=2", "--valid_beam_size=0",
        "--warmup_steps=2"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Four clips of random mouth ROIs with GRID sentences, in every split the recipe reads."""
    root = tmp_path_factory.mktemp("vsr_data")
    rng = np.random.default_rng(0)
    utts = []
    for i, text in enumerate(TEXTS):
        frames = 16 + 2 * i
        np.save(root / f"u{i}.npy", rng.integers(0, 256, (frames, 96, 96), dtype=np.uint8))
        utts.append(Utterance(id=f"u{i}", text=text, roi=root / f"u{i}.npy", num_frames=frames))
    for split in ("train", "valid", "test-seen", "test-unseen"):
        write_manifest(root / f"{split}.jsonl", utts if split == "train" else utts[:2])
    return root


def test_recipe_trains_resumes_and_exports(data, tmp_path):
    out = tmp_path / "exp"
    args = ["train", str(RECIPE), f"--data_folder={data}", f"--output_folder={out}", *TINY]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output + result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test-unseen"]) == {"loss", "WER", "CER"} and 0 <= metrics["test-unseen"]["CER"] <= 100 * 30
    assert metrics["rank_weight_digests"][0] != metrics["initial_weight_digest"]  # it did train
    model = load_vsr(out / "model")
    assert model.tokenizer is not None and model.config.d_model == 128
    # A rerun with the same command resumes from the checkpoint: the finished epoch is not redone.
    log_before = (out / "train_log.txt").read_text()
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.stderr
    assert (out / "train_log.txt").read_text() == log_before


def test_ddp_keeps_identical_weights_and_shares_out_evaluation(tmp_path):
    """Two processes train identical replicas; valid and test are split over the ranks (3 batches: 2 on one,
    1 on the other) and their statistics gathered: the test scores equal those of one process evaluating
    the same checkpoint alone."""
    rng = np.random.default_rng(1)
    utts = []
    for i, text in enumerate(TEXTS):
        frames = 16 + 2 * i
        np.save(tmp_path / f"u{i}.npy", rng.integers(0, 256, (frames, 96, 96), dtype=np.uint8))
        utts.append(Utterance(id=f"u{i}", text=text, roi=tmp_path / f"u{i}.npy", num_frames=frames))
    for split in ("train", "valid", "test-seen", "test-unseen"):
        write_manifest(tmp_path / f"{split}.jsonl", utts)
    out = tmp_path / "ddp"
    args = ["train", str(RECIPE), f"--data_folder={tmp_path}", f"--output_folder={out}", *TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531",
           "-m", "l2s", *args]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    shared = json.loads((out / "metrics.json").read_text())
    digests = shared["rank_weight_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    assert digests[0] != shared["initial_weight_digest"]
    assert (out / "tensorboard").is_dir() and list((out / "tensorboard").glob("events.out.tfevents.*"))
    # the same command in one process resumes (training is done) and scores the test splits alone
    (out / "metrics.json").unlink()
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output + result.stderr
    alone = json.loads((out / "metrics.json").read_text())
    for split in ("test-seen", "test-unseen"):
        assert alone[split]["WER"] == pytest.approx(shared[split]["WER"])
        assert alone[split]["CER"] == pytest.approx(shared[split]["CER"])
        assert alone[split]["loss"] == pytest.approx(shared[split]["loss"], rel=1e-5)


@pytest.mark.parametrize("world, reached", [("2", False), ("1", True)])
def test_a_launched_rank_ends_at_once_after_its_run(world, reached):
    """Under torchrun a rank leaves with os._exit (exit status 0, output flushed) instead of meeting interpreter
    finalization with gloo's threads alive; a single process returns normally."""
    code = ("import sys; from l2s.train.runner import end_launched_process; print('saved', flush=False); "
            "end_launched_process(); print('returned')")
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "WORLD_SIZE": world},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("saved")
    assert ("returned" in proc.stdout) == reached
