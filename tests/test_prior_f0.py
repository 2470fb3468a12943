"""F0 + voicing predictor: shapes, padding, speaker conditioning, targets, loss masking, decoding, learning."""

import dataclasses

import numpy as np
import pytest
import torch

from l2s.config import HOP_LENGTH, MEL_FRAMES_PER_VIDEO_FRAME, SAMPLE_RATE
from l2s.models.prior.f0 import (F0_MODEL_TINY, F0ModelConfig, F0Output, F0Predictor, F0Targets, decode_f0, f0_loss,
                                 f0_targets, predict_f0)

SMALL = dataclasses.replace(F0_MODEL_TINY, feature_dim=32, hidden_dim=32, speaker_dim=8, dropout=0.0)


def test_output_is_four_frames_per_video_frame():
    model = F0Predictor(SMALL).eval()
    out = model(torch.randn(2, 9, 32))
    assert out.log_f0.shape == out.voicing_logits.shape == out.mask.shape == (2, 9 * MEL_FRAMES_PER_VIDEO_FRAME)
    assert torch.isfinite(out.log_f0).all() and out.mask.all()


def test_padding_does_not_change_valid_frames():
    model = F0Predictor(SMALL).eval()
    short = torch.randn(1, 6, 32)
    padded = torch.cat([short, torch.randn(1, 4, 32) * 10], dim=1)
    other = torch.randn(1, 10, 32)
    alone = model(short)
    both = model(torch.cat([padded, other]), lengths=torch.tensor([6, 10]))
    n = 6 * MEL_FRAMES_PER_VIDEO_FRAME
    assert torch.allclose(both.log_f0[0, :n], alone.log_f0[0], atol=1e-5)
    assert torch.allclose(both.voicing_logits[0, :n], alone.voicing_logits[0], atol=1e-5)
    assert not both.mask[0, n:].any() and both.mask[1].all()


def test_speaker_embedding_conditions_and_none_uses_null():
    model = F0Predictor(SMALL).eval()
    feats = torch.randn(2, 5, 32)
    a = model(feats, speaker=torch.randn(2, 8)).log_f0
    b = model(feats, speaker=torch.randn(2, 8)).log_f0
    null = model(feats).log_f0
    assert not torch.allclose(a, b) and not torch.allclose(a, null)
    with pytest.raises(ValueError):
        model(feats, speaker=torch.randn(2, 7))


def test_targets_from_world_match_a_known_tone():
    n_frames = 40
    t = np.arange(n_frames * HOP_LENGTH) / SAMPLE_RATE
    tone = 0.5 * np.sin(2 * np.pi * 130.0 * t)
    silence = np.zeros(25 * HOP_LENGTH)
    targets = f0_targets([tone, silence], num_frames=[n_frames, 25])
    assert targets.log_f0.shape == (2, n_frames)
    assert targets.mask[0].all() and targets.mask[1, :25].all() and not targets.mask[1, 25:].any()
    assert not targets.voiced[1].any()
    inner = targets.f0_hz[0, 3:-3]
    assert targets.voiced[0, 3:-3].all()
    assert torch.allclose(inner, torch.full_like(inner, 130.0), rtol=0.01)


def test_loss_ignores_f0_on_unvoiced_and_padding_frames():
    log_f0 = torch.full((1, 8), 5.0)
    logits = torch.zeros(1, 8)
    mask = torch.ones(1, 8, dtype=torch.bool)
    mask[:, 6:] = False
    voiced = torch.tensor([[True, True, True, False, False, True, True, True]])
    targets = F0Targets(log_f0=torch.where(voiced, torch.full((1, 8), 5.2), torch.zeros(1, 8)), voiced=voiced,
                        mask=mask)
    base = f0_loss(F0Output(log_f0, logits, mask), targets)
    assert base.log_f0_l1.item() == pytest.approx(0.2, abs=1e-6)
    wild = log_f0.clone()
    wild[:, 3:5] = -50.0  # unvoiced frames
    wild[:, 6:] = 99.0  # padding (voiced in the target, but outside the mask)
    moved = f0_loss(F0Output(wild, logits, mask), targets)
    assert moved.log_f0_l1.item() == pytest.approx(base.log_f0_l1.item())
    assert base.voicing_bce.item() == pytest.approx(np.log(2.0), abs=1e-6)
    assert base.total.item() == pytest.approx(base.log_f0_l1.item() + base.voicing_bce.item())


def test_decode_zeroes_unvoiced_and_clamps_to_contract_range():
    out = F0Output(log_f0=torch.log(torch.tensor([[20.0, 150.0, 150.0, 900.0]])),
                   voicing_logits=torch.tensor([[5.0, 5.0, -5.0, 5.0]]), mask=torch.ones(1, 4, dtype=torch.bool))
    f0, voiced = decode_f0(out)
    assert voiced.tolist() == [[True, True, False, True]]
    assert torch.allclose(f0, torch.tensor([[60.0, 150.0, 0.0, 500.0]]))


def test_predictor_learns_a_contour_from_features():
    torch.manual_seed(0)
    cfg = F0ModelConfig(feature_dim=16, hidden_dim=32, num_layers=2, rnn_layers=1, speaker_dim=4, dropout=0.0)
    model = F0Predictor(cfg)
    feats = torch.randn(2, 10, 16)
    t_m = 10 * MEL_FRAMES_PER_VIDEO_FRAME
    f0 = 120.0 + 40.0 * torch.sin(torch.linspace(0, 3, t_m))[None].repeat(2, 1)
    voiced = torch.ones(2, t_m, dtype=torch.bool)
    voiced[:, 12:18] = False
    targets = F0Targets(log_f0=torch.where(voiced, f0.log(), torch.zeros_like(f0)), voiced=voiced,
                        mask=torch.ones_like(voiced))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = f0_loss(model(feats), targets).total.item()
    for _ in range(60):
        loss = f0_loss(model(feats), targets).total
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first / 4
    hz, vo = predict_f0(model.eval(), feats)
    assert (vo == voiced).float().mean() > 0.9
    both = vo & voiced
    assert ((hz[both] / f0[both] - 1).abs().mean()) < 0.1
