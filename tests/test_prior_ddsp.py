"""DDSP decoder, coarse prior and the multi-resolution STFT loss: shapes, teacher forcing, learning, checkpoints."""

import dataclasses

import numpy as np
import pytest
import torch

from l2s.arch import load_model, save_model
from l2s.config import HOP_LENGTH, MEL_FRAMES_PER_VIDEO_FRAME, N_MELS
from l2s.errors import ModelError
from l2s.features.mel import wav_to_mel
from l2s.hub import save_model_dir
from l2s.models.prior.ddsp import (COARSE_PRIOR_PRESETS, COARSE_PRIOR_TINY, CoarsePrior, CoarsePriorConfig,
                                   DDSPConfig, DDSPDecoder, HarmonicPlusNoise, harmonic_synth)
from l2s.models.prior.f0 import F0ModelConfig
from l2s.vocoder.stft_loss import MultiResolutionSTFTLoss

SMALL = CoarsePriorConfig(
    f0=F0ModelConfig(feature_dim=16, hidden_dim=16, num_layers=1, rnn_layers=1, speaker_dim=4, dropout=0.0),
    ddsp=DDSPConfig(feature_dim=16, hidden_dim=16, num_layers=2, n_harmonics=12, n_noise_bands=17, speaker_dim=4,
                    dropout=0.0),
)


def test_prior_shapes_and_padding():
    model = CoarsePrior(SMALL).eval()
    feats = torch.randn(2, 6, 16)
    out = model(feats, lengths=torch.tensor([6, 4]), speaker=torch.randn(2, 4))
    t_m = 6 * MEL_FRAMES_PER_VIDEO_FRAME
    assert out.wav.shape == (2, t_m * HOP_LENGTH)
    assert out.mel_norm.shape == (2, N_MELS, t_m)
    assert out.f0.shape == out.voiced.shape == (2, t_m)
    assert torch.isfinite(out.wav).all() and torch.isfinite(out.mel_norm).all()
    assert torch.all(out.wav[1, 4 * MEL_FRAMES_PER_VIDEO_FRAME * HOP_LENGTH:] == 0)
    assert not out.voiced[1, 4 * MEL_FRAMES_PER_VIDEO_FRAME:].any()
    assert torch.all((out.f0 > 0) == out.voiced)
    assert torch.allclose(out.mel_norm, wav_to_mel(out.wav)[..., :t_m])


def test_teacher_forcing_uses_the_given_f0_and_voicing():
    model = CoarsePrior(SMALL).eval()
    t_m = 5 * MEL_FRAMES_PER_VIDEO_FRAME
    f0 = torch.full((1, t_m), 170.0)
    f0[:, 8:12] = 0.0
    out = model(torch.randn(1, 5, 16), f0_override=f0)
    assert torch.equal(out.voiced, f0 > 0)
    assert torch.allclose(out.f0, f0)


def test_synthesis_loss_trains_the_decoder_not_the_f0_predictor():
    model = CoarsePrior(SMALL)
    out = model(torch.randn(1, 5, 16))
    out.wav.pow(2).mean().backward()
    assert all(p.grad is None or not p.grad.any() for p in model.f0.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.decoder.parameters())


def test_stft_loss_is_zero_on_identity_and_grows_with_mismatch():
    loss = MultiResolutionSTFTLoss()
    x = torch.randn(2, 4000)
    same = loss(x, x)
    assert same.total.item() == pytest.approx(0.0, abs=1e-6)
    near = loss(x + 0.01 * torch.randn_like(x), x).total.item()
    far = loss(torch.randn_like(x), x).total.item()
    assert 0 < near < far
    with pytest.raises(ValueError):
        loss(x, x[:, :100])


def test_decoder_and_synth_fit_a_harmonic_target():
    """A short harmonic signal (known F0, 1/k^2 harmonics, moving envelope) is fitted within 40 steps."""
    t_v, t_m = 10, 10 * MEL_FRAMES_PER_VIDEO_FRAME
    f0 = (140.0 + 30.0 * torch.sin(torch.linspace(0, 2, t_m)))[None]
    k = torch.arange(1, 21, dtype=torch.float32)
    target = harmonic_synth(f0, (0.3 + 0.2 * torch.sin(torch.linspace(0, 3, t_m)))[None],
                            (1.0 / k ** 2).expand(1, t_m, 20))
    decoder = DDSPDecoder(dataclasses.replace(SMALL.ddsp, hidden_dim=32, n_harmonics=20, n_noise_bands=33))
    synth = HarmonicPlusNoise()
    feats = torch.randn(1, t_v, 16)
    voiced = torch.ones(1, t_m, dtype=torch.bool)
    loss_fn = MultiResolutionSTFTLoss()
    opt = torch.optim.Adam(decoder.parameters(), lr=1e-2)
    losses = []
    for step in range(40):
        out = synth(f0, voiced, decoder(feats, f0.log(), voiced), generator=torch.Generator().manual_seed(step))
        loss = loss_fn(out.wav, target)
        opt.zero_grad()
        loss.total.backward()
        opt.step()
        losses.append(loss.total.item())
    assert losses[-1] < losses[0] / 4
    assert loss.spectral_convergence.item() < 0.3


def test_checkpoint_roundtrip(tmp_path):
    model = CoarsePrior(SMALL).eval()
    path = save_model(model, tmp_path / "prior")
    loaded = load_model(path, "prior")
    assert loaded.config == SMALL
    feats = torch.randn(1, 4, 16)
    a = model(feats, generator=torch.Generator().manual_seed(3))
    b = loaded(feats, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.wav, b.wav)
    save_model_dir(tmp_path / "bad", "prior", "ddsp", COARSE_PRIOR_TINY, {"nothing": torch.zeros(1)})
    with pytest.raises(ModelError):
        load_model(tmp_path / "bad", "prior")


def test_presets_read_the_vsr_features_and_run():
    from l2s.models.vsr import VSR_PRESETS

    for name, prior in COARSE_PRIOR_PRESETS.items():
        width = VSR_PRESETS[name].d_model
        assert prior.f0.feature_dim == prior.ddsp.feature_dim == width
    model = CoarsePrior(COARSE_PRIOR_TINY).eval()
    with torch.inference_mode():
        out = model(torch.randn(1, 5, COARSE_PRIOR_TINY.f0.feature_dim))
    assert out.wav.shape == (1, 5 * MEL_FRAMES_PER_VIDEO_FRAME * HOP_LENGTH)


def test_match_f0_level_sets_the_voiced_mean_and_keeps_the_contour():
    from l2s.models.prior.f0 import F0Output, match_f0_level

    log_f0 = torch.log(torch.tensor([[100.0, 120.0, 140.0, 90.0], [150.0, 150.0, 150.0, 150.0]]))
    logits = torch.tensor([[5.0, 5.0, 5.0, -5.0], [-5.0, -5.0, -5.0, -5.0]])  # item 2: nothing voiced
    out = F0Output(log_f0=log_f0, voicing_logits=logits, mask=torch.ones(2, 4, dtype=torch.bool))
    ref = torch.tensor([np.log(200.0), np.log(300.0)])
    shifted = match_f0_level(out, ref)
    assert shifted.log_f0[0, :3].mean() == pytest.approx(np.log(200.0), abs=1e-5)
    diffs = shifted.log_f0[0] - log_f0[0]
    assert torch.allclose(diffs, diffs[0].expand(4))  # one shift per item: the contour is kept
    assert torch.equal(shifted.log_f0[1], log_f0[1])  # no voiced frame: left alone
    nan = match_f0_level(out, torch.tensor([float("nan"), np.log(300.0)]))
    assert torch.equal(nan.log_f0, log_f0) and torch.equal(nan.voicing_logits, logits)
