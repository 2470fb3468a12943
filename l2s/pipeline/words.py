"""When the lip-read words were said: word spans from the lip reader's greedy CTC path.

The pipeline reads lips with greedy CTC by default (``vsr_decoding: {beam_size: 0}``): the text is
the frame-wise best path with repeats merged and blanks dropped. Each emitted token's run of frames
on that path is where the reader saw it, so a word spans from the first frame of its first token to
the last frame of its last token; the frames between words are those where the path holds the blank.
They are the reader's evidence of when a word was mouthed, not a measurement of the speech's timing.
A beam-searched text has no such path: it gets no spans here (a forced alignment of the text on the
posteriors gives them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import torch

from l2s.config import FPS
from l2s.text.tokenizer import SPM_SPACE, Tokenizer


@dataclass(frozen=True)
class Span:
    """A labelled stretch of a clip, in seconds (a word, or a phoneme)."""

    start: float
    end: float
    label: str


def greedy_runs(log_probs: torch.Tensor, blank: int = 0) -> List[Tuple[int, int, int]]:
    """``(first, end, token)`` of each token the greedy CTC path emits, frames ``[first, end)``.

    Args:
        log_probs: ``(T, V)`` CTC log-posteriors of one clip.
    """
    path = log_probs.argmax(-1).tolist()
    runs: List[Tuple[int, int, int]] = []
    for t, token in enumerate(path):
        if token == blank:
            continue
        if runs and runs[-1][2] == token and runs[-1][1] == t:  # the same run goes on
            runs[-1] = (runs[-1][0], t + 1, token)
        else:
            runs.append((t, t + 1, token))
    return runs


def greedy_word_spans(log_probs: torch.Tensor, tokenizer: Tokenizer, offset_frames: int = 0,
                      fps: float = FPS) -> Tuple[Span, ...]:
    """The words of the greedy CTC text with the frames that emitted them, in seconds.

    Args:
        log_probs: ``(T, V)`` CTC log-posteriors of one clip (or chunk).
        tokenizer: the lip reader's tokenizer (characters, or SentencePiece pieces where ``▁`` starts a word).
        offset_frames: the clip's first frame in the whole video (a chunk's start).

    Returns:
        One :class:`Span` per word, in order; their labels joined by spaces are the greedy text.
    """
    skip = {tokenizer.blank_id, tokenizer.unk_id, tokenizer.eos_id}
    lower = bool(getattr(tokenizer, "upper_case_model", False))
    words: List[List] = []
    open_word = False
    for first, end, token in greedy_runs(log_probs, tokenizer.blank_id):
        if token in skip:
            continue
        piece = tokenizer.token_list[token].replace(SPM_SPACE, " ")
        if piece.startswith(" "):
            open_word = False
            piece = piece.strip()
        if not piece:
            continue
        if open_word:
            words[-1][1], words[-1][2] = end, words[-1][2] + piece
        else:
            words.append([first, end, piece])
            open_word = True
    return tuple(Span((offset_frames + a) / fps, (offset_frames + b) / fps, w.lower() if lower else w)
                 for a, b, w in words)


def spans_text(spans: Sequence[Span]) -> str:
    """The labels joined by spaces."""
    return " ".join(s.label for s in spans)
