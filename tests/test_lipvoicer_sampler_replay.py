"""Our sampler, in its LipVoicer configuration, replays LipVoicer's recorded 10-step guided run."""

from __future__ import annotations

import torch
from safetensors.torch import load_file

from l2s.arch import load_model, load_stage
from l2s.diffusion import DiffusionSettings, Guidance, ReplayNoise, linear_schedule, sample
from l2s.diffusion.guidance import grad_normaliser
from l2s.features.mel import denormalize_mel
from l2s.models.generator.base import GeneratorInputs
from l2s.models.lipvoicer import ASRGuide, MelGen
from l2s.models.lipvoicer.convert import convert_asr, convert_melgen
from l2s.pipeline.pipeline import load_generator
from tests._lipvoicer import converted_pipeline

#: the recorded run: ancestral DDPM over a 10-step schedule, CFG w1 = 2, the guide (w2 = 1.5) from step 6
SETTINGS = DiffusionSettings(solver="ddpm", asr_start=6)
GUIDANCE = Guidance(w_video=2.0, w_asr=1.5)


def _load(fx):
    cfg, state, _ = convert_melgen(load_file(str(fx / "melgen.small.safetensors")))
    melgen = MelGen(cfg).eval()
    melgen.load_state_dict(state)
    cfg, state, _ = convert_asr(load_file(str(fx / "asr.small.safetensors")))
    asr = ASRGuide(cfg).eval()
    asr.load_state_dict(state)
    return melgen, asr


def test_schedule_matches_lipvoicer(lipvoicer_fixtures):
    for ref, steps in ((load_file(str(lipvoicer_fixtures / "diffusion_schedule.T400.safetensors")), 400),
                       (load_file(str(lipvoicer_fixtures / "sampler.small.io.safetensors")), 10)):
        ours = linear_schedule(steps)
        assert torch.equal(ours.betas, ref["Beta"])
        assert torch.equal(ours.alphas, ref["Alpha"])
        assert torch.equal(ours.alpha_bars, ref["Alpha_bar"])  # the sequential float32 product, bit for bit
        assert (ours.sigmas - ref["Sigma"]).abs().max() < 1e-7


def test_replay_reproduces_every_step(lipvoicer_fixtures):
    io = load_file(str(lipvoicer_fixtures / "sampler.small.io.safetensors"))
    melgen, asr = _load(lipvoicer_fixtures)
    schedule = linear_schedule(10)
    with torch.no_grad():
        cond = melgen.encode(io["mouthroi"], io["face_image"])
        null = melgen.encode_null(1, io["mouthroi"].shape[2])
    lengths = torch.tensor([io["x_init"].shape[-1]])
    records = []
    result = sample(
        lambda x, t: melgen(x, t, cond), schedule, io["x_init"].shape, SETTINGS, GUIDANCE,
        eps_uncond=lambda x, t: melgen(x, t, null),
        asr_loss=lambda x, t: asr.ctc_loss(x, lengths, t, io["text_tokens"]),
        noise=ReplayNoise(io["x_init"], io["noise"]), on_step=records.append)

    assert result.timesteps == tuple(range(9, -1, -1))
    assert [r.t for r in records if r.asr_grad is not None] == io["asr_steps"].tolist()
    assert result.generator_evals == 20 and result.guide_evals == 7
    j = 0
    for r in records:
        assert torch.equal(torch.full((1, 1), float(r.t)), io["t_in"][r.index])
        for name, ours in (("x_in", r.x_in), ("eps_cond", r.eps_cond), ("eps_uncond", r.eps_uncond),
                           ("eps_cfg", r.eps_cfg), ("eps_final", r.eps_final)):
            err = (ours - io[name][r.index]).abs().max().item()
            assert err < 1e-4, f"{name} at t={r.t}: {err:.3g}"
        if r.asr_grad is not None:
            assert (r.asr_grad - io["asr_grad"][j]).abs().max() < 1e-4
            assert abs(r.asr_loss.item() - io["asr_loss"][j].item()) < 1e-4 * abs(io["asr_loss"][j].item())
            lam = grad_normaliser(r.eps_cfg, r.asr_grad, schedule.alpha_bars[r.t])
            assert abs(lam.item() / io["grad_normaliser"][j].item() - 1) < 1e-4
            j += 1
    assert j == 7
    assert (result.mel - io["x0"]).abs().max() < 1e-4


def test_replay_end_to_end_through_a_converted_pipeline(tmp_path, lipvoicer_fixtures):
    """uint8 video -> converted pipeline dir -> the generator and guide the pipeline loads from it (its schedule
    in the generator's own config) -> HiFi-GAN: LipVoicer's final mel and audio."""
    io = load_file(str(lipvoicer_fixtures / "sampler.small.io.safetensors"))
    out = converted_pipeline(lipvoicer_fixtures, tmp_path / "lv", num_steps=10)
    generator = load_generator(out / "generator", {"solver": "ddpm", "asr_start": 6}, torch.device("cpu"))
    assert generator.arch == "lipvoicer" and generator.settings == SETTINGS
    guide = load_stage(out / "guide", "guide", tokenizer="char", schedule=generator.schedule)
    frames = io["x_init"].shape[-1]
    inputs = GeneratorInputs(roi=io["mouthroi_uint8"], face=io["face_uint8_hwc"])
    result = generator.sample(inputs, GUIDANCE, guide.token_loss(io["text_tokens"], frames),
                              ReplayNoise(io["x_init"], io["noise"]))
    assert (result.generator_evals, result.guide_evals) == (20, 7)
    assert (result.mel - io["x0"]).abs().max() < 1e-4
    mel_log = denormalize_mel(result.mel)
    assert (mel_log - io["mel_log_final"]).abs().max() < 6e-4  # 5.76 x the x0 tolerance
    with torch.no_grad():
        audio = load_model(out / "vocoder", "vocoder")(mel_log).squeeze()
    audio = audio / 1.1 / audio.abs().max()
    assert (audio - io["audio_final"]).abs().max() < 1e-4
