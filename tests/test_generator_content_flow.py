"""The content-flow generator: the flow sampler, the content condition, the stage in a pipeline, its trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from l2s.arch import load_model, lookup, save_model
from l2s.diffusion.flow import FlowSettings, flow_sample, guided_estimate, path_point, smooth_time
from l2s.diffusion.guidance import Guidance
from l2s.diffusion.sampler import GaussianNoise
from l2s.errors import InputError
from l2s.models.generator.base import GeneratorInputs
from l2s.models.generator.content_flow import (NULL_PHONEME, ContentFlow, ContentFlowGenerator, ContentInputs,
                                               clip_inputs)

T = 24


def _inputs(b: int = 2, frames: int = T, dim: int = 32, seed: int = 0) -> ContentInputs:
    g = torch.Generator().manual_seed(seed)
    return ContentInputs(phonemes=torch.randint(3, 20, (b, frames), generator=g),
                         scalars=torch.rand(b, 4, frames, generator=g),
                         features=torch.randn(b, frames // 4, dim, generator=g),
                         prior_mel=torch.randn(b, 80, frames, generator=g),
                         mask=torch.ones(b, 1, frames))


def _micro() -> ContentFlow:
    torch.manual_seed(0)
    return lookup("generator", "content-flow").create("micro")


def test_flow_settings_refuse_bad_values():
    for bad in ({"solver": "rk4"}, {"steps": -1}, {"rerank": 0}, {"asr_smooth": 4}, {"temperature": -1.0}):
        with pytest.raises(InputError):
            FlowSettings(**bad)


def test_untrained_networks_give_back_the_prior_and_the_mean():
    model, c = _micro(), _inputs()
    mean = model.mean(c)
    assert torch.equal(mean, c.prior_mel)  # zero-initialised output layers
    x_t = torch.randn_like(mean)
    assert torch.equal(model.estimate(x_t, torch.full((2,), 0.3), mean, c), mean)


@pytest.mark.parametrize("solver", ["euler", "midpoint"])
def test_flow_sample_lands_on_the_estimate(solver):
    target = torch.randn(1, 80, T)
    calls = []

    def estimate(x, t):
        calls.append(float(t[0]))
        return target

    mean = torch.zeros(1, 80, T)
    out = flow_sample(estimate, mean, 0.25, FlowSettings(steps=3, solver=solver), GaussianNoise(0))
    assert torch.allclose(out.mel, target, atol=1e-6)  # the last step lands on the clean estimate
    assert out.evals == (3 if solver == "euler" else 6) == len(calls)
    assert calls[0] == 0.0 and max(calls) < 1.0
    none = flow_sample(estimate, mean, 0.25, FlowSettings(steps=0), GaussianNoise(0))
    assert none.mel is mean and none.evals == 0


def test_path_point_and_smoothing():
    x0, x1 = torch.zeros(2, 80, 5), torch.ones(2, 80, 5)
    assert torch.allclose(path_point(x0, x1, torch.tensor([0.0, 0.25])), torch.tensor([0.0, 0.25])[:, None, None]
                          .expand(2, 80, 5))
    x = torch.zeros(1, 2, 9)
    x[..., 4] = 1.0
    y = smooth_time(x, 5)
    assert torch.isclose(y.sum(), torch.tensor(2.0)) and y[0, 0, 4] < 1.0 and y[0, 0, 3] > 0


def test_guided_estimate_moves_down_the_loss_on_speech_frames_only():
    target = torch.zeros(1, 80, T)

    def loss_fn(x):
        return ((x - 1.0) ** 2).mean()

    speech = torch.zeros(1, 1, T)
    speech[..., 8:16] = 1.0
    moved, loss = guided_estimate(lambda x, t: x * 1.0, target, torch.zeros(1), loss_fn, 0.5, speech, 3)
    assert float(loss_fn(moved)) < float(loss)
    assert torch.equal(moved[..., :4], target[..., :4]) and torch.equal(moved[..., 20:], target[..., 20:])
    assert (moved[..., 10:14] > 0).all()


def test_rerank_keeps_the_draw_the_guide_scores_best():
    def estimate(x, t):
        return x  # the sample keeps its draw

    losses = []

    def loss_fn(x):
        losses.append(float(x.mean()))
        return x.mean()

    out = flow_sample(estimate, torch.zeros(1, 80, T), 1.0, FlowSettings(steps=1, rerank=4), GaussianNoise(3),
                      loss_fn=loss_fn)
    assert len(out.losses) == 4 and float(out.mel.mean()) == pytest.approx(min(out.losses), abs=1e-6)


def test_without_content_nulls_only_the_words_and_the_lips():
    c = _inputs()
    drop = torch.tensor([True, False])
    d = c.without_content(drop)
    assert (d.phonemes[0] == NULL_PHONEME).all() and torch.equal(d.phonemes[1], c.phonemes[1])
    assert (d.features[0] == 0).all() and torch.equal(d.features[1], c.features[1])
    assert (d.scalars[0, :2] == 0).all() and torch.equal(d.scalars[0, 2:], c.scalars[0, 2:])  # F0, voicing kept
    assert torch.equal(d.prior_mel, c.prior_mel)
    assert c.without_content(torch.tensor([False, False])) is c


def test_the_model_directory_round_trips(tmp_path):
    model = _micro()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    save_model(model, tmp_path / "gen", "generator")
    back = load_model(tmp_path / "gen", "generator")
    assert isinstance(back, ContentFlow) and back.config == model.config
    c = _inputs()
    assert torch.allclose(back.mean(c), model.eval().mean(c))


def _alignment():
    from l2s.align.timeline import Alignment, PhonemeSpan, WordSpan

    words = (WordSpan("bin", 0.04, 0.2, 0.9),)
    phonemes = (PhonemeSpan("b", 0.04, 0.1, 0.9, 0), PhonemeSpan("ɪ", 0.1, 0.16, 0.9, 0),
                PhonemeSpan("n", 0.16, 0.2, 0.9, 0))
    return Alignment(text="bin", words=words, phonemes=phonemes, duration=T / 100, frame_rate=25.0, language="en-us")


def test_clip_inputs_render_the_alignment_with_the_models_inventory():
    model = _micro()
    inputs = GeneratorInputs(roi=torch.zeros(1, T // 4, 96, 96, dtype=torch.uint8), features=torch.randn(1, T // 4, 32),
                             prior_mel=torch.randn(1, 80, T), f0=torch.full((1, T), 120.0),
                             voiced=torch.ones(1, T, dtype=torch.bool), alignment=_alignment())
    c = clip_inputs(model, inputs)
    ids = c.phonemes[0].tolist()
    assert ids[:4] == [1] * 4 and ids[-1] == 1  # silence outside the word
    assert model.inventory.id("b") in ids and model.inventory.id("n") in ids
    assert c.scalars[0, 1].sum() == 1.0  # one word start
    assert torch.allclose(c.scalars[0, 2], torch.zeros(T), atol=1e-5)  # 120 Hz is the centre of the log-F0 input
    with pytest.raises(Exception, match="content-flow generator needs"):
        clip_inputs(model, GeneratorInputs(roi=inputs.roi, features=inputs.features))


def test_the_stage_samples_with_guidance_and_classifier_free_guidance():
    model = _micro()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    stage = ContentFlowGenerator(model.eval(), FlowSettings(steps=2))
    inputs = GeneratorInputs(roi=torch.zeros(1, T // 4, 96, 96, dtype=torch.uint8), features=torch.randn(1, T // 4, 32),
                             prior_mel=torch.randn(1, 80, T), f0=torch.full((1, T), 110.0),
                             voiced=torch.ones(1, T, dtype=torch.bool), alignment=_alignment())
    plain = stage.sample(inputs, Guidance(w_video=0.0, w_asr=0.0), None, GaussianNoise(0))
    again = stage.sample(inputs, Guidance(w_video=0.0, w_asr=0.0), None, GaussianNoise(0))
    assert plain.mel.shape == (1, 80, T) and torch.equal(plain.mel, again.mel)
    assert plain.generator_evals == 2 and plain.guide_evals == 0
    cfg = stage.sample(inputs, Guidance(w_video=1.0, w_asr=0.0), None, GaussianNoise(0))
    assert cfg.generator_evals == 4 and not torch.allclose(cfg.mel, plain.mel)
    seen = []

    def asr_loss(x, t):
        seen.append(tuple(t.shape))
        return x.pow(2).mean()

    guided = stage.sample(inputs, Guidance(w_video=0.0, w_asr=1.0), asr_loss, GaussianNoise(0))
    assert guided.guide_evals == 2 and seen[0] == (1, 1)
    assert float(guided.mel.pow(2).mean()) < float(plain.mel.pow(2).mean())
    mean = stage.with_settings(FlowSettings(steps=0)).sample(inputs, Guidance(0.0, 0.0), None, GaussianNoise(0))
    assert mean.generator_evals == 0


def test_an_untrained_content_flow_pipeline_voices_a_clip(tmp_path):
    from l2s.pipeline import Lip2Speech, build_untrained_pipeline

    pipe = Lip2Speech.from_pretrained(build_untrained_pipeline(tmp_path / "p", "micro", arch="content-flow"),
                                      device="cpu")
    assert pipe.generator.arch == "content-flow"
    roi = np.random.default_rng(0).integers(0, 255, (30, 96, 96), dtype=np.uint8)
    result = pipe(roi, text="bin blue", seed=0, w_asr=0.0, w_video=0.0)
    assert result.wav.shape == (30 * 4 * 160,) and np.isfinite(result.wav).all()
    assert result.network_evals == 4
    with pytest.raises(InputError, match="start-step"):
        pipe.generator_settings(start_step=3)


def test_the_learning_rate_warms_up_then_decays_by_a_cosine():
    from l2s.train.content_flow import lr_at

    assert lr_at(1.0, 0, 100, 10, 0.05) == pytest.approx(0.1, rel=1e-3)
    assert lr_at(1.0, 9, 100, 10, None) == 1.0 and lr_at(1.0, 99, 100, 10, None) == 1.0
    assert lr_at(1.0, 50, 100, 10, 0.05) == pytest.approx(0.05 + 0.95 * 0.5)
    assert lr_at(1.0, 100, 100, 10, 0.05) == pytest.approx(0.05)
    values = [lr_at(1.0, s, 100, 10, 0.05) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:]))
