"""Schedules, guidance terms and the sampler loop with dummy networks (no fixtures needed)."""

from __future__ import annotations

import math

import pytest
import torch

from l2s.diffusion import (DiffusionSettings, GaussianNoise, Guidance, asr_guidance, cfg, linear_schedule,
                           make_scheduler, noised_prior, sample)
from l2s.errors import InputError

SHAPE = (1, 80, 12)


def _oracle(schedule, x0: torch.Tensor):
    """The exact eps of a point-mass data distribution at ``x0``: sampling must land on ``x0``."""
    def eps(x, t):
        abar = schedule.alpha_bars[t[:, 0].long()].view(-1, 1, 1)
        return (x - abar.sqrt() * x0) / (1 - abar).sqrt()
    return eps


def test_diffusers_schedulers_share_our_betas():
    schedule = linear_schedule(400)
    for solver in ("ddpm", "dpmsolver++", "unipc"):
        sched = make_scheduler(solver, schedule)
        assert sched.config.num_train_timesteps == 400
        assert (sched.alphas_cumprod - schedule.alpha_bars).abs().max() < 1e-6
    with pytest.raises(InputError):
        make_scheduler("euler", schedule)


def test_guidance_terms():
    g = torch.Generator().manual_seed(1)
    e_c, e_u, grad = (torch.randn(SHAPE, generator=g) for _ in range(3))
    assert torch.allclose(cfg(e_c, e_u, 2.0), 3 * e_c - 2 * e_u)
    assert torch.equal(cfg(e_c, e_u, 0.0), e_c)
    abar = torch.tensor(0.3)
    out = asr_guidance(e_c, 1e-3 * grad, abar, 1.5)
    # LipVoicer's normalisation: the added term has norm w_asr * ||eps|| whatever the gradient's scale
    added = out - e_c
    assert math.isclose(added.norm().item(), 1.5 * e_c.norm().item(), rel_tol=1e-5)
    assert torch.allclose(added / added.norm(), grad / grad.norm(), atol=1e-6)
    assert torch.equal(asr_guidance(e_c, torch.zeros(SHAPE), abar, 1.5), e_c)  # text too long for the clip
    prior, noise = torch.randn(SHAPE, generator=g), torch.randn(SHAPE, generator=g)
    assert torch.allclose(noised_prior(prior, abar, noise), abar.sqrt() * prior + (1 - abar).sqrt() * noise)


UNGUIDED = Guidance(w_video=0.0, w_asr=0.0)


@pytest.mark.parametrize("solver,steps", [("ddpm", None), ("dpmsolver++", 12), ("unipc", 12)])
def test_solvers_land_on_the_data_point(solver, steps):
    schedule = linear_schedule(400)
    x0 = torch.linspace(-1, 1, SHAPE[-1]).expand(SHAPE).clone()
    eps = _oracle(schedule, x0)
    res = sample(eps, schedule, SHAPE, DiffusionSettings(solver=solver, steps=steps), UNGUIDED,
                 noise=GaussianNoise(seed=3))
    assert res.mel.shape == SHAPE
    assert (res.mel - x0).abs().max() < 1e-2
    n = 400 if solver == "ddpm" else steps
    assert res.generator_evals == n and res.guide_evals == 0 and len(res.timesteps) == n


@pytest.mark.parametrize("solver", ["dpmsolver++", "unipc"])
def test_few_step_counts_and_determinism(solver):
    schedule = linear_schedule(400)
    calls = {"cond": 0, "uncond": 0, "asr": 0}

    def cond(x, t):
        calls["cond"] += 1
        return 0.5 * x

    def uncond(x, t):
        calls["uncond"] += 1
        return 0.4 * x

    def loss(x, t):
        calls["asr"] += 1
        return (x ** 2).sum()

    config, weights = DiffusionSettings(solver=solver, steps=10, asr_start=200), Guidance(w_video=2.0, w_asr=1.5)
    runs = [sample(cond, schedule, SHAPE, config, weights, eps_uncond=uncond, asr_loss=loss,
                   noise=GaussianNoise(seed=7)) for _ in range(2)]
    assert torch.equal(runs[0].mel, runs[1].mel)
    guided = sum(t <= 200 for t in runs[0].timesteps)
    assert 0 < guided < 10
    assert runs[0].generator_evals == 20 and runs[0].guide_evals == guided
    assert calls == {"cond": 20, "uncond": 20, "asr": 2 * guided}
    other = sample(cond, schedule, SHAPE, config, weights, eps_uncond=uncond, asr_loss=loss,
                   noise=GaussianNoise(seed=8))
    assert not torch.equal(other.mel, runs[0].mel)
    # asr_end: the guide only runs inside [asr_end, asr_start]
    window = sample(cond, schedule, SHAPE, DiffusionSettings(solver=solver, steps=10, asr_start=200, asr_end=60),
                    weights, eps_uncond=uncond, asr_loss=loss, noise=GaussianNoise(seed=7))
    assert window.guide_evals == sum(60 <= t <= 200 for t in window.timesteps) < guided
    with pytest.raises(InputError):
        DiffusionSettings(asr_start=100, asr_end=101)


@pytest.mark.parametrize("solver,steps", [("ddpm", None), ("dpmsolver++", 5)])
def test_shallow_diffusion_starts_from_the_prior(solver, steps):
    schedule = linear_schedule(400)
    prior = torch.full(SHAPE, 0.25)
    res = sample(_oracle(schedule, prior), schedule, SHAPE,
                 DiffusionSettings(solver=solver, steps=steps, start_step=100), UNGUIDED,
                 prior=prior, noise=GaussianNoise(seed=0))
    assert res.timesteps[0] == 100 and res.generator_evals == (101 if solver == "ddpm" else 5)
    assert (res.mel - prior).abs().max() < 1e-2


def test_shallow_diffusion_needs_a_prior():
    schedule = linear_schedule(400)
    with pytest.raises(InputError):
        sample(lambda x, t: x, schedule, SHAPE, DiffusionSettings(start_step=100), Guidance(w_video=0.0))


def test_bad_configurations():
    schedule = linear_schedule(10)
    with pytest.raises(InputError):
        DiffusionSettings(solver="heun")
    with pytest.raises(InputError):
        Guidance(w_asr=-1.0)
    with pytest.raises(InputError):  # ddpm runs every schedule step
        sample(lambda x, t: x, schedule, SHAPE, DiffusionSettings(steps=5), Guidance(w_video=0.0))
    with pytest.raises(InputError):  # CFG without the unconditional model
        sample(lambda x, t: x, schedule, SHAPE, DiffusionSettings(), Guidance(w_video=1.0))


def test_command_line_options_map_onto_the_settings():
    """A new solver brings its own step count unless steps are given; start step 0 means from pure noise."""
    base = DiffusionSettings(solver="dpmsolver++", steps=10, start_step=25)
    assert base.override(solver="ddpm") == DiffusionSettings(solver="ddpm", steps=None, start_step=25)
    assert base.override(solver="unipc", steps=8, start_step=0) == DiffusionSettings(solver="unipc", steps=8)
    assert base.override(steps=4) == DiffusionSettings(solver="dpmsolver++", steps=4, start_step=25)
    assert base.override() == base
