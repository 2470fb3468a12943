"""The weight average of the training stages (:mod:`l2s.train.ema`)."""

from __future__ import annotations

import pytest
import speechbrain as sb
import torch

from l2s.train.ema import WeightEMA


def _net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Dropout(0.5))


def test_first_update_copies_then_averages():
    net = _net(0)
    ema = WeightEMA(net, decay=0.75)
    with torch.no_grad():
        net[0].weight.fill_(2.0)
        net[1].running_mean.fill_(5.0)
    ema.update(net)  # the first step takes the weights as they are
    assert torch.equal(ema.model[0].weight, net[0].weight)
    with torch.no_grad():
        net[0].weight.fill_(6.0)
        net[1].running_mean.fill_(7.0)
    ema.update(net)
    assert torch.allclose(ema.model[0].weight, torch.full((4, 3), 0.75 * 2.0 + 0.25 * 6.0))
    assert torch.equal(ema.model[1].running_mean, torch.full((4,), 7.0))  # buffers are copied, not averaged
    assert not any(p.requires_grad for p in ema.model.parameters())


def test_copy_stays_in_eval_mode_and_refuses_bad_decay():
    ema = WeightEMA(_net(0), decay=0.9).train()
    assert not ema.model.training
    with pytest.raises(ValueError):
        WeightEMA(_net(0), decay=1.0)


def test_averaged_before_any_update_is_the_model_itself():
    net = _net(1)
    ema = WeightEMA(_net(2), decay=0.999)  # built from other weights: the average must not keep them
    avg = ema.averaged(net)
    assert all(torch.equal(a, b) for a, b in zip(avg.parameters(), net.parameters()))


def test_resume_from_a_checkpoint_without_the_average(tmp_path):
    """A run checkpointed before the average existed resumes; the average starts from the recovered weights."""
    old = _net(3)
    sb.utils.checkpoints.Checkpointer(tmp_path, recoverables={"model": old}).save_checkpoint()
    new = _net(4)
    ema = WeightEMA(new, decay=0.9)
    ckpt = sb.utils.checkpoints.Checkpointer(tmp_path, recoverables={"model": new})
    ckpt.add_recoverable("ema", ema, optional_load=True)
    assert ckpt.recover_if_possible() is not None
    assert int(ema.started) == 0
    assert all(torch.equal(a, b) for a, b in zip(ema.averaged(new).parameters(), old.parameters()))
    # and once saved with the average, a later recovery restores the average itself
    with torch.no_grad():
        new[0].weight.add_(1.0)
    ema.update(new)
    ckpt.save_checkpoint()
    again = WeightEMA(_net(5), decay=0.9)
    ckpt2 = sb.utils.checkpoints.Checkpointer(tmp_path, recoverables={"model": _net(6)})
    ckpt2.add_recoverable("ema", again, optional_load=True)
    ckpt2.recover_if_possible()
    assert int(again.started) == 1 and torch.equal(again.model[0].weight, ema.model[0].weight)
    again.reset()
    assert all(torch.equal(a, b) for a, b in zip(again.averaged(new).parameters(), new.parameters()))
