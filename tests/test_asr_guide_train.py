"""Smoke run of the ``asr_guide`` training stage through ``l2s.train.runner`` on four SynthGRID clips."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import torch

from l2s.models.asr_guide import load_guide
from l2s.train.runner import STAGES, run
from tests._melgen_corpus import tiny_corpus

RECIPE = Path(str(resources.files("l2s"))).parent / "recipes" / "synthgrid" / "hparams" / "asr_guide.yaml"


def test_asr_guide_stage_runs(tmp_path):
    assert STAGES["asr_guide"] == "l2s.train.asr_guide"
    corpus = tiny_corpus()
    out = tmp_path / "guide"
    results = run([str(RECIPE), f"--data_folder={corpus.data}", f"--output_folder={out}", "--number_of_epochs=1",
                   "--max_frames_per_batch=200", "--eval_steps=[0, 300]", "--t_max=350"])
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("test-seen", "test-unseen"):
        assert set(metrics[split]) == {"loss", "CER_t0", "CER_t300"}
        assert metrics[split]["loss"] > 0 and metrics[split]["CER_t0"] >= 0
    assert results["test-unseen"] == metrics["test-unseen"]
    guide = load_guide(out / "model")
    assert guide.config.t_max == 350 and guide.config.schedule.num_steps == 400
    log_probs, _ = guide(torch.randn(1, 80, 40), torch.tensor([10]))
    assert torch.isfinite(log_probs).all()
