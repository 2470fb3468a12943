"""CTC forced alignment: the best frame path of a known token sequence (Viterbi).

``torchaudio.functional.forced_align`` needs torchaudio's compiled extension, which our CPU install
removes (see the README's set-up), so the Viterbi search is written here once, in torch. It runs over
the usual CTC trellis (Graves et al. 2006): the targets interleaved with blanks, ``S = 2 L + 1`` states,
each frame either staying in its state, moving to the next, or skipping a blank between two different
tokens. The loop is over frames and vectorised over states: a 20 s clip is 500 frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Union

import numpy as np
import torch

from l2s.errors import InputError


@dataclass(frozen=True)
class TokenSpan:
    """Where one target token sits on the frame axis.

    Attributes:
        index: its position in the target sequence.
        token: its id.
        start: first frame.
        end: one past its last frame.
        confidence: the mean posterior of the token over its frames.
    """

    index: int
    token: int
    start: int
    end: int
    confidence: float


def min_frames(targets: Sequence[int]) -> int:
    """Frames a CTC path needs for ``targets``: one per token, plus a blank between two equal tokens."""
    targets = list(targets)
    return len(targets) + sum(a == b for a, b in zip(targets, targets[1:]))


@torch.no_grad()
def viterbi(log_probs: torch.Tensor, targets: Union[Sequence[int], torch.Tensor], blank: int = 0) -> np.ndarray:
    """The most likely CTC path of ``targets`` through ``log_probs``.

    Args:
        log_probs: ``(T, V)`` frame log-posteriors (log-softmax over the vocabulary).
        targets: ``(L,)`` token ids, none of them ``blank``.
        blank: the blank id.

    Returns:
        ``(T,)`` int64: the index in ``targets`` of the token each frame emits, -1 on blank frames.

    Raises:
        InputError: the text cannot fit the frames (more tokens than the frames allow), or is empty.
    """
    tgt = torch.as_tensor(targets, dtype=torch.long).reshape(-1)
    num_frames, length = int(log_probs.shape[0]), int(tgt.numel())
    if length == 0:
        raise InputError("nothing to align: the text has no token")
    if bool((tgt == blank).any()):
        raise ValueError("a target token is the blank")
    need = min_frames(tgt.tolist())
    if need > num_frames:
        raise InputError(f"the text does not fit the video: its {length} tokens need at least {need} frames "
                         f"({need / 25:.2f} s at 25 fps), the clip has {num_frames}")
    lp = log_probs.detach().float().cpu()
    states = 2 * length + 1
    ext = torch.full((states,), blank, dtype=torch.long)
    ext[1::2] = tgt
    emit = lp[:, ext]  # (T, S)
    # a blank may be skipped between two different tokens only
    skip = torch.zeros(states, dtype=torch.bool)
    skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])
    neg = torch.tensor(float("-inf"))
    alpha = torch.full((states,), float("-inf"))
    alpha[:2] = emit[0, :2]
    back = torch.zeros((num_frames, states), dtype=torch.int8)
    pad1 = torch.full((1,), float("-inf"))
    pad2 = torch.full((2,), float("-inf"))
    for t in range(1, num_frames):
        prev1 = torch.cat([pad1, alpha[:-1]])
        prev2 = torch.where(skip, torch.cat([pad2, alpha[:-2]]), neg)
        best, step = torch.stack([alpha, prev1, prev2]).max(0)
        alpha = best + emit[t]
        back[t] = step.to(torch.int8)
    # the path ends in the last token or the blank after it
    state = states - 1 if alpha[-1] >= alpha[-2] else states - 2
    if not bool(torch.isfinite(alpha[state])):
        raise InputError("the text cannot be aligned to the video (no path has a finite score)")
    back_np = back.numpy()
    path = np.empty(num_frames, dtype=np.int64)
    for t in range(num_frames - 1, -1, -1):
        path[t] = state
        state -= int(back_np[t, state])
    return np.where(path % 2 == 1, (path - 1) // 2, -1)


def token_spans(log_probs: torch.Tensor, targets: Sequence[int], path: np.ndarray) -> List[TokenSpan]:
    """The frames of each target token on a :func:`viterbi` path, with its mean posterior there.

    Args:
        log_probs: ``(T, V)`` the log-posteriors the path was found on.
        targets: ``(L,)`` token ids.
        path: ``(T,)`` the path (token index per frame, -1 blank).
    """
    targets = [int(t) for t in targets]
    probs = log_probs.detach().float().cpu().exp().numpy()
    frames = np.arange(len(path))
    spans: List[TokenSpan] = []
    for k, tok in enumerate(targets):
        own = frames[path == k]
        if own.size == 0:  # cannot happen on a path of all the targets; keep the contract explicit
            raise ValueError(f"token {k} has no frame on the path")
        spans.append(TokenSpan(index=k, token=tok, start=int(own[0]), end=int(own[-1]) + 1,
                               confidence=float(probs[own, tok].mean())))
    return spans
