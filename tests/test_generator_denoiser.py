"""The ``denoiser`` generator: shapes, padding, condition dropout, schedule, sampler plug-in, checkpoint round
trip."""

from __future__ import annotations

import pytest
import torch
import yaml

from l2s.arch import load_model, save_model
from l2s.diffusion.guidance import Guidance
from l2s.diffusion.sampler import DiffusionSettings, GaussianNoise
from l2s.diffusion.schedules import NoiseScheduleConfig, build_schedule, linear_schedule
from l2s.diffusion.steps import eps_from_prediction, q_sample, x0_from_eps
from l2s.errors import InputError, ModelError
from l2s.hub import save_model_dir
from l2s.models.generator.denoiser import Denoiser, DenoiserConfig, bind, sample_mel
from l2s.structs import from_dict, to_dict

CFG = DenoiserConfig(feature_dim=16, channels=16, layers=4, dilation_cycle=2, cond_channels=16, step_dim=16,
                     step_hidden=32, speaker_dim=8)


def _model(config: DenoiserConfig = CFG) -> Denoiser:
    model = Denoiser(config).eval()
    # the output layer starts at zero (eps = 0): give it weights so the tests see the whole network
    torch.nn.init.normal_(model.output.weight, std=0.3)
    return model


def _inputs(b: int = 2, t_v: int = 6):
    t_m = 4 * t_v
    return torch.randn(b, 80, t_m), torch.tensor([10, 300])[:b], torch.randn(b, t_v, 16), torch.randn(b, 80, t_m)


def test_shapes_and_step_formats():
    model = _model()
    x, t, feats, prior = _inputs()
    eps = model(x, t, feats, prior, torch.randn(2, 8))
    assert eps.shape == x.shape and torch.isfinite(eps).all() and eps.abs().sum() > 0
    assert torch.allclose(model(x, t[:, None].float(), feats, prior), model(x, t, feats, prior))
    with pytest.raises(InputError):
        model(x, t, torch.randn(2, 6, 15), prior)


def test_padding_invariance():
    model = _model()
    x, t, feats, prior = _inputs()
    lengths = torch.tensor([24, 14])
    alone = model(x[1:, :, :14], t[1:], feats[1:, :4], prior[1:, :, :14])[0, :, :14]
    garbage = x.clone()
    garbage[1, :, 14:] = 100.0
    prior_g = prior.clone()
    prior_g[1, :, 14:] = -50.0
    batched = model(garbage, t, feats, prior_g, lengths=lengths)
    assert torch.allclose(batched[1, :, :14], alone, atol=1e-5)
    assert batched[1, :, 14:].abs().max() == 0


def test_dropped_condition_ignores_features_and_prior():
    model = _model()
    x, t, feats, prior = _inputs()
    other_feats, other_prior = torch.randn_like(feats), torch.randn_like(prior)
    drop = torch.tensor([True, False])
    a = model(x, t, feats, prior, drop_video=drop)
    b = model(x, t, other_feats, other_prior, drop_video=drop)
    assert torch.allclose(a[0], b[0], atol=1e-6)  # dropped: video and prior replaced by the null condition
    assert not torch.allclose(a[1], b[1], atol=1e-3)  # kept: depends on them
    # prior=None is the same null prior as a dropped one
    assert torch.allclose(model(x, t, feats, None, drop_video=True), model(x, t, feats, prior, drop_video=True),
                          atol=1e-6)


def test_a_denoiser_saved_with_drop_prior_with_video_loads_only_with_its_one_behaviour(tmp_path):
    """The option is gone (every model dropped the prior with the video): a format-1 directory that set it True
    loads with the same outputs, one that set it False is refused rather than run with another behaviour."""
    model = _model()
    x, t, feats, prior = _inputs()
    for keep in (True, False):
        config = {**to_dict(CFG), "drop_prior_with_video": keep}
        save_model_dir(tmp_path / str(keep), "melgen", "denoiser", config, model.state_dict())
        meta = yaml.safe_load((tmp_path / str(keep) / "config.yaml").read_text())
        meta.update(format_version=1, kind="melgen")
        del meta["arch"]
        (tmp_path / str(keep) / "config.yaml").write_text(yaml.safe_dump(meta))
    loaded = load_model(tmp_path / "True", "generator")
    assert torch.equal(loaded(x, t, feats, prior, drop_video=True), model(x, t, feats, prior, drop_video=True))
    with pytest.raises(ModelError, match="drop_prior_with_video"):
        load_model(tmp_path / "False", "generator")


def test_schedule_is_the_samplers():
    assert torch.equal(build_schedule(NoiseScheduleConfig()).alpha_bars, linear_schedule(400).alpha_bars)
    cosine = build_schedule(NoiseScheduleConfig(kind="cosine", num_steps=50))
    assert cosine.num_steps == 50 and bool((cosine.alpha_bars[1:] < cosine.alpha_bars[:-1]).all())
    with pytest.raises(InputError):
        build_schedule(NoiseScheduleConfig(kind="quadratic"))
    mel, t = torch.randn(2, 80, 8), torch.tensor([0, 399])
    noise = torch.randn_like(mel)
    abar = linear_schedule(400).alpha_bars
    want = abar[399].sqrt() * mel[1] + (1 - abar[399]).sqrt() * noise[1]
    assert torch.allclose(q_sample(mel, t, linear_schedule(400), noise)[1], want)


def test_plugs_into_the_sampler(tmp_path):
    model = _model(DenoiserConfig(**{**CFG.__dict__, "schedule": NoiseScheduleConfig(num_steps=50)}))
    _, _, feats, prior = _inputs(b=1)
    bound = bind(model, feats, 24, prior)
    x, t = torch.randn(1, 80, 24), torch.full((1, 1), 7.0)
    assert torch.allclose(bound.eps_cond(x, t), model(x, t, feats, prior))
    assert torch.allclose(bound.eps_uncond(x, t), model(x, t, feats, prior, drop_video=True))
    cfg, weights = DiffusionSettings(solver="dpmsolver++", steps=4, start_step=30), Guidance(w_video=1.0, w_asr=0.0)
    out = sample_mel(model, feats, cfg, weights, prior_mel=prior, noise=GaussianNoise(0))
    assert out.mel.shape == (1, 80, 24) and torch.isfinite(out.mel).all() and out.generator_evals == 8
    again = sample_mel(model, feats, cfg, weights, prior_mel=prior, noise=GaussianNoise(0))
    assert torch.equal(out.mel, again.mel)
    loaded = load_model(save_model(model, tmp_path / "generator"), "generator")
    assert loaded.config == model.config
    assert torch.equal(loaded(x, t, feats, prior), model(x, t, feats, prior))


def test_learns_to_denoise_one_clip():
    torch.manual_seed(0)
    model = Denoiser(CFG).train()
    schedule = model.schedule()
    mel = torch.tanh(torch.randn(1, 80, 24).cumsum(-1) / 4)
    feats, prior = torch.randn(1, 6, 16), mel + 0.1 * torch.randn_like(mel)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(1)
    t_eval = torch.arange(0, 400, 25)
    noise_eval = torch.randn(len(t_eval), 80, 24, generator=gen)

    def eval_loss():
        with torch.no_grad():
            x = q_sample(mel.expand(len(t_eval), -1, -1), t_eval, schedule, noise_eval)
            return float(((model(x, t_eval, feats.expand(len(t_eval), -1, -1),
                                 prior.expand(len(t_eval), -1, -1)) - noise_eval) ** 2).mean())

    before = eval_loss()
    for _ in range(50):
        t = torch.randint(0, 400, (8,))
        noise = torch.randn(8, 80, 24)
        x = q_sample(mel.expand(8, -1, -1), t, schedule, noise)
        loss = ((model(x, t, feats.expand(8, -1, -1), prior.expand(8, -1, -1)) - noise) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert eval_loss() < 0.6 * before


def test_sampler_with_the_guide_asr():
    from l2s.models.guide.ctc import CTCGuide, CTCGuideConfig, guidance_loss, pad_tokens
    from l2s.text.tokenizer import CharTokenizer

    schedule = NoiseScheduleConfig(num_steps=50)
    model = _model(DenoiserConfig(**{**CFG.__dict__, "schedule": schedule}))
    guide = CTCGuide(CTCGuideConfig(d_model=16, heads=2, ffn=32, layers=1, conv_kernel=3, step_dim=8,
                                    schedule=schedule, t_max=45)).eval()
    tokens, _ = pad_tokens([CharTokenizer().encode("bin")])
    _, _, feats, prior = _inputs(b=1)
    cfg = DiffusionSettings(solver="unipc", steps=5, asr_start=30)
    plain = sample_mel(model, feats, DiffusionSettings(solver="unipc", steps=5), Guidance(w_video=2.0, w_asr=0.0),
                       prior_mel=prior, noise=GaussianNoise(0))
    guided = sample_mel(model, feats, cfg, Guidance(w_video=2.0, w_asr=1.5), prior_mel=prior,
                        asr_loss=guidance_loss(guide, tokens), noise=GaussianNoise(0))
    assert guided.guide_evals == sum(t <= 30 for t in guided.timesteps) > 0
    assert torch.isfinite(guided.mel).all() and not torch.allclose(guided.mel, plain.mel)


def test_v_prediction_is_converted_to_eps_for_the_sampler(tmp_path):
    v_cfg = DenoiserConfig(**{**CFG.__dict__, "prediction": "v_prediction"})
    model = _model(v_cfg)
    x0, t, feats, prior = _inputs()
    noise = torch.randn_like(x0)
    x_t = q_sample(x0, t, model.schedule(), noise)
    abar = model.schedule().alpha_bars[t][:, None, None]
    target = model.target(x0, noise, t)
    assert torch.allclose(target, abar.sqrt() * noise - (1 - abar).sqrt() * x0)
    # a network that outputs exactly its v target hands the sampler exactly the true noise, and x_0 follows
    assert torch.allclose(eps_from_prediction("v_prediction", target, x_t, abar), noise, atol=1e-5)
    assert torch.allclose(x0_from_eps(noise, x_t, abar), x0, atol=1e-4)
    raw = model(x_t, t, feats, prior, raw=True)
    assert torch.allclose(model(x_t, t, feats, prior), abar.sqrt() * raw + (1 - abar).sqrt() * x_t, atol=1e-6)
    # the sampler's (B, 1) float steps index the same abar
    assert torch.allclose(model(x_t, t[:, None].float(), feats, prior), model(x_t, t, feats, prior))
    loaded = load_model(save_model(model, tmp_path / "generator"), "generator")
    assert loaded.config.prediction == "v_prediction"
    assert torch.equal(loaded(x_t, t, feats, prior), model(x_t, t, feats, prior))


def test_epsilon_is_the_default_and_unknown_predictions_are_refused():
    model = _model()
    x, t, feats, prior = _inputs()
    noise = torch.randn_like(x)
    assert model.config.prediction == "epsilon" and torch.equal(model.target(x, noise, t), noise)
    assert torch.equal(model(x, t, feats, prior, raw=True), model(x, t, feats, prior))
    with pytest.raises(ValueError, match="prediction"):
        DenoiserConfig(**{**CFG.__dict__, "prediction": "sample"})
    with pytest.raises(InputError, match="prediction"):  # as recipes and checkpoints build it: one line
        from_dict(DenoiserConfig, {**to_dict(CFG), "prediction": "sample"})
    # the alpha-bar buffer is derived, not saved: checkpoints from before the option load unchanged
    assert "alpha_bars" not in model.state_dict()


def test_residual_prior_models_the_mel_relative_to_the_prior():
    cfg = DenoiserConfig(**{**CFG.__dict__, "prediction": "v_prediction", "residual_prior": True,
                            "schedule": NoiseScheduleConfig(num_steps=50)})
    fresh = Denoiser(cfg).eval()  # zero output layers: v = 0
    x0, _, feats, prior = _inputs(b=1)
    t = torch.tensor([49])
    noise = torch.randn_like(x0)
    x_t = q_sample(x0, t, fresh.schedule(), noise)
    abar = fresh.schedule().alpha_bars[49]
    cond = fresh.condition(feats, 24, prior)
    # v = 0 on the residual: the clean-mel estimate is the prior plus the shrunk noisy residual
    x0_hat = x0_from_eps(fresh.denoise(x_t, t, cond), x_t, abar)
    assert torch.allclose(x0_hat, abar.sqrt() * x_t + (1 - abar) * prior, atol=1e-4)
    # the target is the v of mel - prior; a dropped condition is relative to the null prior
    v = abar.sqrt() * noise - (1 - abar).sqrt() * (x0 - prior)
    assert torch.allclose(fresh.target(x0, noise, t, cond.offset), v, atol=1e-5)
    null = fresh.condition(feats, 24, prior, drop_video=True)
    assert torch.allclose(null.offset, fresh.null_prior[None, :, None].expand_as(prior).detach())
    with pytest.raises(ValueError):
        fresh.target(x0, noise, t)
    # the trainer's cheap offset is the conditioning's; eps from a raw output is what denoise returns
    assert torch.equal(fresh.offset(prior, 24), cond.offset)
    assert torch.allclose(fresh.offset(prior, 24, drop_video=True), null.offset)
    trained = _model(cfg)
    tcond = trained.condition(feats, 24, prior)
    raw = trained.denoise(x_t, t, tcond, raw=True)
    assert torch.allclose(trained.eps_from_raw(raw, x_t, t, tcond), trained.denoise(x_t, t, tcond), atol=1e-6)
    assert not torch.allclose(raw, trained.denoise(x_t, t, tcond), atol=1e-3)
    # the sampler runs it like any denoiser (eps in mel space)
    out = sample_mel(fresh, feats, DiffusionSettings(solver="dpmsolver++", steps=4), Guidance(w_video=1.0, w_asr=0.0),
                     prior_mel=prior, noise=GaussianNoise(0))
    assert out.mel.shape == prior.shape and torch.isfinite(out.mel).all()
    with pytest.raises(ValueError):
        Denoiser(DenoiserConfig(**{**cfg.__dict__, "use_prior": False}))
