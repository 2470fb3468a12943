"""Smoke run of the ``melgen`` training stage through ``l2s.train.runner`` on four SynthGRID clips,
with a fresh tiny lip reader and a fresh coarse prior as the frozen condition networks."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import torch

from l2s.models.denoiser import load_denoiser
from l2s.train.runner import STAGES, run
from tests._melgen_corpus import tiny_corpus

RECIPE = Path(str(resources.files("l2s"))).parent / "recipes" / "synthgrid" / "hparams" / "melgen.yaml"


def test_melgen_stage_runs(tmp_path):
    assert STAGES["melgen"] == "l2s.train.melgen"
    corpus = tiny_corpus()
    out = tmp_path / "melgen"
    results = run([str(RECIPE), f"--data_folder={corpus.data}", f"--vsr_model={corpus.vsr}",
                   f"--prior_model={corpus.prior}", f"--output_folder={out}", "--number_of_epochs=1",
                   "--max_frames_per_batch=200", "--eval_steps=[10, 300]"])
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("test-seen", "test-unseen"):
        m = metrics[split]
        assert set(m) == {"loss", "loss_uncond", "loss_t10", "loss_t300", "x0_l1_t10", "x0_l1_t300", "prior_l1"}
        # a barely trained v-prediction denoiser: its v MSE is near that of predicting 0
        # (abar + (1 - abar) E[mel^2], about 1 on model-space mels)
        assert 0.1 < m["loss"] < 3.0 and abs(m["loss"] - (m["loss_t10"] + m["loss_t300"]) / 2) < 1e-4
        # the one-step clean-mel estimate is far better at t=10 (x_t is nearly the mel) than at t=300
        assert 0 < m["x0_l1_t10"] < m["x0_l1_t300"] and m["prior_l1"] > 0
    assert results["test-seen"] == metrics["test-seen"]
    model = load_denoiser(out / "model")
    assert model.config.feature_dim == 128 and model.config.use_prior
    assert model.config.schedule.num_steps == 400 and model.config.cond_dropout == 0.2
    assert model.config.prediction == "v_prediction"
    x = torch.randn(1, 80, 8)
    assert torch.isfinite(model(x, torch.tensor([5]), torch.randn(1, 2, 128), torch.randn(1, 80, 8))).all()
