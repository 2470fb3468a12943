"""A small audio-visual sync expert and a SyncNet-style sync score (LSE-C / LSE-D analogue).

No SyncNet weights can be fetched offline, so we train our own expert: two small conv
encoders embed a window of ``frames`` mouth-ROI frames and the matching
``frames * 4`` contract-mel frames; training is contrastive (the aligned audio window
against the same clip shifted by up to ``train_shift`` frames, and against the
other clips of the batch). Scoring follows SyncNet's protocol (Chung & Zisserman 2016,
as used for LSE in Wav2Lip): mean embedding distance per audio offset, offset = argmin,
confidence = median - min.

NOT COMPARABLE with published LSE-C / LSE-D numbers: another network, trained on other
data. Compare scores only between systems evaluated with the same expert checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from l2s.config import CONTRACT, MEL_FRAMES_PER_VIDEO_FRAME
from l2s.errors import InputError, ModelError
from l2s.features.mel import wav_to_mel
from l2s.hub import load_model_dir, resolve, save_model_dir
from l2s.metrics.base import Score
from l2s.structs import from_dict

KIND = "sync_expert"
LABEL = "l2s sync expert (not comparable with published LSE-C/LSE-D)"


@dataclass(frozen=True)
class SyncExpertConfig:
    """Hyper-parameters of :class:`SyncExpert`.

    Attributes:
        frames: video frames per window (the mel window is ``frames * 4`` frames).
        roi_pool: average-pooling factor applied to the 88x88 crop (mouth opening is coarse).
        channels: conv width of both encoders.
        embed_dim: embedding size (L2-normalised).
    """

    frames: int = 5
    roi_pool: int = 4
    channels: int = 32
    embed_dim: int = 64

    @property
    def mel_frames(self) -> int:
        return self.frames * MEL_FRAMES_PER_VIDEO_FRAME


@dataclass(frozen=True)
class SyncTrainConfig:
    """Options of :func:`train_sync_expert`."""

    steps: int = 300
    batch_size: int = 16
    lr: float = 2e-3
    train_shift: int = 6
    temperature: float = 0.1
    seed: int = 0


@dataclass(frozen=True)
class SyncScore:
    """Sync of one clip. ``offset`` > 0: the audio lags the video by that many frames.

    Attributes:
        confidence: median minus minimum of the mean distance over offsets (LSE-C analogue).
        min_distance: smallest mean distance (LSE-D analogue).
        offset: the offset in video frames at that minimum.
        label: reminder that these numbers are not published-LSE numbers.
    """

    confidence: float
    min_distance: float
    offset: int
    label: str = LABEL

    def as_scores(self) -> dict:
        return {"sync_conf": Score.of("sync_conf", self.confidence),
                "sync_dist": Score.of("sync_dist", self.min_distance),
                "sync_offset": Score.of("sync_offset", float(self.offset))}


def _conv(cin: int, cout: int, stride) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm2d(cout), nn.ReLU())


class SyncExpert(nn.Module):
    """Embeds ROI windows ``(B, frames, H, W)`` and mel windows ``(B, 80, frames * 4)`` to ``(B, E)`` unit vectors."""

    def __init__(self, config: SyncExpertConfig = SyncExpertConfig()):
        super().__init__()
        self.config = config
        c = config.channels
        self.visual = nn.Sequential(_conv(config.frames, c, 1), _conv(c, c, 2), _conv(c, 2 * c, 2),
                                    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * c, config.embed_dim))
        self.audio = nn.Sequential(_conv(1, c, (2, 1)), _conv(c, c, 2), _conv(c, 2 * c, 2),
                                   nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * c, config.embed_dim))

    def embed_video(self, roi: torch.Tensor) -> torch.Tensor:
        """``(B, frames, H, W)`` normalised pooled ROI -> ``(B, E)``."""
        return F.normalize(self.visual(roi), dim=-1)

    def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, 80, frames * 4)`` model-space mel -> ``(B, E)``."""
        return F.normalize(self.audio(mel.unsqueeze(1)), dim=-1)


# --------------------------------------------------------------------------- inputs


def prepare_roi(roi: np.ndarray, config: SyncExpertConfig) -> torch.Tensor:
    """``(T, 96, 96)`` uint8 mouth ROI -> ``(T, 88 / pool, 88 / pool)`` centre crop, normalised, pooled."""
    roi = np.asarray(roi)
    if roi.ndim != 3:
        raise InputError(f"mouth ROI must be (T, H, W), got shape {roi.shape}")
    v = CONTRACT.video
    top, left = (roi.shape[1] - v.crop_size) // 2, (roi.shape[2] - v.crop_size) // 2
    if top < 0 or left < 0:
        raise InputError(f"mouth ROI frames {roi.shape[1:]} are smaller than the {v.crop_size}px crop")
    x = torch.from_numpy(roi[:, top:top + v.crop_size, left:left + v.crop_size].astype(np.float32) / 255.0)
    x = (x - v.mean) / v.std
    return F.avg_pool2d(x.unsqueeze(1), config.roi_pool).squeeze(1)


def prepare_mel(wav: np.ndarray) -> torch.Tensor:
    """``(N,)`` waveform -> ``(80, 1 + N // 160)`` model-space contract mel."""
    return wav_to_mel(torch.as_tensor(np.asarray(wav, dtype=np.float32)).reshape(-1), normalized=True)


def _windows(roi: torch.Tensor, mel: torch.Tensor, starts: torch.Tensor, offsets: torch.Tensor,
             config: SyncExpertConfig) -> Tuple[torch.Tensor, torch.Tensor]:
    """ROI windows at ``starts`` ``(K, frames, h, w)`` and mel windows at ``starts + offsets`` ``(K, 80, M)``."""
    f, m = config.frames, MEL_FRAMES_PER_VIDEO_FRAME
    v = torch.stack([roi[s:s + f] for s in starts.tolist()])
    firsts = [(s + o) * m for s, o in zip(starts.tolist(), offsets.tolist())]
    a = torch.stack([mel[:, i:i + config.mel_frames] for i in firsts])
    return v, a


def _usable_frames(roi: torch.Tensor, mel: torch.Tensor) -> int:
    return min(roi.shape[0], mel.shape[-1] // MEL_FRAMES_PER_VIDEO_FRAME)


# --------------------------------------------------------------------------- training


def load_pairs(manifest: Union[str, Path]) -> List[Tuple[np.ndarray, np.ndarray]]:
    """``(roi, wav)`` pairs of a prepared manifest (``l2s prepare``: ``roi`` ``.npy`` files of
    ``(T, 96, 96)`` uint8, and ``wav``), read with :func:`l2s.data.manifest.read_manifest`."""
    from l2s.data.manifest import read_manifest
    from l2s.io.audio import read_audio

    pairs = []
    for entry in read_manifest(manifest):
        if entry.roi is None or entry.wav is None:
            raise InputError(f"{manifest}: entry {entry.id!r} needs 'roi' and 'wav' (run l2s prepare)")
        pairs.append((np.load(entry.roi), read_audio(entry.wav)))
    return pairs


def train_sync_expert(pairs: Sequence[Tuple[np.ndarray, np.ndarray]],
                      config: SyncExpertConfig = SyncExpertConfig(),
                      train: SyncTrainConfig = SyncTrainConfig()) -> SyncExpert:
    """Train a :class:`SyncExpert` on ``(roi (T, 96, 96) uint8, wav (N,))`` pairs of in-sync clips.

    Each step draws ``batch_size`` clips and a window start per clip. The loss is the sum of
    (a) offset classification: the aligned mel window among the same clip's windows shifted by
    ``-train_shift..train_shift`` frames, and (b) InfoNCE across the batch in both directions.
    """
    if not pairs:
        raise InputError("no clips to train the sync expert on")
    gen = torch.Generator().manual_seed(train.seed)
    torch.manual_seed(train.seed)
    data = []
    for roi, wav in pairs:
        r, m = prepare_roi(roi, config), prepare_mel(wav)
        n = _usable_frames(r, m)
        if n >= config.frames + 2 * train.train_shift + 1:
            data.append((r[:n], m[:, :n * MEL_FRAMES_PER_VIDEO_FRAME]))
    if not data:
        raise InputError(f"every clip is shorter than {config.frames + 2 * train.train_shift + 1} video frames")
    model = SyncExpert(config)
    opt = torch.optim.AdamW(model.parameters(), lr=train.lr)
    shifts = torch.arange(-train.train_shift, train.train_shift + 1)
    model.train()
    for _ in range(train.steps):
        idx = torch.randint(len(data), (train.batch_size,), generator=gen)
        vids, mels = [], []
        for i in idx.tolist():
            r, m = data[i]
            hi = r.shape[0] - config.frames - train.train_shift
            start = int(torch.randint(train.train_shift, hi + 1, (1,), generator=gen))
            starts = torch.full((len(shifts),), start)
            v, a = _windows(r, m, starts[:1], torch.zeros(1, dtype=torch.long), config)
            _, a_shift = _windows(r, m, starts, shifts, config)
            vids.append(v)
            mels.append(a_shift)
        v = model.embed_video(torch.cat(vids))  # (B, E)
        a = model.embed_audio(torch.cat(mels)).view(len(idx), len(shifts), -1)  # (B, K, E)
        centre = train.train_shift
        offset_logits = torch.einsum("be,bke->bk", v, a) / train.temperature
        cross = v @ a[:, centre].T / train.temperature
        target = torch.arange(len(idx))
        loss = (F.cross_entropy(offset_logits, torch.full_like(target, centre))
                + 0.5 * (F.cross_entropy(cross, target) + F.cross_entropy(cross.T, target)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


# --------------------------------------------------------------------------- scoring


@torch.no_grad()
def sync_score(model: SyncExpert, roi: np.ndarray, wav: np.ndarray, max_offset: int = 15) -> SyncScore:
    """Sync confidence and offset of a clip (SyncNet protocol, our expert).

    Args:
        model: a trained :class:`SyncExpert`.
        roi: ``(T, 96, 96)`` uint8 mouth ROI at the contract frame rate.
        wav: ``(N,)`` waveform at the contract sample rate.
        max_offset: offsets searched, in video frames (reduced for short clips).
    """
    cfg = model.config
    r, m = prepare_roi(roi, cfg), prepare_mel(wav)
    n = _usable_frames(r, m)
    max_offset = min(max_offset, (n - cfg.frames - 1) // 2)
    if max_offset < 1:
        raise InputError(f"clip too short for a sync score ({n} video frames)")
    model.eval()
    starts = torch.arange(max_offset, n - cfg.frames - max_offset + 1)
    v = model.embed_video(_windows(r, m, starts, torch.zeros_like(starts), cfg)[0])
    dists = []
    for o in range(-max_offset, max_offset + 1):
        a = model.embed_audio(_windows(r, m, starts, torch.full_like(starts, o), cfg)[1])
        dists.append(float((v - a).norm(dim=-1).mean()))
    d = np.asarray(dists)
    best = int(np.argmin(d))
    return SyncScore(confidence=float(np.median(d) - d[best]), min_distance=float(d[best]),
                     offset=best - max_offset)


def save_sync_expert(model: SyncExpert, path: Union[str, Path]) -> Path:
    """Write a model directory (``config.yaml`` + ``model.safetensors``, see :mod:`l2s.hub`)."""
    return save_model_dir(path, KIND, KIND, model.config, model.state_dict())


def load_sync_expert(path: Union[str, Path]) -> SyncExpert:
    """Read a sync expert written by :func:`save_sync_expert` (a path, bundled name or hub id), in eval mode.

    Raises:
        ModelError: not a sync expert directory, or weights that do not fit its config.
    """
    stored = load_model_dir(resolve(path), kind=KIND)
    model = SyncExpert(from_dict(SyncExpertConfig, stored.config, f"{stored.path}: config", ModelError))
    try:
        model.load_state_dict(stored.state_dict, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{stored.path}: not a loadable {KIND} checkpoint ({str(exc).splitlines()[0]})") from None
    return model.eval()


__all__ = ["LABEL", "SyncExpert", "SyncExpertConfig", "SyncScore", "SyncTrainConfig", "load_pairs",
           "load_sync_expert", "save_sync_expert", "sync_score", "train_sync_expert"]
