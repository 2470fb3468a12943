"""Smoke run of the ``guide`` training stage through ``l2s.train.runner`` on four SynthGRID clips."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import torch

from l2s.arch import load_model
from l2s.train.runner import STAGES, run
from tests._tiny_corpus import tiny_corpus

RECIPE = Path(str(resources.files("l2s"))).parent / "recipes" / "synthgrid" / "hparams" / "guide.yaml"


def test_guide_stage_runs(tmp_path):
    assert STAGES["guide"] == "l2s.train.guide"
    corpus = tiny_corpus()
    out = tmp_path / "guide"
    results = run([str(RECIPE), f"--data_folder={corpus.data}", f"--output_folder={out}", "--number_of_epochs=1",
                   "--max_frames_per_batch=200", "--eval_steps=[0, 300]", "--model={t_max: 350}"])
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("test-seen", "test-unseen"):
        assert set(metrics[split]) == {"loss", "CER_t0", "CER_t300"}
        assert metrics[split]["loss"] > 0 and metrics[split]["CER_t0"] >= 0
    assert results["test-unseen"] == metrics["test-unseen"]
    guide = load_model(out / "model", "guide")
    assert guide.config.t_max == 350 and guide.config.schedule.num_steps == 400
    log_probs, _ = guide(torch.randn(1, 80, 40), torch.tensor([10]))
    assert torch.isfinite(log_probs).all()
