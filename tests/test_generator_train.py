"""Smoke run of the ``generator`` training stage through ``l2s.train.runner`` on four SynthGRID clips,
with a fresh tiny lip reader and a fresh coarse prior as the frozen condition networks."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from l2s.cli import main
from l2s.arch import load_model
from l2s.train.runner import STAGES, run
from tests._tiny_corpus import tiny_corpus

RECIPE = Path(str(resources.files("l2s"))).parent / "recipes" / "synthgrid" / "hparams" / "generator.yaml"


def test_generator_stage_runs(tmp_path):
    assert STAGES["generator"] == "l2s.train.generator"
    corpus = tiny_corpus()
    out = tmp_path / "generator"
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
    model = load_model(out / "model", "generator")
    assert model.config.feature_dim == 128 and model.config.use_prior
    assert model.config.schedule.num_steps == 400 and model.config.cond_dropout == 0.2
    assert model.config.prediction == "v_prediction"
    # the recipe keeps a weight average (ema_decay): the exported model is the average of the checkpoint kept,
    # which differs from the trained weights saved beside it
    (ckpt,) = (out / "save").glob("CKPT*")
    averaged = torch.load(ckpt / "ema.ckpt")
    trained = torch.load(ckpt / "denoiser.ckpt")
    exported = model.state_dict()
    assert int(averaged["started"]) == 1
    assert all(torch.equal(exported[k], averaged[f"model.{k}"]) for k in exported)
    assert any(not torch.equal(exported[k], trained[k]) for k in exported)
    x = torch.randn(1, 80, 8)
    assert torch.isfinite(model(x, torch.tensor([5]), torch.randn(1, 2, 128), torch.randn(1, 80, 8))).all()


def test_generator_stage_resumes_a_run_saved_without_the_weight_average(tmp_path):
    """A checkpoint written with ``ema_decay: null`` (as before the average existed) resumes with the average on."""
    corpus = tiny_corpus()
    out = tmp_path / "generator"
    common = [str(RECIPE), f"--data_folder={corpus.data}", f"--vsr_model={corpus.vsr}", f"--prior_model={corpus.prior}",
              f"--output_folder={out}", "--max_frames_per_batch=200", "--eval_steps=[10]"]
    run(common + ["--number_of_epochs=1", "--ema_decay=null"])
    (first,) = (out / "save").glob("CKPT*")
    assert not (first / "ema.ckpt").exists()
    log_lines = (out / "train_log.txt").read_text().splitlines()
    run(common + ["--number_of_epochs=2"])
    lines = (out / "train_log.txt").read_text().splitlines()
    assert lines[: len(log_lines)] == log_lines and lines[-1].startswith("epoch: 2,")  # resumed, not restarted
    # the checkpoint kept is the better of the two; the exported model is its average, or its own weights when it
    # is the first one, saved without an average
    (kept,) = (out / "save").glob("CKPT*")
    exported = load_model(out / "model", "generator").state_dict()
    if (kept / "ema.ckpt").exists():
        expected = {k[len("model."):]: v for k, v in torch.load(kept / "ema.ckpt").items() if k.startswith("model.")}
    else:
        expected = torch.load(kept / "denoiser.ckpt")
    assert all(torch.equal(exported[k], expected[k]) for k in exported)


@pytest.mark.parametrize("decay", ["1.0", "-0.1", "fast", "True"])
def test_generator_stage_refuses_a_bad_ema_decay(tmp_path, decay):
    """One line, exit 2, before the runner writes the output folder."""
    out = tmp_path / "generator"
    result = CliRunner().invoke(main, ["train", str(RECIPE), "--data_folder=x", "--vsr_model=x", "--prior_model=x",
                                       f"--output_folder={out}", f"--ema_decay={decay}"])
    assert result.exit_code == 2, result.output
    assert "ema_decay must be a number in [0, 1) or null" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_generator_stage_starts_from_init_model_and_refuses_one_that_does_not_fit(tmp_path):
    corpus = tiny_corpus()
    common = [str(RECIPE), f"--data_folder={corpus.data}", f"--vsr_model={corpus.vsr}", f"--prior_model={corpus.prior}",
              "--max_frames_per_batch=200", "--eval_steps=[10]", "--number_of_epochs=1"]
    run(common + [f"--output_folder={tmp_path / 'first'}"])
    source = tmp_path / "first" / "model"
    # lr 0 and no average: the second run's exported weights are exactly the ones it started from
    run(common + [f"--output_folder={tmp_path / 'second'}", f"--init_model={source}", "--lr=0.0", "--ema_decay=null"])
    started = load_model(tmp_path / "second" / "model", "generator").state_dict()
    expected = load_model(source, "generator").state_dict()
    assert all(torch.equal(started[k], expected[k]) for k in expected)
    # another objective: refused in one line naming the field, exit 2
    args = ["train", *common, f"--output_folder={tmp_path / 'third'}", f"--init_model={source}",
            "--model={prediction: epsilon}"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "does not fit the recipe's generator: prediction='v_prediction' (recipe: 'epsilon')" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("option", ["--init_model", "--vsr_model"])
def test_generator_stage_refuses_a_missing_model_before_writing(tmp_path, option):
    corpus = tiny_corpus()
    out = tmp_path / "generator"
    args = {"--vsr_model": str(corpus.vsr), "--prior_model": str(corpus.prior), "--init_model": "null",
            option: str(tmp_path / "missing")}
    result = CliRunner().invoke(main, ["train", str(RECIPE), f"--data_folder={corpus.data}",
                                       f"--output_folder={out}", *(f"{k}={v}" for k, v in args.items())])
    assert result.exit_code == 2, result.output
    assert f"{tmp_path / 'missing'}: no such model" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()
