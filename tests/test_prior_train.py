"""Smoke run of the ``prior`` training stage on four SynthGRID clips with a fresh tiny lip reader."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import torch

from l2s.arch import load_model
from l2s.train.runner import run
from tests._tiny_corpus import tiny_corpus

RECIPE = Path(str(resources.files("l2s"))).parent / "recipes" / "synthgrid" / "hparams" / "prior.yaml"


def test_prior_stage_runs_and_exports(tmp_path):
    corpus = tiny_corpus()
    out = tmp_path / "prior"
    results = run([str(RECIPE), f"--data_folder={corpus.data}", f"--vsr_model={corpus.vsr}",
                   f"--output_folder={out}", "--number_of_epochs=1", "--max_frames_per_batch=200",
                   "--stat_batches=2"])
    metrics = json.loads((out / "metrics.json").read_text())
    # (compared as JSON: an untrained model may score NaN, which is not equal to itself)
    assert json.dumps(results["test-unseen"], sort_keys=True) == json.dumps(metrics["test-unseen"], sort_keys=True)
    for split in ("test-seen", "test-unseen"):
        m = metrics[split]
        variants = ("_no_ref", "_level", "_no_ref_level")
        pitch = ("f0_rmse_hz", "gpe", "f0_rmse_fine_hz")
        assert set(m) == {"loss", "voicing_error", "prior_mel_l1", "mean_mel_l1", "prior_stoi"} | {
            f"{k}{v}" for k in pitch + ("voicing_error",) for v in ("",) + variants}
        for v in ("",) + variants:
            # NaN only when no frame is voiced in both (an untrained model may call none voiced)
            rmse, gpe, fine = (m[f"{k}{v}"] for k in pitch)
            assert math.isnan(rmse) or (rmse >= 0.0 and 0.0 <= gpe <= 1.0 and (math.isnan(fine) or fine <= rmse))
            assert 0.0 <= m[f"voicing_error{v}"] <= 1.0
        assert -1.0 <= m["prior_stoi"] <= 1.0
        assert m["prior_mel_l1"] > 0.0 and m["mean_mel_l1"] > 0.0
    prior = load_model(out / "model", "prior")
    # the log-F0 statistics of the corpus went into the exported config
    assert 3.5 < prior.config.f0.log_f0_mean < 6.5 and prior.config.f0.feature_dim == 128
    out_prior = prior(torch.randn(1, 5, 128))
    assert out_prior.wav.shape == (1, 5 * 640) and out_prior.mel_norm.shape == (1, 80, 20)
    # the recipe trains with reference recordings: the export takes a speaker embedding, and it matters
    assert prior.config.f0.speaker_dim == 256 and prior.config.ddsp.speaker_dim == 256
    feats = torch.randn(1, 5, 128)
    with_ref = prior.f0(feats, None, torch.nn.functional.normalize(torch.randn(1, 256), dim=1)).log_f0
    assert not torch.allclose(with_ref, prior.f0(feats).log_f0)


def test_prior_stage_under_ddp_keeps_identical_weights(tmp_path):
    # batches without their reference leave some parameters without gradient: DDP must not stall
    corpus = tiny_corpus()
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "l2s", "train", str(RECIPE), f"--data_folder={corpus.data}", f"--vsr_model={corpus.vsr}",
           f"--output_folder={out}", "--number_of_epochs=2", "--max_frames_per_batch=100", "--stat_batches=2",
           "--speaker_dropout=0.5"]
    proc = subprocess.run(cmd, cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    digests = json.loads((out / "metrics.json").read_text())["rank_weight_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
