"""Character-error-rate reward training of the lip reader's attention decoder: pseudo-convolutional policy
gradient (PCPG; Luo et al. 2020, "Pseudo-convolutional policy gradient for sequence-to-sequence lip-reading").

Teacher forcing trains the decoder on the true prefix and cross-entropy is not the error rate it is scored
on. PCPG samples outputs from the decoder itself and rewards each step by how much it lowered the edit
distance to the reference:

``r_t = (ED(y, o_{<t}) - ED(y, o_{<=t})) / |y|``, so that ``sum_t r_t = 1 - CER(o, y)``

(a right character earns 1/|y|, a wrong one 0 or less). The *pseudo-convolution* spreads each reward over
its neighbours with a normalised kernel of odd width ``kernel`` (``R = r * w``): a step is credited with the
consequences of the steps around it, which is what makes the paper's reward robust. The loss is
``-sum_t (R_t - b) log p(o_t | o_<t, x)`` over the sampled steps (eos included), divided by the batch size,
with ``b`` the batch mean of ``R`` (a constant baseline against the variance); the trainer adds it to the
hybrid cross-entropy loss with its weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from l2s.errors import InputError


@dataclass(frozen=True)
class PCPGOptions:
    """Settings of the policy-gradient term.

    Attributes:
        weight: the term's weight beside the hybrid loss (0 = off).
        kernel: width of the reward's pseudo-convolution (odd; 1 = the plain per-step reward).
        samples: sampled outputs per utterance.
        temperature: sampling temperature of the decoder's distribution.
        extra_tokens: a sample may run this many tokens past the reference's length before it is cut.
    """

    weight: float = 0.0
    kernel: int = 5
    samples: int = 2
    temperature: float = 1.0
    extra_tokens: int = 5

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise InputError(f"pcpg_weight must be >= 0, got {self.weight}")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise InputError(f"pcpg_kernel must be an odd width >= 1, got {self.kernel}")
        if self.samples < 1:
            raise InputError(f"pcpg_samples must be >= 1, got {self.samples}")
        if self.temperature <= 0:
            raise InputError(f"pcpg_temperature must be > 0, got {self.temperature}")
        if self.extra_tokens < 0:
            raise InputError(f"pcpg_extra_tokens must be >= 0, got {self.extra_tokens}")


def prefix_distances(hyp: Sequence[int], ref: Sequence[int]) -> np.ndarray:
    """``ED(ref, hyp[:t])`` for ``t = 0 .. len(hyp)``: the Levenshtein distance of each prefix of the
    hypothesis to the whole reference, ``(len(hyp) + 1,)``."""
    row = np.arange(len(ref) + 1, dtype=np.int64)  # D[0][j] = j
    out = [row[-1]]
    ref_arr = np.asarray(ref, dtype=np.int64)
    for tok in hyp:
        new = np.empty_like(row)
        new[0] = row[0] + 1
        sub = row[:-1] + (ref_arr != tok)
        # D[i][j] = min(D[i-1][j] + 1, D[i][j-1] + 1, D[i-1][j-1] + cost): the left term needs a scan
        best = np.minimum(row[1:] + 1, sub)
        for j in range(1, len(row)):
            new[j] = min(best[j - 1], new[j - 1] + 1)
        row = new
        out.append(row[-1])
    return np.asarray(out, dtype=np.float64)


def step_rewards(hyp: Sequence[int], ref: Sequence[int]) -> np.ndarray:
    """Per emitted token, then the end-of-sentence step: ``(len(hyp) + 1,)`` rewards summing to
    ``1 - CER`` (the end step earns 0: stopping changes no distance)."""
    dist = prefix_distances(hyp, ref)
    norm = max(1, len(ref))
    return np.append((dist[:-1] - dist[1:]) / norm, 0.0)


def pseudo_convolve(rewards: np.ndarray, kernel: int) -> np.ndarray:
    """Each step's reward spread over ``kernel`` neighbouring steps with triangular weights summing to 1,
    zero-padded at the ends (the sequence's total reward is kept away from the ends)."""
    if kernel == 1:
        return rewards.copy()
    half = kernel // 2
    weights = np.array([half + 1 - abs(k) for k in range(-half, half + 1)], dtype=np.float64)
    weights /= weights.sum()
    return np.convolve(rewards, weights, mode="same")


@torch.no_grad()
def sample_outputs(decoder, memory: torch.Tensor, memory_mask: torch.Tensor, sos: int, eos: int,
                   max_len: Sequence[int], temperature: float,
                   generator: Optional[torch.Generator] = None) -> List[List[int]]:
    """Ancestral samples from the attention decoder, one per row of ``memory`` (tokens without sos/eos).

    Args:
        decoder: a :class:`~l2s.models.vsr.transformer_decoder.TransformerDecoder`.
        memory: ``(N, T, D)`` encoder output; ``memory_mask`` ``(N, T)`` its valid frames.
        max_len: per row, the tokens after which a sample is cut (it then ends without eos).
    """
    n = memory.shape[0]
    ys = torch.full((n, 1), sos, dtype=torch.long, device=memory.device)
    done = torch.zeros(n, dtype=torch.bool)
    out: List[List[int]] = [[] for _ in range(n)]
    cache = None
    limit = torch.as_tensor(list(max_len))
    for step in range(int(limit.max())):
        log_probs, cache = decoder.forward_one_step(ys, memory, cache, memory_mask)
        probs = torch.softmax(log_probs / temperature, dim=-1)
        tokens = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1)
        for i in range(n):
            if done[i]:
                continue
            if int(tokens[i]) == eos:
                done[i] = True
            else:
                out[i].append(int(tokens[i]))
                if len(out[i]) >= int(limit[i]):
                    done[i] = True
        if bool(done.all()):
            break
        ys = torch.cat([ys, tokens.to(ys.device).unsqueeze(1)], dim=1)
    return out


def pcpg_loss(decoder, features: torch.Tensor, lengths: torch.Tensor, references: Sequence[Sequence[int]],
              sos: int, eos: int, options: PCPGOptions,
              generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, float]:
    """The policy-gradient term of a batch and the samples' mean CER.

    Args:
        decoder: the lip reader's attention decoder.
        features: ``(B, T, D)`` encoder output (with gradient).
        lengths: ``(B,)`` valid frames.
        references: the true token ids of each utterance.
    """
    k = options.samples
    memory = features.repeat_interleave(k, dim=0)
    mask = (torch.arange(features.shape[1], device=features.device)[None, :]
            < lengths.to(features.device)[:, None]).repeat_interleave(k, dim=0)
    refs = [list(r) for r in references for _ in range(k)]
    was_training = decoder.training
    decoder.eval()  # sample the decoder as it decodes (no dropout)
    samples = sample_outputs(decoder, memory.detach(), mask, sos, eos,
                             [len(r) + options.extra_tokens for r in refs], options.temperature, generator)
    decoder.train(was_training)
    rewards = [step_rewards(s, r) for s, r in zip(samples, refs)]
    returns = [pseudo_convolve(r, options.kernel) for r in rewards]
    cer = float(np.mean([1.0 - r.sum() for r in rewards]))
    baseline = float(np.concatenate(returns).mean())
    width = max(len(s) for s in samples) + 1
    ys_in = torch.full((len(samples), width), eos, dtype=torch.long, device=features.device)
    ys_in[:, 0] = sos
    targets = torch.full_like(ys_in, eos)
    advantage = torch.zeros(ys_in.shape, dtype=features.dtype, device=features.device)
    for i, (s, ret) in enumerate(zip(samples, returns)):
        if s:
            ys_in[i, 1:len(s) + 1] = torch.as_tensor(s)
            targets[i, :len(s)] = torch.as_tensor(s)
        # a cut sample never emitted eos: its last step is the last token, and no eos step is trained
        steps = len(s) + 1 if len(s) < len(refs[i]) + options.extra_tokens else len(s)
        advantage[i, :steps] = torch.as_tensor(ret[:steps] - baseline, dtype=features.dtype)
    log_probs = torch.log_softmax(decoder(ys_in, memory, mask), dim=-1)
    chosen = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return -(advantage * chosen).sum() / features.shape[0], cer
