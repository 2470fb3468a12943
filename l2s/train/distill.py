"""Distillation of a speech recogniser into the lip reader (LIBS: Zhao et al. 2020, "Hearing lips: improving
lip reading by distilling speech recognizers").

A frozen recogniser (the teacher) reads the clip's paired audio; the lip reader (the student) reads its
video. Three terms pull the student toward what the teacher knows, each with its own weight (0 = off):

* **frame level**: the student's encoder states, through a linear map, regress the teacher's encoder
  states, the teacher's frames first average-pooled to the video's rate (the teacher runs at an integer
  multiple of it: 50 frames/s for the CTC guide over 100 frames/s mels, against 25 video frames/s);
* **sequence level** (LIBS's context-level distillation): each decoder state of the student (teacher
  forcing on the true text), through a linear map, regresses the teacher's context for that token: the
  teacher's pooled states weighted by the student decoder's own source attention, which is the attention
  alignment between the token and the frames (detached, so that the term moves the states, not where the
  decoder looks);
* **soft target**: where teacher and student share the token vocabulary (the CTC guide and the character
  lip reader), the KL divergence from the teacher's per-frame token distribution (pooled, tempered) to the
  student's CTC distribution.

The lip reader is scored on its text, so no recogniser enters its WER; the maps are trained with the
student and dropped at export.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from l2s.errors import InputError


@dataclass(frozen=True)
class DistillWeights:
    """How much each level of distillation counts (0 = off).

    Attributes:
        frame: the frame-level regression of the teacher's encoder states.
        sequence: the token-level (context) regression.
        soft: the KL divergence to the teacher's token distribution (shared vocabulary only).
        temperature: softening of both distributions in the soft-target term (> 0).
    """

    frame: float = 0.0
    sequence: float = 0.0
    soft: float = 0.0
    temperature: float = 1.0

    def __post_init__(self) -> None:
        for name in ("frame", "sequence", "soft"):
            if getattr(self, name) < 0:
                raise InputError(f"distillation weight {name} must be >= 0, got {getattr(self, name)}")
        if self.temperature <= 0:
            raise InputError(f"distillation temperature must be > 0, got {self.temperature}")

    @property
    def active(self) -> bool:
        return self.frame > 0 or self.sequence > 0 or self.soft > 0


@dataclass(frozen=True)
class TeacherOutput:
    """The teacher's view of a batch at the video's frame rate.

    Attributes:
        states: ``(B, T, C)`` pooled encoder states.
        log_probs: ``(B, T, V)`` log of the pooled token distribution.
        mask: ``(B, T)`` True where both the teacher and the video have a frame.
    """

    states: torch.Tensor
    log_probs: torch.Tensor
    mask: torch.Tensor


class DistillHeads(nn.Module):
    """The linear maps from the student's widths to the teacher's (trained, not exported)."""

    def __init__(self, student_dim: int, teacher_dim: int) -> None:
        super().__init__()
        self.frame = nn.Linear(student_dim, teacher_dim)
        self.sequence = nn.Linear(student_dim, teacher_dim)


def pool_to_frames(x: torch.Tensor, lengths: torch.Tensor, frames: int,
                   factor: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Average ``factor`` consecutive teacher frames into one video frame.

    Args:
        x: ``(B, T', C)`` teacher frames.
        lengths: ``(B,)`` valid teacher frames.
        frames: ``T``, the video frames of the batch (the output is cut or zero-padded to it).
        factor: teacher frames per video frame (>= 1).

    Returns:
        ``(B, T, C)`` and the ``(B,)`` valid pooled frames (a partial last group counts).
    """
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    valid = (torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]).to(x.dtype)
    pad = (-x.shape[1]) % factor
    xs = F.pad(x * valid[..., None], (0, 0, 0, pad))
    counts = F.pad(valid, (0, pad)).view(x.shape[0], -1, factor).sum(-1, keepdim=True)
    pooled = xs.view(x.shape[0], -1, factor, x.shape[2]).sum(2) / counts.clamp_min(1.0)
    pooled = F.pad(pooled, (0, 0, 0, max(0, frames - pooled.shape[1])))[:, :frames]
    return pooled, torch.div(lengths + factor - 1, factor, rounding_mode="floor").clamp_max(frames)


@torch.no_grad()
def ctc_guide_teacher(guide: nn.Module, mel: torch.Tensor, mel_lengths: torch.Tensor,
                      video_lengths: torch.Tensor, frames: int) -> TeacherOutput:
    """The CTC guide (:class:`~l2s.models.guide.ctc.CTCGuide`) as the teacher, reading clean mels (step 0).

    Args:
        mel: ``(B, 80, T_m)`` model-space mels of the clips' audio.
        mel_lengths: ``(B,)`` valid mel frames.
        video_lengths: ``(B,)`` valid video frames.
        frames: padded video frames of the batch.
    """
    t = torch.zeros(mel.shape[0], dtype=torch.long, device=mel.device)
    states, out_lengths = guide.encode(mel, t, mel_lengths)
    probs = torch.softmax(guide.head(states), dim=-1)
    factor = max(1, int(round(float(out_lengths.sum()) / max(1.0, float(video_lengths.sum())))))
    pooled, pooled_lengths = pool_to_frames(states, out_lengths, frames, factor)
    pooled_probs, _ = pool_to_frames(probs, out_lengths, frames, factor)
    limit = torch.minimum(pooled_lengths, video_lengths.to(pooled_lengths))
    mask = torch.arange(frames, device=mel.device)[None, :] < limit[:, None]
    return TeacherOutput(states=pooled, log_probs=pooled_probs.clamp_min(1e-8).log(), mask=mask)


def _masked_mse(x: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over channels, summed over the masked positions, divided by the batch size."""
    err = (x - target).pow(2).mean(-1)
    return (err * mask).sum() / x.shape[0]


def frame_loss(heads: DistillHeads, features: torch.Tensor, teacher: TeacherOutput) -> torch.Tensor:
    """Frame-level term: ``features (B, T, D)`` (the student's encoder output) against the teacher's states."""
    return _masked_mse(heads.frame(features), teacher.states, teacher.mask.to(features.dtype))


def sequence_loss(heads: DistillHeads, decoder_hidden: torch.Tensor, attention: torch.Tensor,
                  teacher: TeacherOutput, token_mask: torch.Tensor) -> torch.Tensor:
    """Context-level term.

    Args:
        decoder_hidden: ``(B, L, D)`` the student decoder's states (teacher forcing).
        attention: ``(B, L, T)`` the decoder's source attention over the video frames (rows sum to 1).
        teacher: the pooled teacher.
        token_mask: ``(B, L)`` True on the real token positions.
    """
    weights = attention.detach() * teacher.mask[:, None, :].to(attention.dtype)
    weights = weights / weights.sum(-1, keepdim=True).clamp_min(1e-6)
    context = torch.bmm(weights, teacher.states)  # (B, L, C)
    return _masked_mse(heads.sequence(decoder_hidden), context, token_mask.to(decoder_hidden.dtype))


def soft_target_loss(student_log_probs: torch.Tensor, teacher: TeacherOutput, temperature: float) -> torch.Tensor:
    """``KL(teacher || student)`` per frame, tempered, summed over the masked frames, divided by the batch.

    Args:
        student_log_probs: ``(B, T, V)`` the student's CTC log-probabilities (same vocabulary as the teacher).
    """
    if student_log_probs.shape[-1] != teacher.log_probs.shape[-1]:
        raise InputError(f"soft-target distillation needs one vocabulary: the teacher has "
                         f"{teacher.log_probs.shape[-1]} tokens, the lip reader {student_log_probs.shape[-1]}")
    student = torch.log_softmax(student_log_probs / temperature, dim=-1)
    target = torch.softmax(teacher.log_probs / temperature, dim=-1)
    kl = (target * (target.clamp_min(1e-8).log() - student)).sum(-1)
    return (kl * teacher.mask.to(kl.dtype)).sum() * temperature ** 2 / kl.shape[0]


def distill_loss(weights: DistillWeights, heads: DistillHeads, teacher: TeacherOutput, features: torch.Tensor,
                 ctc_log_probs: torch.Tensor, decoder_hidden: Optional[torch.Tensor] = None,
                 attention: Optional[torch.Tensor] = None,
                 token_mask: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, dict]:
    """The weighted sum of the active terms, and each term's value (floats) for the log."""
    total = features.new_zeros(())
    parts = {}
    if weights.frame > 0:
        term = frame_loss(heads, features, teacher)
        total = total + weights.frame * term
        parts["distill_frame"] = float(term.detach())
    if weights.sequence > 0:
        if decoder_hidden is None or attention is None or token_mask is None:
            raise ValueError("sequence-level distillation needs the decoder states, attention and token mask")
        term = sequence_loss(heads, decoder_hidden, attention, teacher, token_mask)
        total = total + weights.sequence * term
        parts["distill_sequence"] = float(term.detach())
    if weights.soft > 0:
        term = soft_target_loss(ctc_log_probs, teacher, weights.temperature)
        total = total + weights.soft * term
        parts["distill_soft"] = float(term.detach())
    return total, parts
