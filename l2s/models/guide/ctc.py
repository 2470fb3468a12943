"""l2s's guide (the ``ctc`` architecture of the ``guide`` stage): a CTC recogniser of characters over NOISY
model-space mels, as LipVoicer's guidance classifier.

``x_t (B, 80, T_m)`` -> k=3 stride-2 convs (time / ``subsampling``) -> conformer blocks of
:mod:`l2s.models.vsr.conformer`, each with a projection of the diffusion-step embedding added to its input
-> Linear -> log-probabilities ``(B, T', V)`` over :class:`~l2s.text.tokenizer.CharTokenizer` (blank 0).
Trained on ``x_t = sqrt(abar_t) mel + sqrt(1 - abar_t) eps`` for ``t < t_max`` of the denoiser's schedule.

For guidance the sampler needs ``d log p(text | x_t) / d x_t``: :meth:`CTCGuide.log_likelihood` is
``-CTC`` summed per utterance, and :func:`guidance_loss` binds the text into the sampler's ``LossFn``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from l2s.arch import Architecture
from l2s.config import N_MELS
from l2s.diffusion.sampler import LossFn
from l2s.diffusion.schedules import DiffusionSchedule, NoiseScheduleConfig, build_schedule
from l2s.diffusion.steps import StepEmbedding, as_step_vector
from l2s.errors import InputError
from l2s.features.mel import mel_mask
from l2s.models.guide.base import TokenGuide
from l2s.models.vsr.conformer import ConformerEncoder
from l2s.models.vsr.decoding import greedy_ctc

__all__ = ["CTCGuide", "CTCGuideConfig", "guidance_loss", "pad_tokens", "ARCHITECTURE"]

BLANK = 0


@dataclass(frozen=True)
class CTCGuideConfig:
    """CTC recogniser over noisy mels (:class:`CTCGuide`).

    Attributes:
        vocab_size: output tokens ``V`` (``CharTokenizer``: 31, blank 0).
        d_model: conformer width.
        heads: attention heads.
        ffn: feed-forward hidden units.
        layers: conformer blocks (each gets the step embedding added to its input).
        conv_kernel: conformer depthwise kernel (odd).
        subsampling: time reduction of the conv front-end (2 or 4; 2 keeps 50 frames/s for characters).
        step_dim: sinusoidal step embedding width (even).
        dropout: dropout of the blocks.
        t_max: trained (and meaningful) for steps ``t < t_max``.
        schedule: the diffusion schedule of the mels it reads (the generator's).
    """

    vocab_size: int = 31
    d_model: int = 96
    heads: int = 4
    ffn: int = 256
    layers: int = 3
    conv_kernel: int = 15
    subsampling: int = 2
    step_dim: int = 64
    dropout: float = 0.1
    t_max: int = 350
    schedule: NoiseScheduleConfig = field(default_factory=NoiseScheduleConfig)

    def __post_init__(self) -> None:
        if self.subsampling not in (2, 4):
            raise ValueError(f"subsampling must be 2 or 4, got {self.subsampling}")


CTC_GUIDE_TINY = CTCGuideConfig()
CTC_GUIDE_BASE = CTCGuideConfig(d_model=256, heads=4, ffn=1024, layers=8, conv_kernel=31, step_dim=128)
CTC_GUIDE_MICRO = replace(CTC_GUIDE_TINY, d_model=16, heads=2, ffn=32, layers=1, conv_kernel=7, step_dim=16)
CTC_GUIDE_PRESETS = {"tiny": CTC_GUIDE_TINY, "base": CTC_GUIDE_BASE, "micro": CTC_GUIDE_MICRO}


def _halve(lengths: torch.Tensor) -> torch.Tensor:
    """Output length of a k=3, stride-2, pad-1 convolution."""
    return torch.div(lengths - 1, 2, rounding_mode="floor") + 1


class CTCGuide(nn.Module):
    """Step-conditioned CTC recogniser over noisy mels.

    Args:
        config: sizes (:data:`CTC_GUIDE_TINY` / :data:`CTC_GUIDE_BASE`), ``t_max`` and the schedule.
    """

    def __init__(self, config: CTCGuideConfig = CTCGuideConfig()):
        super().__init__()
        self.config = config
        d = config.d_model
        self.step = StepEmbedding(config.step_dim, d)
        n_convs = 1 if config.subsampling == 2 else 2
        self.subsample = nn.ModuleList(nn.Conv1d(N_MELS if i == 0 else d, d, 3, stride=2, padding=1)
                                       for i in range(n_convs))
        self.encoder = ConformerEncoder(d, config.heads, config.ffn, config.layers, config.conv_kernel,
                                        config.dropout, config.dropout, 0.0, mask_conv_padding=True)
        self.block_steps = nn.ModuleList(nn.Linear(d, d) for _ in range(config.layers))
        self.head = nn.Linear(d, config.vocab_size)

    def schedule(self) -> DiffusionSchedule:
        """The schedule of the noisy mels it was trained on."""
        return build_schedule(self.config.schedule)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """``(B,)`` mel frames -> ``(B,)`` output frames."""
        for _ in self.subsample:
            lengths = _halve(lengths)
        return lengths

    def forward(self, x_t: torch.Tensor, t: torch.Tensor,
                lengths: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities of the tokens.

        Args:
            x_t: ``(B, 80, T_m)`` noisy model-space mel.
            t: diffusion steps, ``(B,)``, ``(B, 1)`` or a scalar.
            lengths: ``(B,)`` valid mel frames, or None.

        Returns:
            ``log_probs (B, T', V)`` and ``out_lengths (B,)``.
        """
        states, lengths = self.encode(x_t, t, lengths)
        return torch.log_softmax(self.head(states), dim=-1), lengths

    def encode(self, x_t: torch.Tensor, t: torch.Tensor,
               lengths: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """The encoder's states before the token head, ``(B, T', D)``, and ``out_lengths (B,)`` (what a
        lip reader distilled from this recogniser matches; arguments as :meth:`forward`)."""
        if x_t.dim() != 3 or x_t.shape[1] != N_MELS:
            raise InputError(f"x_t must be (B, {N_MELS}, T), got {tuple(x_t.shape)}")
        b, _, frames = x_t.shape
        if lengths is None:
            lengths = torch.full((b,), frames, dtype=torch.long, device=x_t.device)
        lengths = lengths.to(x_t.device)
        emb = self.step(as_step_vector(t, b, x_t.device))
        h = x_t
        for conv in self.subsample:
            h = F.silu(conv(h * mel_mask(lengths, h.shape[-1], b, h.device)))
            lengths = _halve(lengths)
        mask = mel_mask(lengths, h.shape[-1], b, h.device)
        h = (h * mask).transpose(1, 2)  # (B, T', D)
        key_mask = mask.bool()  # (B, 1, T')
        enc = self.encoder
        h, pos_emb = enc.embed(h)
        for block, step_proj in zip(enc.encoders, self.block_steps):
            h = block(h + step_proj(emb)[:, None, :], pos_emb, key_mask, key_mask[:, 0])
        return enc.after_norm(h), lengths

    def ctc_loss(self, x_t: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor,
                 lengths: Optional[torch.Tensor] = None, token_lengths: Optional[torch.Tensor] = None,
                 zero_infinity: bool = True) -> torch.Tensor:
        """``(B,)`` CTC negative log-likelihood per utterance (summed over its frames).

        Args:
            tokens: ``(B, S)`` token ids (padding past ``token_lengths`` is ignored).
            token_lengths: ``(B,)``; all ``S`` when None.
            zero_infinity: an impossible alignment (text too long for the clip) gives 0 and no gradient.
        """
        log_probs, out_lengths = self(x_t, t, lengths)
        if token_lengths is None:
            token_lengths = torch.full((tokens.shape[0],), tokens.shape[1], dtype=torch.long)
        targets = tokens.clamp_min(0).to(x_t.device)
        return F.ctc_loss(log_probs.transpose(0, 1), targets, out_lengths, token_lengths.to(x_t.device),
                          blank=BLANK, reduction="none", zero_infinity=zero_infinity)

    def log_likelihood(self, x_t: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor,
                       lengths: Optional[torch.Tensor] = None,
                       token_lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``(B,)`` ``log p(tokens | x_t)`` (minus the CTC loss; ``-inf`` when no alignment fits),
        differentiable with respect to ``x_t``."""
        return -self.ctc_loss(x_t, t, tokens, lengths, token_lengths, zero_infinity=False)

    @torch.no_grad()
    def greedy(self, x_t: torch.Tensor, t: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> List[List[int]]:
        """Greedy CTC token ids per utterance."""
        log_probs, out_lengths = self(x_t, t, lengths)
        return [greedy_ctc(lp[: int(n)], BLANK) for lp, n in zip(log_probs, out_lengths)]


def guidance_loss(guide: nn.Module, tokens: torch.Tensor, lengths: Optional[torch.Tensor] = None,
                  token_lengths: Optional[torch.Tensor] = None) -> LossFn:
    """The sampler's ``asr_loss``: ``(x (B, 80, T), t (B, 1)) -> mean CTC loss`` toward ``tokens``.

    As LipVoicer: per-utterance CTC (infinite losses zeroed) averaged over the batch; the sampler
    rescales the gradient, so only its direction matters.
    """
    def loss(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return guide.ctc_loss(x, t, tokens, lengths, token_lengths).mean()

    return loss


def pad_tokens(seqs: Sequence[Sequence[int]]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Token id lists -> ``(B, S)`` padded with 0 and ``(B,)`` lengths."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    out = torch.zeros(len(seqs), max(int(lengths.max()), 1), dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
    return out, lengths


def _stage(model: CTCGuide, tokenizer=None, schedule=None) -> Optional[TokenGuide]:
    """The pipeline's guide: this network toward a text's tokens (None without a tokenizer)."""
    if tokenizer is None:
        return None
    return TokenGuide("ctc", model, tokenizer, lambda tokens, frames: guidance_loss(model, tokens),
                      model.config.schedule)


ARCHITECTURE = Architecture(family="guide", name="ctc", model_cls=CTCGuide, config_cls=CTCGuideConfig,
                            presets=CTC_GUIDE_PRESETS, stage=_stage,
                            description="step-conditioned conformer CTC recogniser of characters over noisy mels")
