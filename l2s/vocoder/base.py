"""The vocoder contract: mel ``(B, 80, T)`` in, waveform ``(B, T * 160)`` out.

Every vocoder says which mel space it takes (:data:`MEL_LOG`, the natural-log
contract mel, or :data:`MEL_NORM`, the model space ``log_mel / 5.756463 + 1``)
and how many mel frames of context one output frame depends on. From that,
:func:`render` converts the caller's mel to the vocoder's space and renders long
mels in overlapping chunks joined by an equal-gain raised-cosine crossfade,
written once here for every vocoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, List, Optional, Protocol, Tuple, runtime_checkable

import torch

from l2s.config import CONTRACT
from l2s.errors import ContractError, InputError
from l2s.features.mel import denormalize_mel, normalize_log_mel, peak_normalize, wav_to_mel

MEL_LOG = "log"
MEL_NORM = "norm"
MEL_SPACES = (MEL_LOG, MEL_NORM)


@runtime_checkable
class Vocoder(Protocol):
    """What the pipeline needs from a vocoder.

    Attributes:
        mel_space: :data:`MEL_LOG` or :data:`MEL_NORM`, the space ``__call__`` expects.
        sample_rate: output sample rate (the contract rate for contract vocoders).
        hop_length: output samples per mel frame.
        context_frames: mel frames on each side that one frame's output depends on
            (enough that chunked rendering matches whole rendering).
    """

    mel_space: str
    sample_rate: int
    hop_length: int
    context_frames: int

    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, T)`` mel in ``mel_space`` to ``(B, T * hop_length)`` waveform."""
        ...


def convert_mel_space(mel: torch.Tensor, src: str, dst: str) -> torch.Tensor:
    """Re-express a contract mel given in space ``src`` in space ``dst`` (both in :data:`MEL_SPACES`)."""
    for space in (src, dst):
        if space not in MEL_SPACES:
            raise ValueError(f"unknown mel space {space!r}; expected one of {MEL_SPACES}")
    if src == dst:
        return mel
    return normalize_log_mel(mel) if dst == MEL_NORM else denormalize_mel(mel)


def check_contract_vocoder(vocoder: Vocoder, where: str) -> None:
    """Refuse a vocoder that does not produce the contract rate and hop (a 22.05 kHz HiFi-GAN, say)."""
    want = (CONTRACT.audio.sample_rate, CONTRACT.mel.hop_length)
    have = (int(vocoder.sample_rate), int(vocoder.hop_length))
    if have != want:
        raise ContractError(f"{where}: vocoder renders {have[0]} Hz with hop {have[1]}, "
                            f"the signal contract needs {want[0]} Hz with hop {want[1]}")


@dataclass(frozen=True)
class ChunkOptions:
    """How :func:`render` splits a long mel.

    Attributes:
        chunk_frames: mel frames rendered per chunk (without context); mels this
            short or shorter are rendered whole.
        overlap_frames: frames shared by neighbouring chunks, crossfaded.
        context_frames: extra frames fed on each side and thrown away; ``None``
            uses the vocoder's own ``context_frames``.
    """

    chunk_frames: int = 1000
    overlap_frames: int = 16
    context_frames: Optional[int] = None

    def __post_init__(self) -> None:
        if self.overlap_frames < 1 or self.chunk_frames <= 2 * self.overlap_frames:
            raise ValueError(f"need chunk_frames > 2 * overlap_frames >= 2, got {self.chunk_frames}, "
                             f"{self.overlap_frames}")
        if self.context_frames is not None and self.context_frames < 0:
            raise ValueError("context_frames must be >= 0")


WHOLE = None  # pass as ``chunking`` to render in one piece

# Wraps the iteration over chunk spans, e.g. in a progress bar: ``wrap(spans) -> spans``.
SpanWrapper = Callable[[List[Tuple[int, int]]], Iterable[Tuple[int, int]]]


def chunk_spans(num_frames: int, options: ChunkOptions) -> List[Tuple[int, int]]:
    """Nominal ``[start, end)`` frame spans; neighbours share exactly ``overlap_frames`` frames."""
    if num_frames <= options.chunk_frames:
        return [(0, num_frames)]
    step = options.chunk_frames - options.overlap_frames
    spans = []
    start = 0
    while True:
        end = min(start + options.chunk_frames, num_frames)
        spans.append((start, end))
        if end == num_frames:
            return spans
        start += step


def _fade_in(length: int, like: torch.Tensor) -> torch.Tensor:
    # sin^2 rising ramp; with its mirror cos^2 it sums to exactly one: the chunks of a
    # deterministic vocoder are (nearly) the same signal there, so equal gain is right.
    t = (torch.arange(length, dtype=torch.float64) + 0.5) / length
    return torch.sin(0.5 * math.pi * t).square().to(dtype=like.dtype, device=like.device)


def render(
    vocoder: Vocoder,
    mel: torch.Tensor,
    mel_space: str = MEL_NORM,
    chunking: Optional[ChunkOptions] = ChunkOptions(),
    wrap: Optional[SpanWrapper] = None,
) -> torch.Tensor:
    """Waveforms of a batch of mels, chunked when long.

    Args:
        vocoder: any :class:`Vocoder`.
        mel: ``(B, n_mels, T)`` or ``(n_mels, T)`` contract mel in ``mel_space``.
        mel_space: the space of ``mel`` (converted to the vocoder's).
        chunking: chunk options, or :data:`WHOLE` (``None``) to render in one call.
        wrap: called on the list of chunk spans (a progress bar, say).

    Returns:
        ``(B, T * hop_length)`` (or ``(T * hop_length,)`` for a 2-D mel), float.
    """
    squeeze = mel.dim() == 2
    if squeeze:
        mel = mel.unsqueeze(0)
    if mel.dim() != 3:
        raise InputError(f"expected a mel (B, n_mels, T), got shape {tuple(mel.shape)}")
    if mel.shape[-1] < 1:
        raise InputError("empty mel (no frames)")
    mel = convert_mel_space(mel, mel_space, vocoder.mel_space)
    wav = _render_chunks(vocoder, mel, chunking, wrap) if chunking is not None else vocoder(mel)
    return wav.squeeze(0) if squeeze else wav


def _render_chunks(vocoder: Vocoder, mel: torch.Tensor, options: ChunkOptions,
                   wrap: Optional[SpanWrapper] = None) -> torch.Tensor:
    num_frames = mel.shape[-1]
    spans = chunk_spans(num_frames, options)
    if len(spans) == 1:
        return vocoder(mel)
    hop = int(vocoder.hop_length)
    context = vocoder.context_frames if options.context_frames is None else options.context_frames
    fade_len = options.overlap_frames * hop
    out: Optional[torch.Tensor] = None
    for index, (start, end) in enumerate(wrap(spans) if wrap is not None else spans):
        lo, hi = max(0, start - context), min(num_frames, end + context)
        piece = vocoder(mel[..., lo:hi])[..., (start - lo) * hop:(end - lo) * hop]
        if out is None:
            out = piece.new_zeros(mel.shape[0], num_frames * hop)
            fade = _fade_in(fade_len, piece)
        piece = piece.clone()
        if index > 0:
            piece[..., :fade_len] *= fade
        if index < len(spans) - 1:
            piece[..., -fade_len:] *= fade.flip(0)
        out[..., start * hop:end * hop] += piece
    assert out is not None
    return out


def copy_synthesis(vocoder: Vocoder, wav: torch.Tensor, chunking: Optional[ChunkOptions] = ChunkOptions(),
                   wrap: Optional[SpanWrapper] = None) -> torch.Tensor:
    """Resynthesise audio: the contract mel of ``wav`` rendered by ``vocoder``.

    The input is peak-normalised first, as the contract mel does. Vocoders with their
    own front end (a ``copy_synthesis`` method, e.g. official Vocos checkpoints) use it.

    Args:
        wav: ``(B, N)`` or ``(N,)`` audio at the contract sample rate.

    Returns:
        The same shape as ``wav``.
    """
    squeeze = wav.dim() == 1
    if squeeze:
        wav = wav.unsqueeze(0)
    own = getattr(vocoder, "copy_synthesis", None)
    if own is not None:
        out = own(peak_normalize(wav))
    else:
        out = render(vocoder, wav_to_mel(wav, normalized=False), MEL_LOG, chunking, wrap)[..., :wav.shape[-1]]
    return out.squeeze(0) if squeeze else out
