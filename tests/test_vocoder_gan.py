"""Discriminators and GAN losses for vocoder training: shapes, zeros where they must be, gradients."""

import torch

from l2s.config import HOP_LENGTH, N_MELS
from l2s.vocoder.discriminators import MultiPeriodDiscriminator, MultiResolutionDiscriminator, PeriodDiscriminator
from l2s.vocoder.hifigan import HIFIGAN_TINY, HiFiGAN
from l2s.vocoder.losses import (MelL1Loss, discriminator_loss, feature_matching_loss, generator_adversarial_loss,
                                generator_loss, judge_all)


def test_period_discriminator_folds_by_period():
    d = PeriodDiscriminator(5, channels=(4, 8, 8))
    logits, maps = d(torch.randn(2, 1003))  # not a multiple of the period: padded
    assert logits.dim() == 2 and logits.shape[0] == 2
    assert len(maps) == 4 and all(m.shape[-1] == 5 for m in maps)


def test_discriminators_shapes_and_batch_independence():
    wav = torch.randn(2, 1600)
    cases = ((MultiPeriodDiscriminator(channels=(8, 16, 32, 32, 32)), 5, 6),
             (MultiResolutionDiscriminator(channels=8), 3, 6))
    for disc, n_sub, n_maps in cases:
        with torch.no_grad():
            out = disc(wav)
            single = disc(wav[1:])
        assert len(out) == n_sub
        for (logits, maps), (logits1, _) in zip(out, single):
            assert logits.shape[0] == 2 and len(maps) == n_maps
            assert torch.allclose(logits[1:], logits1, atol=1e-5)


def test_mpd_size_matches_hifigan():
    # HiFi-GAN's MPD (periods 2, 3, 5, 7, 11; channels 32..1024) has 41.1 M parameters.
    n = sum(p.numel() for p in MultiPeriodDiscriminator().parameters())
    assert abs(n - 41.1e6) < 0.05e6


def test_losses_vanish_at_their_optimum():
    ones, zeros = torch.ones(2, 7), torch.zeros(2, 7)
    maps = [torch.randn(2, 3, 5)]
    assert discriminator_loss([(ones, maps)], [(zeros, maps)]) == 0
    assert discriminator_loss([(zeros, maps)], [(ones, maps)]) == 2
    assert generator_adversarial_loss([(ones, maps)]) == 0
    assert feature_matching_loss([(ones, maps)], [(zeros, maps)]) == 0
    wav = torch.randn(1, 3200)
    assert MelL1Loss()(wav, wav) == 0
    assert MelL1Loss()(wav, 0.5 * wav) > 0.5  # level matters (ln 2 = 0.69 where above the floor)


def test_generator_step_has_gradients():
    gen = HiFiGAN(HIFIGAN_TINY)
    discs = [MultiPeriodDiscriminator(periods=(2, 3), channels=(8, 16, 16)), MultiResolutionDiscriminator(channels=8)]
    mel = torch.randn(2, N_MELS, 8) - 4.0
    real = 0.1 * torch.randn(2, 8 * HOP_LENGTH)
    fake = gen(mel)
    d_loss = discriminator_loss(judge_all(discs, real), judge_all(discs, fake.detach()))
    d_loss.backward()
    assert all(p.grad is not None for d in discs for p in d.parameters())
    assert not any(p.grad is not None for p in gen.parameters())
    for d in discs:
        d.zero_grad()
    terms = generator_loss(judge_all(discs, real), judge_all(discs, fake), MelL1Loss()(fake, real))
    assert set(terms) == {"total", "adversarial", "feature_matching", "mel"}
    terms["total"].backward()
    grads = [p.grad for p in gen.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert gen.conv_pre.weight_v.grad.abs().sum() > 0
