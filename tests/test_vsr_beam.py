"""Beam search: Auto-AVSR's n-best lists on the fixture model, and the CTC prefix scorer against brute force."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch

from l2s.models.vsr.convert import convert_state_dict, infer_config, load_checkpoint
from l2s.models.vsr.decoding import LOG_ZERO, BeamSearchOptions, CTCPrefixScorer, beam_search, end_detect
from l2s.models.vsr import VSRModel
from tests.conftest import fixture_dir


@pytest.fixture(scope="module")
def small():
    from safetensors.torch import load_file

    root = fixture_dir("auto_avsr")
    state_dict = convert_state_dict(load_checkpoint(root / "small.safetensors"))
    model = VSRModel(infer_config({k: tuple(v.shape) for k, v in state_dict.items()}))
    model.load_state_dict(state_dict, strict=True)
    return model.eval(), load_file(str(root / "small.io.safetensors")), json.loads(
        (root / "small.decode.json").read_text())


@pytest.mark.parametrize("beam", [10, 40])
@pytest.mark.parametrize("item", [0, 1])
def test_nbest_matches_auto_avsr(small, beam, item):
    model, io, decode = small
    ref = decode["single"][item][f"beam{beam}"]
    with torch.no_grad():
        enc = model.encode_video(io["input.video"][item:item + 1, :int(io["input.lengths"][item])])[0]
        hyps = beam_search(model.decoder, enc, model.ctc(enc.unsqueeze(0))[0], model.sos, model.eos, 0,
                           BeamSearchOptions(beam_size=beam))
    assert len(hyps) == ref["n_ended_hyps"]
    for ours, theirs in zip(hyps, ref["nbest_top5"]):
        assert list(ours.yseq) == theirs["yseq"]
        assert ours.score == pytest.approx(theirs["score"], abs=1e-3)
        for name in ("decoder", "ctc"):
            assert ours.scores[name] == pytest.approx(theirs["scores"][name], abs=1e-3)
    assert hyps[0].token_ids == ref["best_tokens_without_sos_eos"]


def _ctc_prob(log_probs: torch.Tensor, labels, prefix_only: bool) -> float:
    """Sum over every frame labelling that collapses to ``labels`` (or starts with them) by enumeration."""
    frames, vocab = log_probs.shape
    total = 0.0
    for path in itertools.product(range(vocab), repeat=frames):
        collapsed = [t for i, t in enumerate(path) if t != 0 and (i == 0 or t != path[i - 1])]
        if prefix_only:
            # P(prefix ...): the labels are emitted, the first frame of the last one being in the path.
            hit = collapsed[:len(labels)] == list(labels)
        else:
            hit = collapsed == list(labels)
        if hit:
            total += math.exp(sum(float(log_probs[i, t]) for i, t in enumerate(path)))
    return total


def test_ctc_prefix_scores_against_enumeration():
    torch.manual_seed(3)
    frames, vocab, eos = 5, 4, 3
    log_probs = torch.log_softmax(torch.randn(frames, vocab, dtype=torch.float64), -1)
    scorer = CTCPrefixScorer(log_probs, blank=0, eos=eos)
    r, s = scorer.initial_state()
    ids = torch.tensor([[1, 2]])
    psi, r_new = scorer.score(0, torch.tensor([eos]), r, s, ids)
    for k, tok in enumerate([1, 2]):
        assert math.exp(psi[0, tok]) == pytest.approx(_ctc_prob(log_probs, [tok], True), rel=1e-9)
    assert math.exp(psi[0, eos]) == pytest.approx(_ctc_prob(log_probs, [], False), rel=1e-9)
    assert psi[0, 0] == LOG_ZERO
    # Extend the prefix [1] by 1 (needs a blank between) and by 2; eos closes [1].
    psi2, _ = scorer.score(1, torch.tensor([1]), r_new[:, :, :, 0], psi[:, 1], torch.tensor([[1, 2]]))
    assert math.exp(psi2[0, 1]) == pytest.approx(_ctc_prob(log_probs, [1, 1], True), rel=1e-9)
    assert math.exp(psi2[0, 2]) == pytest.approx(_ctc_prob(log_probs, [1, 2], True), rel=1e-9)
    assert math.exp(psi2[0, eos]) == pytest.approx(_ctc_prob(log_probs, [1], False), rel=1e-9)


def test_end_detect():
    assert not end_detect([], 5)
    ended = [(4, -1.0), (5, -20.0), (6, -20.0), (7, -20.0)]
    assert end_detect(ended, 7)  # lengths 7, 6, 5 all 19 nats below the best
    assert not end_detect(ended, 6)  # length 4 holds the best itself
