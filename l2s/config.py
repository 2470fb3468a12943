"""The signal contract: the one place where l2s's signal constants live.

Every module derives its numbers from :data:`CONTRACT` (or the module-level
constants below, which are derived from it once). Checkpoints store the
contract they were trained with (:meth:`SignalContract.to_dict`) and loading
refuses a mismatch (see :mod:`l2s.hub`). Model hyper-parameters are not here:
each model's config dataclass and presets live beside it (:mod:`l2s.arch`).

The mel recipe is LipVoicer's (so its checkpoints and vocoder work), the ROI
normalisation is Auto-AVSR's (so its VSR checkpoints work).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Dict


def exact_div(a: int, b: int) -> int:
    """Integer division that refuses a remainder (a contract constant must divide)."""
    if a % b:
        raise ValueError(f"{a} is not a multiple of {b}")
    return a // b


@dataclass(frozen=True)
class VideoConfig:
    """Video frame rate and the mouth region of interest.

    Attributes:
        fps: frame rate every video is resampled to.
        roi_size: side of the stored grayscale mouth crop (uint8).
        crop_size: side of the centre (test) or random (train) crop the models see.
        mean: normalisation mean of ``roi / 255`` (Auto-AVSR).
        std: normalisation standard deviation of ``roi / 255`` (Auto-AVSR).
    """

    fps: int = 25
    roi_size: int = 96
    crop_size: int = 88
    mean: float = 0.421
    std: float = 0.165


@dataclass(frozen=True)
class AudioConfig:
    """Waveform format: mono float32 at ``sample_rate``."""

    sample_rate: int = 16000


@dataclass(frozen=True)
class MelConfig:
    """The contract mel spectrogram (LipVoicer / Tacotron-2 recipe).

    ``log_mel = ln(max(mel, log_floor))`` and the model space is
    ``mel_norm = log_mel / norm_scale + 1`` (about [-1, 1], exactly -1 at the floor).
    """

    n_fft: int = 640
    win_length: int = 640
    hop_length: int = 160
    n_mels: int = 80
    f_min: float = 20.0
    f_max: float = 8000.0
    log_floor: float = 1e-5
    peak: float = 1.0 / 1.1

    @property
    def n_freqs(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def log_min(self) -> float:
        """``ln(log_floor)``: the smallest log-mel value."""
        return math.log(self.log_floor)

    @property
    def norm_scale(self) -> float:
        """Half the log range: ``-ln(log_floor) / 2`` (5.756463 for 1e-5)."""
        return -math.log(self.log_floor) / 2.0


@dataclass(frozen=True)
class F0Config:
    """Pitch targets: Hz at one value per mel hop, 0 where unvoiced."""

    hop_length: int = 160
    f0_floor: float = 60.0
    f0_ceil: float = 500.0


@dataclass(frozen=True)
class SignalContract:
    """Everything two components must agree on to exchange signals."""

    video: VideoConfig = field(default_factory=VideoConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    mel: MelConfig = field(default_factory=MelConfig)
    f0: F0Config = field(default_factory=F0Config)

    @property
    def samples_per_video_frame(self) -> int:
        return exact_div(self.audio.sample_rate, self.video.fps)

    @property
    def mel_frames_per_video_frame(self) -> int:
        return exact_div(self.samples_per_video_frame, self.mel.hop_length)

    @property
    def mel_frame_rate(self) -> int:
        return exact_div(self.audio.sample_rate, self.mel.hop_length)

    @property
    def f0_frame_rate(self) -> int:
        return exact_div(self.audio.sample_rate, self.f0.hop_length)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


CONTRACT = SignalContract()

FPS = CONTRACT.video.fps
SAMPLE_RATE = CONTRACT.audio.sample_rate
HOP_LENGTH = CONTRACT.mel.hop_length
N_MELS = CONTRACT.mel.n_mels
SAMPLES_PER_VIDEO_FRAME = CONTRACT.samples_per_video_frame  # 640
MEL_FRAMES_PER_VIDEO_FRAME = CONTRACT.mel_frames_per_video_frame  # 4
MEL_FRAME_RATE = CONTRACT.mel_frame_rate  # 100
F0_FRAME_RATE = CONTRACT.f0_frame_rate  # 100
ROI_SIZE = CONTRACT.video.roi_size
CROP_SIZE = CONTRACT.video.crop_size
SILENT_MEL = CONTRACT.mel.log_min / CONTRACT.mel.norm_scale + 1.0  # a silent frame in the model space (-1)
