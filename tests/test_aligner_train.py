"""The ``aligner`` training stage: a one-epoch smoke run on the four-clip SynthGRID corpus."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def test_aligner_stage_trains_scores_and_exports(tmp_path):
    from l2s.align import Aligner
    from l2s.models.aligner.model import load_aligner
    from l2s.models.vsr import load_vsr
    from l2s.train.runner import run
    from tests._tiny_corpus import tiny_corpus

    torch.set_num_threads(1)
    small = tiny_corpus()
    out = tmp_path / "exp"
    results = run([str(REPO / "recipes/synthgrid/hparams/aligner.yaml"), f"--data_folder={small.data}",
                   f"--output_folder={out}", f"--vsr_model={small.vsr}", "--timing_epochs=1", "--duration_epochs=2",
                   "--model={timing: {hidden: 8, kernel: 3, layers: 1, dropout: 0.0}}", "--device=cpu"])
    assert results["duration_words"] > 0 and math.isfinite(results["duration_loss"])
    for split in ("valid", "test-seen", "test-unseen"):
        words = results[split]["words"]
        assert words["n"] > 0 and 0 <= words["within_100ms"] <= 1, (split, words)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= {"valid", "test-unseen", "timing_loss"}
    model = load_aligner(out / "model")
    assert model.timing is not None and model.timing.config.hidden == 8
    assert float(model.durations.mean_duration.max()) > 0  # the fallback was counted
    alignment = Aligner(load_vsr(small.vsr), model).align(torch.randn(50, 128), "bin blue at f two now")
    assert len(alignment.words) == 6
    assert "part: timing" in (out / "train_log.txt").read_text()
