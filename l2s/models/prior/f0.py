"""F0 and voicing from lip features: the prosody half of the coarse prior (NaturalL2S).

The visual features arrive at the video rate (25 fps); F0 is predicted at the
contract F0 rate (100 Hz), ``MEL_FRAMES_PER_VIDEO_FRAME`` frames per video frame,
so a clip of ``T_v`` video frames gets ``T_m = 4 * T_v`` F0 frames. The network
is a residual conv stack and an optional BiGRU at the video rate (cheap: four
times fewer frames), then a small conv at the F0 rate to shape the contour
inside a video frame. Targets come from WORLD (:func:`l2s.features.pitch.extract_f0`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from l2s.config import CONTRACT, MEL_FRAMES_PER_VIDEO_FRAME, F0Config
from l2s.features.pitch import PitchTrack, extract_f0


@dataclass(frozen=True)
class F0ModelConfig:
    """F0 + voicing predictor (:class:`F0Predictor`).

    Attributes:
        feature_dim: width ``D`` of the visual features it reads.
        hidden_dim: channels of the temporal network.
        num_layers: residual conv blocks at the video rate.
        kernel_size: temporal kernel of those blocks (odd).
        rnn_layers: bidirectional GRU layers after them (0 for none).
        speaker_dim: width ``E`` of the optional speaker embedding (Resemblyzer: 256).
        dropout: dropout inside the blocks.
        log_f0_mean: log-F0 the network output is centred on (set from training data).
        log_f0_std: scale of the network's log-F0 output.
    """

    feature_dim: int = 256
    hidden_dim: int = 128
    num_layers: int = 3
    kernel_size: int = 5
    rnn_layers: int = 1
    speaker_dim: int = 256
    dropout: float = 0.1
    log_f0_mean: float = 5.0
    log_f0_std: float = 0.3


# feature_dim follows the VSR presets' d_model (tiny 128, base 768, micro 32): they read its features.
F0_MODEL_TINY = F0ModelConfig(feature_dim=128)
F0_MODEL_BASE = F0ModelConfig(feature_dim=768, hidden_dim=256, num_layers=4, rnn_layers=2)
F0_MODEL_MICRO = F0ModelConfig(feature_dim=32, hidden_dim=16, num_layers=1, rnn_layers=0)


def length_mask(lengths: Optional[torch.Tensor], max_len: int, batch: int, device: torch.device) -> torch.Tensor:
    """``(B, max_len)`` bool, true on valid frames (all true when ``lengths`` is None)."""
    if lengths is None:
        return torch.ones(batch, max_len, dtype=torch.bool, device=device)
    return torch.arange(max_len, device=device)[None, :] < lengths.to(device)[:, None]


def upsample_frames(x: torch.Tensor, factor: int = MEL_FRAMES_PER_VIDEO_FRAME) -> torch.Tensor:
    """Repeat each frame ``factor`` times: ``(B, T, C)`` to ``(B, factor * T, C)``.

    Repetition (not interpolation) keeps frame ``k`` of the output inside video
    frame ``k // factor``; the convolutions after it smooth the steps.
    """
    return torch.repeat_interleave(x, factor, dim=1)


class SpeakerConditioning(nn.Module):
    """Speaker embedding ``(B, E)`` to a bias ``(B, H)``; a learned null bias when there is none
    (``speaker_dim`` 0: a model that takes no embedding, only the null bias)."""

    def __init__(self, speaker_dim: int, hidden_dim: int):
        super().__init__()
        self.proj = nn.Linear(speaker_dim, hidden_dim) if speaker_dim > 0 else None
        self.null = nn.Parameter(torch.zeros(hidden_dim))

    def forward(self, speaker: Optional[torch.Tensor], batch: int) -> torch.Tensor:
        if speaker is None:
            return self.null.expand(batch, -1)
        if self.proj is None:
            raise ValueError("this model was trained without a speaker embedding (speaker_dim 0)")
        if speaker.dim() != 2 or speaker.shape != (batch, self.proj.in_features):
            raise ValueError(f"speaker embedding must be (B={batch}, E={self.proj.in_features}), "
                             f"got {tuple(speaker.shape)}")
        return self.proj(speaker)


class ConvBlock(nn.Module):
    """Pre-norm residual block: LayerNorm, dilated conv, GELU, dropout, on ``(B, T, C)``."""

    def __init__(self, channels: int, kernel_size: int, dilation: int = 1, dropout: float = 0.0):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.norm = nn.LayerNorm(channels)
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation,
                              padding=dilation * (kernel_size - 1) // 2)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, T, C)``, ``mask`` ``(B, T)`` bool; padding is zeroed so it never leaks in."""
        y = self.norm(x) * mask[..., None]
        y = self.conv(y.transpose(1, 2)).transpose(1, 2)
        return (x + self.dropout(F.gelu(y))) * mask[..., None]


@dataclass(frozen=True)
class F0Output:
    """What :class:`F0Predictor` predicts, at the F0 rate.

    Attributes:
        log_f0: ``(B, T_m)`` natural log of F0 in Hz (defined on every frame, voiced or not).
        voicing_logits: ``(B, T_m)`` logits of the voicing decision.
        mask: ``(B, T_m)`` bool, true on valid (non-padding) frames.
    """

    log_f0: torch.Tensor
    voicing_logits: torch.Tensor
    mask: torch.Tensor


class F0Predictor(nn.Module):
    """Visual features ``(B, T_v, D)`` (+ speaker ``(B, E)``) to log-F0 and voicing at ``4 * T_v`` frames."""

    def __init__(self, config: F0ModelConfig = F0ModelConfig()):
        super().__init__()
        self.config = config
        h = config.hidden_dim
        self.input = nn.Linear(config.feature_dim, h)
        self.speaker = SpeakerConditioning(config.speaker_dim, h)
        self.blocks = nn.ModuleList(
            ConvBlock(h, config.kernel_size, dilation=1, dropout=config.dropout) for _ in range(config.num_layers)
        )
        self.rnn = (nn.GRU(h, h // 2, num_layers=config.rnn_layers, batch_first=True, bidirectional=True)
                    if config.rnn_layers > 0 else None)
        rnn_out = 2 * (h // 2) if self.rnn is not None else h
        self.rnn_proj = nn.Linear(rnn_out, h)
        self.fine = ConvBlock(h, config.kernel_size, dilation=1, dropout=config.dropout)
        self.head = nn.Linear(h, 2)

    def forward(
        self,
        features: torch.Tensor,
        lengths: Optional[torch.Tensor] = None,
        speaker: Optional[torch.Tensor] = None,
    ) -> F0Output:
        """Predict the F0 contour.

        Args:
            features: ``(B, T_v, D)`` visual features at 25 fps.
            lengths: ``(B,)`` valid video frames per item (None: all ``T_v``).
            speaker: ``(B, E)`` speaker embedding, or None for the learned null embedding.

        Returns:
            :class:`F0Output` with ``T_m = 4 * T_v`` frames.
        """
        b, t_v, _ = features.shape
        mask_v = length_mask(lengths, t_v, b, features.device)
        x = (self.input(features) + self.speaker(speaker, b)[:, None, :]) * mask_v[..., None]
        for block in self.blocks:
            x = block(x, mask_v)
        if self.rnn is not None:
            x = self._run_rnn(x, lengths, t_v)
        x = self.rnn_proj(x) * mask_v[..., None]
        factor = MEL_FRAMES_PER_VIDEO_FRAME
        x = upsample_frames(x, factor)
        mask_m = upsample_frames(mask_v[..., None], factor)[..., 0]
        x = self.fine(x, mask_m)
        raw = self.head(x)
        log_f0 = self.config.log_f0_mean + self.config.log_f0_std * raw[..., 0]
        return F0Output(log_f0=log_f0, voicing_logits=raw[..., 1], mask=mask_m)

    def _run_rnn(self, x: torch.Tensor, lengths: Optional[torch.Tensor], t_v: int) -> torch.Tensor:
        if lengths is None:
            return self.rnn(x)[0]
        # Packing keeps the backward direction from starting in the padding.
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu().clamp_min(1), batch_first=True,
                                                   enforce_sorted=False)
        out, _ = self.rnn(packed)
        return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=t_v)[0]


def continuous_f0(output: F0Output, f0: F0Config = CONTRACT.f0) -> torch.Tensor:
    """F0 in Hz on every frame (``(B, T_m)``), clamped to the contract's search range.

    This is what a synthesiser wants: no jumps to 0 at voicing boundaries.
    """
    return output.log_f0.exp().clamp(f0.f0_floor, f0.f0_ceil)


def voiced_frames(output: F0Output, threshold: float = 0.5) -> torch.Tensor:
    """``(B, T_m)`` bool: the frames the prediction calls voiced (padding excluded)."""
    return (torch.sigmoid(output.voicing_logits) > threshold) & output.mask


def decode_f0(
    output: F0Output, threshold: float = 0.5, f0: F0Config = CONTRACT.f0
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Contract-style F0 from a prediction.

    Returns:
        ``f0_hz`` ``(B, T_m)`` in Hz, 0 where unvoiced or padding, and ``voiced`` ``(B, T_m)`` bool.
    """
    voiced = voiced_frames(output, threshold)
    return continuous_f0(output, f0) * voiced, voiced


def match_f0_level(output: F0Output, ref_log_f0: torch.Tensor, threshold: float = 0.5) -> F0Output:
    """Shift each item's log-F0 so that its mean over the predicted-voiced frames is ``ref_log_f0`` ``(B,)``.

    The pitch level of a reference recording of the speaker (:func:`l2s.features.pitch.log_f0_level`) sets
    the level; the lips set the contour. A NaN reference, or an item with no voiced frame, is left as it is.
    """
    voiced = voiced_frames(output, threshold)
    count = voiced.sum(1)
    mean = (output.log_f0 * voiced).sum(1) / count.clamp_min(1)
    ref = ref_log_f0.to(output.log_f0)
    keep = (count > 0) & torch.isfinite(ref)
    shift = torch.where(keep, torch.nan_to_num(ref) - mean, torch.zeros_like(mean))
    return replace(output, log_f0=output.log_f0 + shift[:, None])


@torch.no_grad()
def predict_f0(
    model: F0Predictor,
    features: torch.Tensor,
    lengths: Optional[torch.Tensor] = None,
    speaker: Optional[torch.Tensor] = None,
    threshold: float = 0.5,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Run ``model`` and decode: ``(f0_hz (B, T_m), voiced (B, T_m))``, see :func:`decode_f0`."""
    return decode_f0(model(features, lengths, speaker), threshold)


@dataclass(frozen=True)
class F0Targets:
    """Training targets at the F0 rate.

    Attributes:
        log_f0: ``(B, T_m)`` natural log of F0 where voiced, 0 elsewhere.
        voiced: ``(B, T_m)`` bool voicing.
        mask: ``(B, T_m)`` bool, true on valid frames.
    """

    log_f0: torch.Tensor
    voiced: torch.Tensor
    mask: torch.Tensor

    @property
    def f0_hz(self) -> torch.Tensor:
        """``(B, T_m)`` F0 in Hz, 0 where unvoiced (the contract's form, usable as ``f0_override``)."""
        return torch.where(self.voiced, self.log_f0.exp(), torch.zeros_like(self.log_f0))

    @classmethod
    def from_tracks(cls, tracks: Sequence[PitchTrack], num_frames: Sequence[int]) -> "F0Targets":
        """Pad (or crop) pitch tracks to ``max(num_frames)`` frames; frames past ``num_frames[i]`` are padding."""
        if len(tracks) != len(num_frames):
            raise ValueError(f"{len(tracks)} tracks but {len(num_frames)} frame counts")
        t_max = max(num_frames)
        log_f0 = np.zeros((len(tracks), t_max), dtype=np.float32)
        voiced = np.zeros((len(tracks), t_max), dtype=bool)
        for i, (track, n) in enumerate(zip(tracks, num_frames)):
            m = min(n, len(track.f0))
            log_f0[i, :m] = track.log_f0[:m]
            voiced[i, :m] = track.voiced[:m]
        mask = np.arange(t_max)[None, :] < np.asarray(num_frames)[:, None]
        return cls(torch.from_numpy(log_f0), torch.from_numpy(voiced), torch.from_numpy(mask))


def f0_targets(
    wavs: Sequence[np.ndarray],
    num_frames: Optional[Union[int, Sequence[int]]] = None,
    method: str = "dio",
) -> F0Targets:
    """WORLD F0 targets of a batch of 16 kHz waveforms.

    Args:
        wavs: mono waveforms at the contract sample rate.
        num_frames: frames per item (``4 * T_v`` to match the video); default ``N // hop`` per clip
            (pyworld's extra last frame, centred on the final sample, is dropped).
        method: ``"dio"`` (fast, StoneMask-refined) or ``"harvest"``.
    """
    hop = CONTRACT.f0.hop_length
    if num_frames is None:
        num_frames = [len(w) // hop for w in wavs]
    elif isinstance(num_frames, int):
        num_frames = [num_frames] * len(wavs)
    tracks = [extract_f0(w, method=method) for w in wavs]
    return F0Targets.from_tracks(tracks, list(num_frames))


@dataclass(frozen=True)
class F0Loss:
    """Loss terms (scalars): ``total = log_f0_l1 + voicing_weight * voicing_bce``."""

    total: torch.Tensor
    log_f0_l1: torch.Tensor
    voicing_bce: torch.Tensor


def f0_loss(output: F0Output, targets: F0Targets, voicing_weight: float = 1.0) -> F0Loss:
    """L1 on log-F0 over voiced valid frames plus BCE on voicing over valid frames.

    Unvoiced frames carry no F0 target, so they never enter the L1 term.
    """
    t = min(output.log_f0.shape[1], targets.log_f0.shape[1])
    valid = output.mask[:, :t] & targets.mask[:, :t].to(output.mask.device)
    voiced = targets.voiced[:, :t].to(valid.device) & valid
    target_log_f0 = targets.log_f0[:, :t].to(output.log_f0)
    l1 = (output.log_f0[:, :t] - target_log_f0).abs()
    l1 = (l1 * voiced).sum() / voiced.sum().clamp_min(1)
    bce = F.binary_cross_entropy_with_logits(output.voicing_logits[:, :t], voiced.to(output.log_f0),
                                             reduction="none")
    bce = (bce * valid).sum() / valid.sum().clamp_min(1)
    return F0Loss(total=l1 + voicing_weight * bce, log_f0_l1=l1, voicing_bce=bce)
