"""CTC forced alignment: the Viterbi path is the best of all paths, fits the frames or refuses in one line."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from l2s.align.ctc import min_frames, token_spans, viterbi
from l2s.errors import InputError


def _collapse(labels):
    out, prev = [], None
    for x in labels:
        if x != prev and x != 0:
            out.append(x)
        prev = x
    return out


def _path_score(log_probs, path, targets):
    labels = [0 if k < 0 else targets[k] for k in path]
    return float(sum(log_probs[t, c] for t, c in enumerate(labels)))


@pytest.mark.parametrize("targets", [[1, 2], [2, 2], [1, 3, 1]])
def test_viterbi_finds_the_best_path_by_brute_force(targets):
    gen = torch.Generator().manual_seed(len(targets))
    frames, vocab = 6, 4
    log_probs = torch.randn(frames, vocab, generator=gen).log_softmax(-1)
    best = max(float(sum(log_probs[t, c] for t, c in enumerate(seq)))
               for seq in itertools.product(range(vocab), repeat=frames) if _collapse(seq) == targets)
    path = viterbi(log_probs, targets)
    labels = [0 if k < 0 else targets[k] for k in path]
    assert _collapse(labels) == targets
    assert _path_score(log_probs, path, targets) == pytest.approx(best, abs=1e-5)
    assert np.all(np.diff(path[path >= 0]) >= 0)  # monotonic in the targets


def test_spans_follow_a_clear_posterior():
    # tokens 1, 2, 3 light up on frames 1-2, 4, 6-8; blank elsewhere
    lab = [0, 1, 1, 0, 2, 0, 3, 3, 3, 0]
    log_probs = torch.full((len(lab), 4), -8.0)
    log_probs[torch.arange(len(lab)), torch.tensor(lab)] = -0.01
    path = viterbi(log_probs, [1, 2, 3])
    spans = token_spans(log_probs, [1, 2, 3], path)
    assert [(s.start, s.end) for s in spans] == [(1, 3), (4, 5), (6, 9)]
    assert all(s.confidence == pytest.approx(np.exp(-0.01), rel=1e-4) for s in spans)


def test_repeated_tokens_need_a_blank_between_them():
    assert min_frames([1, 1, 2, 2, 2]) == 8
    log_probs = torch.zeros(3, 3).log_softmax(-1)
    path = viterbi(log_probs, [1, 1])  # 3 frames: token, blank, token
    assert path.tolist() == [0, -1, 1]
    with pytest.raises(InputError, match="does not fit"):
        viterbi(torch.zeros(2, 3).log_softmax(-1), [1, 1])
    with pytest.raises(InputError, match="no token"):
        viterbi(log_probs, [])
