"""The ``ctc`` guide: shapes, padding, differentiable log-likelihood, overfitting, sampler plug-in, checkpoints."""

from __future__ import annotations

import pytest
import torch

from l2s.arch import load_model, save_model
from l2s.diffusion.sampler import loss_gradient
from l2s.diffusion.schedules import NoiseScheduleConfig, check_schedule
from l2s.diffusion.steps import q_sample
from l2s.errors import ModelError
from l2s.models.guide.ctc import CTCGuide, CTCGuideConfig, guidance_loss, pad_tokens
from l2s.text.tokenizer import CharTokenizer

CFG = CTCGuideConfig(d_model=32, heads=2, ffn=64, layers=2, conv_kernel=5, step_dim=16, dropout=0.0)
TEXTS = ("bin blue", "lay red now")


def _mels(frames: int = 48) -> torch.Tensor:
    """Two distinct smooth 'utterances' in model space."""
    gen = torch.Generator().manual_seed(3)
    return torch.tanh(torch.randn(2, 80, frames, generator=gen).cumsum(-1) / 6)


def test_shapes_and_lengths():
    guide = CTCGuide(CFG).eval()
    log_probs, out_lengths = guide(torch.randn(2, 80, 50), torch.tensor([3, 200]), torch.tensor([50, 31]))
    assert log_probs.shape == (2, 25, 31) and out_lengths.tolist() == [25, 16]
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(2, 25), atol=1e-5)
    four = CTCGuide(CTCGuideConfig(**{**CFG.__dict__, "subsampling": 4})).eval()
    assert four(torch.randn(1, 80, 50), torch.tensor([0]))[0].shape[1] == 13


def test_padding_invariance():
    guide = CTCGuide(CFG).eval()
    x = torch.randn(2, 80, 40)
    alone, n = guide(x[1:, :, :26], torch.tensor([5]))
    x[1, :, 26:] = 50.0
    batched, lengths = guide(x, torch.tensor([9, 5]), torch.tensor([40, 26]))
    assert int(lengths[1]) == int(n[0]) == 13
    assert torch.allclose(batched[1, :13], alone[0], atol=1e-4)


def test_log_likelihood_gradient_is_finite_and_nonzero():
    guide = CTCGuide(CFG).eval()
    tokens, token_lengths = pad_tokens([CharTokenizer().encode(s) for s in TEXTS])
    x = torch.randn(2, 80, 48, requires_grad=True)
    ll = guide.log_likelihood(x, torch.tensor([10, 250]), tokens, None, token_lengths)
    assert ll.shape == (2,) and bool(torch.isfinite(ll).all()) and bool((ll < 0).all())
    (grad,) = torch.autograd.grad(ll.sum(), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    # the sampler's own gradient helper, through guidance_loss
    loss, g2 = loss_gradient(guidance_loss(guide, tokens, None, token_lengths), x.detach(),
                             torch.tensor([[10.0], [250.0]]))
    assert torch.allclose(loss, -ll.detach().mean()) and torch.allclose(g2, -grad / 2, atol=1e-6)


def test_overfits_two_utterances(tmp_path):
    torch.manual_seed(0)
    tok = CharTokenizer()
    guide = CTCGuide(CFG).train()
    schedule = guide.schedule()
    mel = _mels()
    tokens, token_lengths = pad_tokens([tok.encode(s) for s in TEXTS])
    opt = torch.optim.Adam(guide.parameters(), lr=3e-3)

    def loss_at(t_value: int) -> float:
        guide.eval()
        with torch.no_grad():
            t = torch.full((2,), t_value)
            x = q_sample(mel, t, schedule, torch.randn(mel.shape, generator=torch.Generator().manual_seed(0)))
            value = float(guide.ctc_loss(x, t, tokens, None, token_lengths).mean())
        guide.train()
        return value

    before = loss_at(50)
    for _ in range(100):
        t = torch.randint(0, 100, (2,))
        loss = guide.ctc_loss(q_sample(mel, t, schedule), t, tokens, None, token_lengths).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = loss_at(50)
    assert after < 0.5 * before, (before, after)
    guide.eval()
    hyps = [tok.decode(ids) for ids in guide.greedy(q_sample(mel, torch.tensor([0, 0]), schedule), 0)]
    assert hyps == list(TEXTS)
    loaded = load_model(save_model(guide, tmp_path / "guide"), "guide")
    assert loaded.config == guide.config
    check_schedule(loaded.config.schedule, NoiseScheduleConfig())
    with pytest.raises(ModelError, match="noise schedule"):
        check_schedule(loaded.config.schedule, NoiseScheduleConfig(kind="cosine"))
    x = torch.randn(1, 80, 30)
    assert torch.equal(loaded(x, torch.tensor([1]))[0], guide(x, torch.tensor([1]))[0])
