"""FrozenCache: frozen-network outputs computed once per utterance, padded batches rebuilt exactly."""

import torch

from l2s.train.frozen_cache import FrozenCache


def _net(x: torch.Tensor) -> torch.Tensor:
    return x * 2.0 + 1.0


def test_outputs_match_the_network_and_are_computed_once():
    calls = []
    feats = {"a": torch.randn(5, 3), "b": torch.randn(3, 3), "c": torch.randn(4, 3)}

    def batch(ids):
        lengths = torch.tensor([len(feats[i]) for i in ids])
        x = torch.zeros(len(ids), int(lengths.max()), 3)
        for k, i in enumerate(ids):
            x[k, : len(feats[i])] = feats[i]
        return x, lengths

    cache = FrozenCache(time_dim=1)
    for ids in (["a", "b"], ["b", "c"], ["c", "a", "b"]):
        x, lengths = batch(ids)

        def compute(idx):
            calls.append(len(idx))
            return _net(x[idx])

        out = cache(ids, lengths, compute, x.shape[1])
        assert out.shape == x.shape
        for k, i in enumerate(ids):
            n = len(feats[i])
            torch.testing.assert_close(out[k, :n], _net(feats[i]))
            assert not out[k, n:].any()  # padding is zeros
    assert calls == [2, 1]  # "a", "b" in the first batch, "c" in the second, nothing in the third


def test_channels_first_and_disabled():
    x = torch.randn(2, 80, 8)
    lengths = torch.tensor([8, 6])
    cache = FrozenCache(time_dim=-1)
    out = cache(["u", "v"], lengths, lambda idx: x[idx], 8)
    torch.testing.assert_close(out[1, :, :6], x[1, :, :6])
    assert not out[1, :, 6:].any()
    off = FrozenCache(time_dim=-1, enabled=False)
    torch.testing.assert_close(off(["u", "v"], lengths, lambda idx: x[idx] + 1, 8), x + 1)
    assert not off.store
