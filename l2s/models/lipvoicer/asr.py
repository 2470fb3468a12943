"""LipVoicer's ASR guide: a diffusion-step-conditioned Efficient Conformer with a CTC head.

It reads noisy model-space mels ``x_t`` (no waveform front-end), so its CTC loss toward a
transcript can steer the sampler. Reimplemented from the specification in the LipVoicer fixtures
(``fixtures/lipvoicer/README.md``, section 4; the encoder is Burchi & Vielzeuf's Efficient
Conformer, 2021) and checked against their outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from l2s.config import N_MELS
from l2s.diffusion.schedules import NoiseScheduleConfig
from l2s.models.lipvoicer.melgen import StepMLP

LN_EPS = 1e-6
CTC_BLANK = 0


@dataclass(frozen=True)
class ASRGuideConfig:
    """Hyper-parameters (defaults: LipVoicer's released guide, 34.2 M parameters).

    Attributes:
        vocab_size: output tokens (SentencePiece BPE 256; id 0 is the CTC blank).
        stem_channels: filters of the stride-2 stem convolution.
        dims: model width of each stage; the last block of every stage but the last halves time.
        num_blocks: conformer blocks per stage.
        num_heads: attention heads.
        kernel_size: depthwise convolution kernel.
        patch_size: stage-1 patch attention pools time by this factor (1 disables it).
        ff_ratio: feed-forward expansion.
        step_embed_in, step_embed_mid, step_embed_out: diffusion-step MLP sizes.
        schedule: the diffusion schedule of the noisy mels it was trained on (LipVoicer's linear 400 steps).
    """

    vocab_size: int = 256
    stem_channels: int = 180
    dims: Tuple[int, ...] = (180, 256, 360)
    num_blocks: Tuple[int, ...] = (5, 6, 5)
    num_heads: int = 4
    kernel_size: int = 15
    patch_size: int = 3
    ff_ratio: int = 4
    step_embed_in: int = 128
    step_embed_mid: int = 512
    step_embed_out: int = 512
    schedule: NoiseScheduleConfig = field(default_factory=NoiseScheduleConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dims", tuple(self.dims))
        object.__setattr__(self, "num_blocks", tuple(self.num_blocks))
        if len(self.dims) != len(self.num_blocks):
            raise ValueError("dims and num_blocks need one entry per stage")

    def block_plan(self) -> List[Tuple[int, int, int, int]]:
        """Per block: (stage, d_in, d_out, time stride)."""
        plan = []
        for s, (dim, n) in enumerate(zip(self.dims, self.num_blocks)):
            for j in range(n):
                down = j == n - 1 and s < len(self.dims) - 1
                plan.append((s, dim, self.dims[s + 1] if down else dim, 2 if down else 1))
        return plan


ASR_GUIDE_LIPVOICER = ASRGuideConfig()
#: small guides of LipVoicer's architecture over the character vocabulary (untrained pipelines, tests)
ASR_GUIDE_TINY = ASRGuideConfig(vocab_size=31, stem_channels=16, dims=(16, 24, 32), num_blocks=(1, 1, 1), num_heads=2,
                                kernel_size=7, patch_size=3, ff_ratio=2, step_embed_in=16, step_embed_mid=32,
                                step_embed_out=32)
ASR_GUIDE_MICRO = replace(ASR_GUIDE_TINY, stem_channels=8, dims=(8, 8, 8))
ASR_GUIDE_PRESETS = {"lipvoicer": ASR_GUIDE_LIPVOICER, "tiny": ASR_GUIDE_TINY, "micro": ASR_GUIDE_MICRO}


def _halve(lengths: torch.Tensor) -> torch.Tensor:
    return torch.div(lengths - 1, 2, rounding_mode="floor") + 1


def relative_positions(length: int, dim: int, device: torch.device) -> torch.Tensor:
    """Sinusoidal encodings of relative positions ``length-1, ..., -(length-1)``: ``(2 length - 1, dim)``."""
    pos = torch.arange(length - 1, -length, -1, dtype=torch.float64, device=device)
    inv = 10000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float64, device=device) / dim)
    angles = pos[:, None] * inv[None, :]
    enc = torch.zeros(2 * length - 1, dim, dtype=torch.float64, device=device)
    enc[:, 0::2] = torch.sin(angles)
    enc[:, 1::2] = torch.cos(angles)
    return enc.float()


class RelPosAttention(nn.Module):
    """Multi-head self-attention with relative-position scores ``(Q K^T + rel(Q E^T)) / sqrt(d_head)``,
    where ``rel`` picks the score of relative position i - j (query minus key); no bias vectors."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.d_head = heads, dim // heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.pos = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], x.shape[1], self.heads, self.d_head).transpose(1, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x (B, T, D)``, ``mask (B, T, T)`` True where query i must not see key j -> ``(B, T, D)``."""
        b, t, d = x.shape
        q, k, v = self._split(self.q(x)), self._split(self.k(x)), self._split(self.v(x))
        e = self.pos(relative_positions(t, d, x.device)).view(2 * t - 1, self.heads, self.d_head).transpose(0, 1)
        s_pos = torch.matmul(q, e.transpose(-1, -2))  # (B, H, T, 2T-1)
        i = torch.arange(t, device=x.device)
        idx = (t - 1 - i[:, None] + i[None, :]).expand(b, self.heads, t, t)
        scores = (torch.matmul(q, k.transpose(-1, -2)) + torch.gather(s_pos, -1, idx)) / math.sqrt(self.d_head)
        # added, not filled: a fully masked row becomes (numerically) uniform, as in LipVoicer
        scores = scores + mask[:, None].to(scores.dtype) * -1e9
        out = torch.matmul(scores.softmax(dim=-1), v).transpose(1, 2).reshape(b, t, d)
        return self.out(out)


class PatchAttention(nn.Module):
    """Relative-position attention over patches: average-pool time by ``patch``, attend, repeat back."""

    def __init__(self, dim: int, heads: int, patch: int):
        super().__init__()
        self.patch = patch
        self.attention = RelPosAttention(dim, heads)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        extra = (-t) % self.patch
        x = F.pad(x, (0, 0, 0, extra))
        # frames added to reach a whole patch are masked as queries *and* keys (the length mask only
        # masks keys); a patch pair is masked when any frame pair in it is (max-pool of the mask)
        mask = F.pad(mask, (0, extra, 0, extra), value=True)
        n = (t + extra) // self.patch
        pooled = x.view(b, n, self.patch, d).mean(dim=2)
        pooled_mask = mask.view(b, n, self.patch, n, self.patch).any(dim=4).any(dim=2)
        out = self.attention(pooled, pooled_mask)
        return out.repeat_interleave(self.patch, dim=1)[:, :t]


class FeedForward(nn.Module):
    def __init__(self, dim: int, ratio: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.fc1 = nn.Linear(dim, ratio * dim)
        self.fc2 = nn.Linear(ratio * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.silu(self.fc1(self.norm(x))))


class ConvModule(nn.Module):
    """LN, pointwise conv to 2 d_out, GLU, depthwise conv (stride s, zero "same" padding), BN, swish, pointwise."""

    def __init__(self, d_in: int, d_out: int, kernel: int, stride: int):
        super().__init__()
        self.norm = nn.LayerNorm(d_in, eps=LN_EPS)
        self.pw_in = nn.Conv1d(d_in, 2 * d_out, 1)
        self.dw = nn.Conv1d(d_out, d_out, kernel, stride, padding=(kernel - 1) // 2, groups=d_out)
        self.bn = nn.BatchNorm1d(d_out)
        self.pw_out = nn.Conv1d(d_out, d_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.glu(self.pw_in(self.norm(x).transpose(1, 2)), dim=1)
        return self.pw_out(F.silu(self.bn(self.dw(h)))).transpose(1, 2)


class ConformerBlock(nn.Module):
    """Step-conditioned conformer block (macaron FF, MHSA, conv, FF, LN); stride 2 changes the width."""

    def __init__(self, d_in: int, d_out: int, stride: int, cfg: ASRGuideConfig, patch: int):
        super().__init__()
        self.step_proj = nn.Linear(cfg.step_embed_out, d_in)
        self.ff1 = FeedForward(d_in, cfg.ff_ratio)
        self.attn_norm = nn.LayerNorm(d_in, eps=LN_EPS)
        self.attn = PatchAttention(d_in, cfg.num_heads, patch) if patch > 1 else RelPosAttention(d_in, cfg.num_heads)
        self.conv = ConvModule(d_in, d_out, cfg.kernel_size, stride)
        self.res = nn.Conv1d(d_in, d_out, 1, stride) if stride > 1 else None
        self.ff2 = FeedForward(d_out, cfg.ff_ratio)
        self.norm = nn.LayerNorm(d_out, eps=LN_EPS)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """``x (B, T, D)``, ``mask (B, T, T)`` (see :class:`RelPosAttention`), ``emb (B, E)``."""
        x = x + self.step_proj(emb).unsqueeze(1)
        x = x + 0.5 * self.ff1(x)
        x = x + self.attn(self.attn_norm(x), mask)
        res = x if self.res is None else self.res(x.transpose(1, 2)).transpose(1, 2)
        x = res + self.conv(x)
        x = x + 0.5 * self.ff2(x)
        return self.norm(x)


class ASRGuide(nn.Module):
    """Noisy mel ``x_t (B, 80, L)``, lengths ``(B,)``, step ``t (B, 1)`` -> CTC logits ``(B, L / 8, vocab)``."""

    def __init__(self, cfg: ASRGuideConfig = ASRGuideConfig()):
        super().__init__()
        self.config = cfg
        self.step_mlp = StepMLP(cfg.step_embed_in, cfg.step_embed_mid, cfg.step_embed_out)
        self.stem = nn.Sequential(nn.Conv2d(1, cfg.stem_channels, 3, 2, 1), nn.BatchNorm2d(cfg.stem_channels))
        self.stem_step = nn.Linear(cfg.step_embed_out, cfg.stem_channels)
        freq = (N_MELS - 1) // 2 + 1
        self.stem_proj = nn.Linear(cfg.stem_channels * freq, cfg.dims[0])
        self.blocks = nn.ModuleList(
            ConformerBlock(d_in, d_out, stride, cfg, cfg.patch_size if stage == 0 else 1)
            for stage, d_in, d_out, stride in cfg.block_plan())
        self.head = nn.Linear(cfg.dims[-1], cfg.vocab_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, t: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(logits (B, T_out, vocab), out_lengths (B,))``."""
        emb = self.step_mlp(t)
        h = F.silu(self.stem(x.unsqueeze(1)))  # (B, C, 40, L1)
        h = h + self.stem_step(emb)[:, :, None, None]
        b, c, f, n = h.shape
        h = self.stem_proj(h.permute(0, 3, 1, 2).reshape(b, n, c * f))
        lengths = _halve(lengths)
        # key padding mask, as a (B, T, T) matrix: padded frames are hidden as keys, not as queries
        pad = torch.arange(n, device=x.device)[None, :] >= lengths[:, None]
        mask = pad[:, None, :].expand(b, n, n)
        for block in self.blocks:
            h = block(h, mask, emb)
            if block.res is not None:
                lengths, mask = _halve(lengths), mask[:, ::2, ::2]
        return self.head(h), lengths

    def ctc_loss(self, x: torch.Tensor, lengths: torch.Tensor, t: torch.Tensor, targets: torch.Tensor,
                 target_lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """LipVoicer's guidance loss: per-utterance CTC negative log-likelihood (blank 0, summed over
        frames, infinite losses zeroed) averaged over the batch.

        Args:
            x: ``(B, 80, L)`` noisy model-space mel.
            lengths: ``(B,)`` valid frames.
            t: ``(B, 1)`` float diffusion step.
            targets: ``(B, S)`` token ids (padded).
            target_lengths: ``(B,)``; all ``S`` when omitted.
        """
        logits, out_lengths = self(x, lengths, t)
        log_probs = logits.log_softmax(dim=-1)
        if target_lengths is None:
            target_lengths = torch.full((targets.shape[0],), targets.shape[1], dtype=torch.long)
        loss = F.ctc_loss(log_probs.transpose(0, 1), targets, out_lengths, target_lengths,
                          blank=CTC_BLANK, reduction="none", zero_infinity=True)
        return loss.mean()
