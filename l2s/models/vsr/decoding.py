"""Decoding for the hybrid CTC/attention lip reader: greedy CTC and joint CTC/attention beam search.

The beam search follows ESPnet's vectorised ``BatchBeamSearch`` as Auto-AVSR runs it (Watanabe et al.
2017, "Hybrid CTC/attention architecture for end-to-end speech recognition"; Seki et al. 2019, "Vectorized
beam search for CTC-attention-based speech recognition"), so a converted Auto-AVSR checkpoint gives the
same n-best lists (``tests/test_vsr_beam.py``):

1. every running hypothesis is scored by the decoder over the whole vocabulary (plus an optional
   language model and a length bonus);
2. a pre-beam keeps the ``floor(pre_beam_ratio * beam)`` best tokens by decoder score, and the CTC prefix
   score is computed for those only (every other token gets ``LOG_ZERO``); ``<eos>`` always gets its CTC
   score, the probability of the whole prefix;
3. the ``beam`` best (hypothesis, token) pairs over all hypotheses survive; those ending in ``<eos>`` leave
   the beam, so the beam refills from the remaining ones at the next step;
4. at the last step (``maxlen = T`` when ``maxlenratio`` is 0) ``<eos>`` is appended to every running
   hypothesis; with ``maxlenratio`` 0 the search also stops when ended hypotheses of the last three
   lengths all score 10 nats below the best one (ESPnet's ``end_detect``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Protocol, Sequence, Tuple

import torch

#: ESPnet's stand-in for log(0): finite so that differences of impossible scores stay finite.
LOG_ZERO = -1e10


@dataclass(frozen=True)
class BeamSearchOptions:
    """Joint CTC/attention beam search settings (defaults: Auto-AVSR's).

    Attributes:
        beam_size: hypotheses kept per step.
        ctc_weight: weight of the CTC prefix score; the decoder gets ``1 - ctc_weight``.
        lm_weight: weight of the language model score (used only when a model is given).
        length_bonus: score added per emitted token.
        pre_beam_ratio: CTC scores only the ``floor(ratio * beam)`` best tokens by decoder score.
        maxlenratio: maximum output length as a fraction of the frames; 0 = the frame count, with
            end detection.
    """

    beam_size: int = 40
    ctc_weight: float = 0.1
    lm_weight: float = 0.0
    length_bonus: float = 0.0
    pre_beam_ratio: float = 1.5
    maxlenratio: float = 0.0


@dataclass(frozen=True)
class Hypothesis:
    """A finished hypothesis.

    Attributes:
        yseq: token ids with the leading sos and the trailing eos.
        score: combined weighted score.
        scores: accumulated unweighted scores per scorer (``decoder``, ``ctc``, ``lm``, ``length_bonus``).
    """

    yseq: Tuple[int, ...]
    score: float
    scores: Dict[str, float] = field(default_factory=dict)

    @property
    def token_ids(self) -> List[int]:
        """The emitted tokens without sos and eos."""
        return [t for t in self.yseq[1:] if t != self.yseq[0]]


class LanguageModel(Protocol):
    """Optional language-model hook of the beam search."""

    def score(self, ys: torch.Tensor) -> torch.Tensor:
        """``(N, L)`` prefixes (sos first) -> ``(N, V)`` log-probabilities of the next token."""


class AttentionScorer(Protocol):
    """What the beam search needs from the decoder (:class:`l2s.models.vsr.transformer_decoder.TransformerDecoder`)."""

    def forward_one_step(self, ys: torch.Tensor, memory: torch.Tensor,
                         cache: Optional[List[torch.Tensor]] = None) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """``(N, L)`` prefixes and ``(N, T, D)`` memory -> ``(N, V)`` log-probs and a new cache."""


def greedy_ctc(log_probs: torch.Tensor, blank: int = 0) -> List[int]:
    """Best-path CTC decoding of one utterance: argmax per frame, merge repeats, drop blanks.

    Args:
        log_probs: ``(T, V)`` frame posteriors (log or not: only the argmax matters).
        blank: blank id.
    """
    best = log_probs.argmax(-1).tolist()
    return [tok for i, tok in enumerate(best) if tok != blank and (i == 0 or tok != best[i - 1])]


class CTCPrefixScorer:
    """CTC prefix scores ``log P(prefix + c ... | x)`` for many hypotheses and candidate tokens at once.

    The state of a hypothesis ``h`` is its forward variables ``r[t] = (log r^n_t(h), log r^b_t(h))``
    (paths of ``x[:t+1]`` emitting ``h`` and ending in a non-blank, resp. a blank) and its prefix score.

    Args:
        log_probs: ``(T, V)`` CTC log-posteriors of one utterance.
        blank: blank id.
        eos: end-of-sentence id (its score is the probability of the complete prefix).
    """

    def __init__(self, log_probs: torch.Tensor, blank: int, eos: int) -> None:
        self.x = log_probs
        self.blank = blank
        self.eos = eos
        self.length = log_probs.shape[0]

    def initial_state(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """``r (T, 2, 1)`` of the empty prefix and its score ``(1,)``."""
        r = torch.full((self.length, 2, 1), LOG_ZERO, dtype=self.x.dtype, device=self.x.device)
        r[:, 1, 0] = torch.cumsum(self.x[:, self.blank], 0)
        return r, torch.zeros(1, dtype=self.x.dtype, device=self.x.device)

    def score(self, prefix_len: int, last: torch.Tensor, r_prev: torch.Tensor, s_prev: torch.Tensor,
              ids: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Prefix scores of ``prefix + c`` for the candidate tokens ``ids``.

        Args:
            prefix_len: tokens in the prefixes (sos excluded).
            last: ``(N,)`` last token of each prefix.
            r_prev: ``(T, 2, N)`` forward variables of the prefixes.
            s_prev: ``(N,)`` prefix scores.
            ids: ``(N, S)`` candidate tokens per hypothesis.

        Returns:
            ``psi (N, V)``: full prefix scores, ``LOG_ZERO`` for blank and for tokens not in ``ids``
            except eos; and ``r (T, 2, N, S)``: forward variables of the extended prefixes.
        """
        n_hyps, n_ids = ids.shape
        x_tok = self.x[:, ids]  # (T, N, S)
        x_blank = self.x[:, self.blank].view(-1, 1, 1)
        r_sum = torch.logsumexp(r_prev, dim=1)  # (T, N)
        # A token equal to the prefix's last one needs a blank in between: only r^b paths extend it.
        same = ids == last.unsqueeze(1)
        phi = torch.where(same.unsqueeze(0), r_prev[:, 1].unsqueeze(2), r_sum.unsqueeze(2))  # (T, N, S)
        r = torch.full((self.length, 2, n_hyps, n_ids), LOG_ZERO, dtype=self.x.dtype, device=self.x.device)
        if prefix_len == 0:
            r[0, 0] = x_tok[0]
        start = max(prefix_len, 1)
        for t in range(start, self.length):
            r[t, 0] = torch.logaddexp(r[t - 1, 0], phi[t - 1]) + x_tok[t]
            r[t, 1] = torch.logaddexp(r[t - 1, 0], r[t - 1, 1]) + x_blank[t]
        # psi = sum over the frame t where c is first emitted: phi[t-1] + x[t, c], plus emission at frame 0.
        parts = torch.cat([phi[start - 1:self.length - 1] + x_tok[start:], r[start - 1, 0].unsqueeze(0)], dim=0)
        psi_ids = torch.logsumexp(parts, dim=0)  # (N, S)
        psi = torch.full((n_hyps, self.x.shape[1]), LOG_ZERO, dtype=self.x.dtype, device=self.x.device)
        psi.scatter_(1, ids, psi_ids)
        psi[:, self.eos] = r_sum[-1]
        psi[:, self.blank] = LOG_ZERO
        return psi, r


def end_detect(ended: Sequence[Tuple[int, float]], step: int, m: int = 3, d_end: float = -10.0) -> bool:
    """ESPnet's end detection: the best ended hypotheses of lengths ``step, step-1, ..., step-m+1``
    (counting sos and eos) all score ``d_end`` or more below the best ended one.

    Args:
        ended: ``(len(yseq), score)`` of the ended hypotheses.
        step: the current step.
    """
    if not ended:
        return False
    best = max(score for _, score in ended)
    count = 0
    for k in range(m):
        same = [score for length, score in ended if length == step - k]
        if same and max(same) - best < d_end:
            count += 1
    return count == m


@torch.no_grad()
def beam_search(decoder: AttentionScorer, memory: torch.Tensor, ctc_log_probs: Optional[torch.Tensor],
                sos: int, eos: int, blank: int = 0, options: BeamSearchOptions = BeamSearchOptions(),
                lm: Optional[LanguageModel] = None) -> List[Hypothesis]:
    """Joint CTC/attention beam search over one utterance.

    Args:
        decoder: the attention decoder.
        memory: ``(T, D)`` encoder output.
        ctc_log_probs: ``(T, V)`` CTC log-posteriors (None when ``ctc_weight`` is 0).
        sos, eos, blank: special token ids.
        options: search settings.
        lm: optional language model, weighted by ``options.lm_weight``.

    Returns:
        Ended hypotheses, best first.
    """
    frames = memory.shape[0]
    if options.maxlenratio == 0:
        maxlen = frames
    elif options.maxlenratio < 0:
        maxlen = -int(options.maxlenratio)
    else:
        maxlen = max(1, int(options.maxlenratio * frames))
    w_ctc = options.ctc_weight if ctc_log_probs is not None else 0.0
    w_dec = 1.0 - w_ctc
    use_lm = lm is not None and options.lm_weight != 0
    ctc = CTCPrefixScorer(ctc_log_probs, blank, eos) if w_ctc > 0 else None

    device = memory.device
    yseq = torch.full((1, 1), sos, dtype=torch.long, device=device)
    score = torch.zeros(1, dtype=memory.dtype, device=device)
    names = ["decoder"] + (["ctc"] if ctc else []) + (["lm"] if use_lm else []) + ["length_bonus"]
    scores = {name: torch.zeros(1, dtype=memory.dtype, device=device) for name in names}
    cache: Optional[List[torch.Tensor]] = None
    r_state, s_state = ctc.initial_state() if ctc else (None, None)
    ended: List[Hypothesis] = []

    for step in range(maxlen):
        n_hyps = yseq.shape[0]
        dec, new_cache = decoder.forward_one_step(yseq, memory.unsqueeze(0).expand(n_hyps, -1, -1), cache)
        vocab = dec.shape[1]
        step_scores = {"decoder": dec, "length_bonus": torch.ones_like(dec)}
        weighted = w_dec * dec + options.length_bonus * step_scores["length_bonus"]
        if use_lm:
            step_scores["lm"] = lm.score(yseq)
            weighted = weighted + options.lm_weight * step_scores["lm"]
        if ctc:
            pre_beam = int(options.pre_beam_ratio * options.beam_size)
            if w_dec > 0 and pre_beam < vocab:
                ids = torch.topk(dec, pre_beam, dim=-1)[1]
            else:
                ids = torch.arange(vocab, device=device).expand(n_hyps, -1)
            psi, r_new = ctc.score(step, yseq[:, -1], r_state, s_state, ids)
            step_scores["ctc"] = psi - s_state.unsqueeze(1)
            weighted = weighted + w_ctc * step_scores["ctc"]
        weighted = weighted + score.unsqueeze(1)

        top = weighted.view(-1).topk(min(options.beam_size, weighted.numel()))[1]
        prev, token = top // vocab, top % vocab
        yseq = torch.cat([yseq[prev], token.unsqueeze(1)], dim=1)
        score = weighted[prev, token]
        scores = {name: value[prev] + step_scores[name][prev, token] for name, value in scores.items()}
        cache = [c[prev] for c in new_cache]
        if ctc:
            # Column of the chosen token among the scored ids (tokens outside them only matter for eos,
            # which ends the hypothesis anyway).
            column = (ids[prev] == token.unsqueeze(1)).float().argmax(1)
            r_state = r_new[:, :, prev, column]
            s_state = psi[prev, token]

        if step == maxlen - 1:
            yseq = torch.cat([yseq, torch.full_like(yseq[:, :1], eos)], dim=1)
        is_end = yseq[:, -1] == eos
        for index in torch.nonzero(is_end).view(-1).tolist():
            ended.append(Hypothesis(yseq=tuple(yseq[index].tolist()), score=float(score[index]),
                                    scores={k: float(v[index]) for k, v in scores.items()}))
        keep = torch.nonzero(~is_end).view(-1)
        yseq, score = yseq[keep], score[keep]
        scores = {k: v[keep] for k, v in scores.items()}
        cache = [c[keep] for c in cache]
        if ctc:
            r_state, s_state = r_state[:, :, keep], s_state[keep]
        if options.maxlenratio == 0 and end_detect([(len(h.yseq), h.score) for h in ended], step):
            break
        if keep.numel() == 0:
            break
    return sorted(ended, key=lambda h: h.score, reverse=True)
