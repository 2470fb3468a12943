"""Whisper as the guide (the ``whisper`` architecture of the ``guide`` stage): the teacher-forced
log-likelihood of the text through openai-whisper, differentiable with respect to our model-space mel.

A pipeline selects it by name (``components: {guide: whisper}``; ``l2s pipeline build --guide whisper``): its
weights are openai-whisper's, converted offline by :func:`l2s.asr.whisper.offline_whisper`, not a model
directory of ours. It reads clean mels, so the pipeline gives it the generator's schedule to undo the forward
process's scaling; any schedule does.

Whisper reads ``(log10(max(F_w |STFT_400|^2, 1e-10)) clamped to max - 8, + 4) / 4`` with 80 Slaney
bands (0-8 kHz) of a 400-point periodic-Hann STFT at hop 160, i.e. at our frame rate. Our mel is
``ln(max(F_o |STFT_640|, 1e-5))`` with 80 Slaney bands (20 Hz-8 kHz) of a 640-point STFT. We map
band POWERS with one fixed 80 x 80 non-negative matrix ``W = s^2 F_w R T`` computed from the two
filterbanks (no resynthesis):

* ``T`` (321 x 80) spreads our band powers back over the 640-point bins: each bin takes the
  response-weighted average of the bands covering it, each band's power divided by the square of
  its filter's total weight; exact for a flat spectrum, a smooth interpolation otherwise;
* ``R`` (201 x 321) linearly interpolates the 25 Hz bin grid onto Whisper's 40 Hz grid;
* ``s = sum(hann_400) / sum(hann_640) = 0.625`` rescales the magnitude of a steady partial to the
  shorter window (so ``s^2`` for powers);
* applied to band powers ``exp(2 log_mel)``: interpolating powers rather than magnitudes is the one
  approximation beyond the spectral smoothing (measured: 0.07 mean absolute error in Whisper's
  normalised log-mel units, which span about 2, on TTS speech; see ``tests/test_guide_whisper.py``).

Our waveform is peak-normalised to 1/1.1 before its mel; Whisper is trained on unnormalised audio of
all levels, so no level correction is made. Text is scored as Whisper's ``sot`` sequence (no
timestamps), the tokens of ``" " + text`` and ``eot``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from l2s.arch import Architecture
from l2s.config import CONTRACT, N_MELS
from l2s.diffusion.sampler import LossFn
from l2s.diffusion.schedules import DiffusionSchedule, NoiseScheduleConfig, build_schedule
from l2s.diffusion.steps import as_step_vector
from l2s.errors import InputError, ModelError
from l2s.features.mel import denormalize_mel, slaney_mel_filterbank

LOG10_FLOOR = -10.0  # whisper: log10(max(power, 1e-10))
DYNAMIC_RANGE = 8.0  # whisper: max(log_spec, log_spec.max() - 8)


def _whisper_audio():
    try:
        import whisper.audio
    except ImportError as exc:  # pragma: no cover - openai-whisper is in the lock file
        raise ModelError("the Whisper guide needs openai-whisper (pip install openai-whisper)") from exc
    return whisper.audio


def band_power_map() -> np.ndarray:
    """``W (80, 80)``: Whisper mel power ``~= W @ (our band amplitude)^2`` (see the module docstring)."""
    wa = _whisper_audio()
    mel = CONTRACT.mel
    ours = slaney_mel_filterbank(CONTRACT.audio.sample_rate, mel.n_fft, mel.n_mels, mel.f_min, mel.f_max)
    ours = ours.astype(np.float64)  # (80, 321)
    theirs = wa.mel_filters("cpu", N_MELS).numpy().astype(np.float64)  # (80, 201)
    # band power -> power of its bins for a flat spectrum: (1 / total filter weight)^2
    gain = 1.0 / ours.sum(axis=1) ** 2
    cover = ours.sum(axis=0)  # (321,)
    spread = ours.T * gain[None, :]  # (321, 80)
    spread = np.where(cover[:, None] > 0, spread / np.maximum(cover, 1e-30)[:, None], 0.0)
    for k in np.flatnonzero(cover == 0):  # bins outside our 20-8000 Hz range take the nearest band
        spread[k, 0 if k < ours.shape[1] // 2 else -1] = gain[0 if k < ours.shape[1] // 2 else -1]
    f_ours = np.linspace(0.0, CONTRACT.audio.sample_rate / 2, mel.n_freqs)
    f_theirs = np.linspace(0.0, wa.SAMPLE_RATE / 2, wa.N_FFT // 2 + 1)
    # linear interpolation of our 25 Hz bin grid at Whisper's bin frequencies
    resample = np.zeros((len(f_theirs), len(f_ours)))
    for j, f in enumerate(f_theirs):
        k = min(int(f // (f_ours[1] - f_ours[0])), len(f_ours) - 2)
        frac = (f - f_ours[k]) / (f_ours[1] - f_ours[0])
        resample[j, k], resample[j, k + 1] = 1.0 - frac, frac
    window = wa.N_FFT / mel.win_length  # sum of a periodic Hann window is half its length
    return (window ** 2 * theirs @ resample @ spread).astype(np.float32)


class MelToWhisper(nn.Module):
    """Model-space mel ``(B, 80, T)`` -> Whisper's normalised log-mel ``(B, 80, frames)``, differentiable."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("power_map", torch.from_numpy(band_power_map()), persistent=False)

    def log10_power(self, mel_norm: torch.Tensor) -> torch.Tensor:
        """``(B, 80, T)`` ``log10`` of the approximated Whisper mel power (before range clamping)."""
        log_mel = denormalize_mel(mel_norm)  # natural log of our band amplitude
        power = torch.einsum("wb,nbt->nwt", self.power_map, torch.exp(2.0 * log_mel))
        return torch.clamp(power, min=10.0 ** LOG10_FLOOR).log10()

    def forward(self, mel_norm: torch.Tensor, frames: Optional[int] = None,
                lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Whisper's input: padded (with silence) to ``frames`` (e.g. 3000 = 30 s), range-clamped per utterance.

        Args:
            mel_norm: ``(B, 80, T)`` model-space mel.
            frames: output frames (None: ``T``).
            lengths: ``(B,)`` valid frames (the rest is silence), or None.
        """
        log_spec = self.log10_power(mel_norm)
        b, _, t = log_spec.shape
        if lengths is not None:
            valid = torch.arange(t, device=log_spec.device)[None, None] < lengths.to(log_spec.device)[:, None, None]
            log_spec = torch.where(valid, log_spec, torch.full_like(log_spec, LOG10_FLOOR))
        if frames is not None:
            if frames < t:
                raise InputError(f"{t} mel frames do not fit Whisper's {frames}-frame window")
            log_spec = F.pad(log_spec, (0, frames - t), value=LOG10_FLOOR)
        top = log_spec.amax(dim=(1, 2), keepdim=True)
        return (torch.maximum(log_spec, top - DYNAMIC_RANGE) + 4.0) / 4.0


@dataclass(frozen=True)
class WhisperGuideConfig:
    """Which Whisper guides, and how.

    Attributes:
        model: an openai-whisper model name (converted offline: ``tiny.en``, ``base``) or a local ``.pt`` path.
        full_window: pad to Whisper's 30 s window as it was trained (True), or run the clip's own length.
    """

    model: str = "tiny.en"
    full_window: bool = True


class WhisperGuide(nn.Module):
    """Teacher-forced ``log p(text | mel)`` through a frozen openai-whisper model.

    Args:
        model: a loaded ``whisper.model.Whisper`` (e.g. ``l2s.asr.whisper.offline_whisper("tiny.en")``).
        schedule: when given, ``x_t`` is divided by ``sqrt(abar_t)`` first (undoing the signal shrinkage
            of the forward process; the noise stays), since Whisper only knows clean mels.
        full_window: pad to Whisper's 30 s window as it was trained (True); False runs the encoder on
            the clip's own length with the positional table cut (faster, less faithful).
    """

    def __init__(self, model: nn.Module, schedule: Optional[DiffusionSchedule] = None, full_window: bool = True):
        super().__init__()
        from whisper.tokenizer import get_tokenizer

        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        if model.dims.n_mels != N_MELS:
            raise ModelError(f"this Whisper reads {model.dims.n_mels} mel bands; the guide maps to {N_MELS}")
        self.tokenizer = get_tokenizer(model.is_multilingual, language="en", task="transcribe")
        self.to_whisper = MelToWhisper()
        self.schedule = schedule
        self.full_window = full_window

    @classmethod
    def load(cls, name_or_path: str = "tiny.en", device: str = "cpu", **kwargs) -> "WhisperGuide":
        """From a local ``.pt`` path, or a name converted offline by :func:`l2s.asr.whisper.offline_whisper`."""
        from l2s.asr.whisper import load_whisper, offline_whisper

        model = load_whisper(name_or_path, device) if os.path.isfile(name_or_path) else \
            offline_whisper(name_or_path, device)
        return cls(model, **kwargs).to(device)

    def text_tokens(self, text: str) -> List[int]:
        """The full teacher-forcing sequence: ``sot ... notimestamps``, the text's tokens, ``eot``."""
        return (list(self.tokenizer.sot_sequence_including_notimestamps)
                + self.tokenizer.encode(" " + " ".join(text.split())) + [self.tokenizer.eot])

    def _encode(self, whisper_mel: torch.Tensor) -> torch.Tensor:
        enc = self.model.encoder
        if self.full_window:
            return enc(whisper_mel)
        x = F.gelu(enc.conv2(F.gelu(enc.conv1(whisper_mel)))).permute(0, 2, 1)
        x = x + enc.positional_embedding[: x.shape[1]].to(x.dtype)
        for block in enc.blocks:
            x = block(x)
        return enc.ln_post(x)

    def log_likelihood(self, x: torch.Tensor, texts: Sequence[str], t: Optional[torch.Tensor] = None,
                       lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``(B,)`` summed log-probabilities of each text's tokens (and ``eot``) given the mel.

        Args:
            x: ``(B, 80, T)`` model-space mel (``x_t`` during sampling).
            texts: one transcript per item.
            t: diffusion steps (used with ``schedule``), or None for a clean mel.
            lengths: ``(B,)`` valid frames, or None.
        """
        if len(texts) != x.shape[0]:
            raise InputError(f"{x.shape[0]} mels but {len(texts)} texts")
        if self.schedule is not None and t is not None:
            steps = as_step_vector(t, x.shape[0], x.device).long()
            x = x / self.schedule.alpha_bars.to(x.device)[steps].sqrt()[:, None, None]
        n_ctx = self.model.dims.n_audio_ctx * 2  # frames before the stride-2 conv (3000)
        if x.shape[-1] > n_ctx:
            raise InputError(f"the Whisper guide takes at most {n_ctx} frames ({n_ctx // 100} s), got {x.shape[-1]}")
        mel = self.to_whisper(x, n_ctx if self.full_window else x.shape[-1] + x.shape[-1] % 2, lengths)
        audio = self._encode(mel)
        seqs = [self.text_tokens(text) for text in texts]
        width = max(len(s) for s in seqs)
        tokens = torch.full((len(seqs), width), self.tokenizer.eot, dtype=torch.long, device=x.device)
        for i, s in enumerate(seqs):
            tokens[i, : len(s)] = torch.tensor(s, device=x.device)
        logp = torch.log_softmax(self.model.decoder(tokens[:, :-1], audio).float(), dim=-1)
        picked = logp.gather(-1, tokens[:, 1:, None])[..., 0]  # (B, width - 1)
        n_sot = len(self.tokenizer.sot_sequence_including_notimestamps)
        pos = torch.arange(1, width, device=x.device)[None]
        ends = torch.tensor([len(s) for s in seqs], device=x.device)[:, None]
        scored = (pos >= n_sot) & (pos < ends)  # text tokens and eot, not the sot prompt
        return (picked * scored).sum(dim=1)

    def loss_fn(self, texts: Sequence[str], lengths: Optional[torch.Tensor] = None) -> LossFn:
        """The sampler's ``asr_loss``: mean negative log-likelihood of ``texts``."""
        def loss(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return -self.log_likelihood(x, texts, t, lengths).mean()

        return loss


class WhisperTextGuide:
    """The pipeline's guide stage for Whisper: its own tokenizer, the generator's schedule to undo the scaling."""

    arch = "whisper"
    schedule: Optional[NoiseScheduleConfig] = None  # it reads the mels of any schedule

    def __init__(self, model: WhisperGuide, schedule: Optional[NoiseScheduleConfig] = None):
        self.model = model
        model.schedule = None if schedule is None else build_schedule(schedule)

    def loss_fn(self, text: str, frames: int) -> Optional[LossFn]:
        text = " ".join(text.lower().split())
        return self.model.loss_fn([text]) if text else None


def _load(config: WhisperGuideConfig) -> WhisperGuide:
    guide = WhisperGuide.load(config.model, full_window=config.full_window)
    guide.config = config
    return guide


ARCHITECTURE = Architecture(family="guide", name="whisper", model_cls=WhisperGuide, config_cls=WhisperGuideConfig,
                            needs_weights=False, init=_load,
                            stage=lambda model, tokenizer=None, schedule=None: WhisperTextGuide(model, schedule),
                            description="openai-whisper's teacher-forced likelihood of the text (no training)")
