"""The signal contract: the one place where l2s's signal constants live.

Every module derives its numbers from :data:`CONTRACT` (or the module-level
constants below, which are derived from it once). Checkpoints store the
contract they were trained with (:meth:`SignalContract.to_dict`) and loading
refuses a mismatch (see :mod:`l2s.hub`).

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

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "SignalContract":
        return cls(
            video=VideoConfig(**data.get("video", {})),
            audio=AudioConfig(**data.get("audio", {})),
            mel=MelConfig(**data.get("mel", {})),
            f0=F0Config(**data.get("f0", {})),
        )


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

# Model size presets are appended below by the model modules' owners, one
# frozen dataclass per model family with ``tiny`` and ``base`` instances.


# --- F0 predictor and DDSP coarse prior (l2s.models.f0, l2s.models.ddsp) ---


@dataclass(frozen=True)
class F0ModelConfig:
    """F0 + voicing predictor (:class:`l2s.models.f0.F0Predictor`).

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


@dataclass(frozen=True)
class DDSPConfig:
    """Control network of the harmonic-plus-noise synthesiser (:class:`l2s.models.ddsp.DDSPDecoder`).

    Attributes:
        feature_dim: width ``D`` of the visual features it reads.
        hidden_dim: channels of the network (at the mel frame rate).
        num_layers: residual dilated conv blocks.
        kernel_size: temporal kernel of those blocks (odd).
        n_harmonics: harmonics ``K`` of the F0 (those at or above Nyquist are dropped per frame).
        n_noise_bands: filter magnitudes ``F`` of the noise, linear from 0 Hz to Nyquist.
        speaker_dim: width ``E`` of the optional speaker embedding.
        dropout: dropout inside the blocks.
    """

    feature_dim: int = 256
    hidden_dim: int = 128
    num_layers: int = 4
    kernel_size: int = 5
    n_harmonics: int = 64
    n_noise_bands: int = 65
    speaker_dim: int = 256
    dropout: float = 0.1


@dataclass(frozen=True)
class CoarsePriorConfig:
    """F0 predictor and DDSP decoder together (:class:`l2s.models.ddsp.CoarsePrior`)."""

    f0: F0ModelConfig = field(default_factory=F0ModelConfig)
    ddsp: DDSPConfig = field(default_factory=DDSPConfig)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "CoarsePriorConfig":
        return cls(f0=F0ModelConfig(**data.get("f0", {})), ddsp=DDSPConfig(**data.get("ddsp", {})))


# feature_dim follows the VSR presets' d_model (tiny 128, base 768): they read its features.
F0_MODEL_TINY = F0ModelConfig(feature_dim=128)
F0_MODEL_BASE = F0ModelConfig(feature_dim=768, hidden_dim=256, num_layers=4, rnn_layers=2)
DDSP_TINY = DDSPConfig(feature_dim=128)
DDSP_BASE = DDSPConfig(feature_dim=768, hidden_dim=256, num_layers=6, n_harmonics=100)
COARSE_PRIOR_TINY = CoarsePriorConfig(f0=F0_MODEL_TINY, ddsp=DDSP_TINY)
COARSE_PRIOR_BASE = CoarsePriorConfig(f0=F0_MODEL_BASE, ddsp=DDSP_BASE)
F0_MODEL_PRESETS = {"tiny": F0_MODEL_TINY, "base": F0_MODEL_BASE}
DDSP_PRESETS = {"tiny": DDSP_TINY, "base": DDSP_BASE}
COARSE_PRIOR_PRESETS = {"tiny": COARSE_PRIOR_TINY, "base": COARSE_PRIOR_BASE}


# --- VSR lip reader (l2s.models.vsr) ---


@dataclass(frozen=True)
class VSRConfig:
    """Hyper-parameters of the lip-reading model (:class:`l2s.models.vsr.VSRModel`).

    ``VSR_BASE`` is Auto-AVSR's VSR model (its checkpoints load into it unchanged);
    ``VSR_TINY`` is the same code with numbers small enough to train on a 2-core CPU.

    Attributes:
        vocab_size: output tokens ``V`` (blank = 0, sos = eos = V - 1).
        frontend_widths: channels of the stem and the four ResNet-18 stages.
        frontend_blocks: BasicBlocks per ResNet stage.
        d_model: width ``D`` of the encoder and decoder (the visual features).
        heads: attention heads (encoder and decoder).
        encoder_ffn: hidden units of the conformer feed-forward modules.
        encoder_layers: conformer blocks.
        conv_kernel: depthwise kernel of the conformer convolution module (odd).
        decoder_ffn: hidden units of the decoder feed-forward modules.
        decoder_layers: transformer decoder blocks.
        dropout: dropout of the encoder blocks, the decoder and the CTC head.
        pos_dropout: dropout after the positional encodings.
        attention_dropout: dropout on the encoder attention weights.
        decoder_attention_dropout: dropout on the decoder attention weights.
        mask_conv_padding: zero padded frames before the depthwise convolution; off in
            Auto-AVSR (padded frames then leak into the last valid ones in a batch).
        ctc_weight: weight of the CTC loss (and of the CTC score in beam search).
        label_smoothing: smoothing of the attention (decoder) loss.
        tokenizer: ``"char"`` or ``"sentencepiece"``.
    """

    vocab_size: int = 5049
    frontend_widths: tuple[int, ...] = (64, 128, 256, 512)
    frontend_blocks: tuple[int, ...] = (2, 2, 2, 2)
    d_model: int = 768
    heads: int = 12
    encoder_ffn: int = 3072
    encoder_layers: int = 12
    conv_kernel: int = 31
    decoder_ffn: int = 3072
    decoder_layers: int = 6
    dropout: float = 0.1
    pos_dropout: float = 0.1
    attention_dropout: float = 0.0
    decoder_attention_dropout: float = 0.1
    mask_conv_padding: bool = False
    ctc_weight: float = 0.1
    label_smoothing: float = 0.1
    tokenizer: str = "sentencepiece"

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "VSRConfig":
        """Rebuild from :func:`dataclasses.asdict` output (YAML turns tuples into lists)."""
        data = dict(data)
        for key in ("frontend_widths", "frontend_blocks"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


VSR_BASE = VSRConfig()
# 31 = the character vocabulary of l2s.text.CharTokenizer (checked by tests/test_vsr_tokenizer.py).
VSR_TINY = VSRConfig(vocab_size=31, frontend_widths=(16, 32, 64, 128), d_model=128, heads=4,
                     encoder_ffn=512, encoder_layers=4, conv_kernel=15, decoder_ffn=512,
                     decoder_layers=2, tokenizer="char")
VSR_PRESETS = {"base": VSR_BASE, "tiny": VSR_TINY}


# --- Diffusion mel generator and its guide ASR (l2s.models.denoiser, l2s.models.asr_guide) ---


@dataclass(frozen=True)
class NoiseScheduleConfig:
    """The training noise schedule; the sampler must use the same one (it travels in the checkpoint).

    Attributes:
        kind: ``"linear"`` (LipVoicer/DiffWave: ``linspace(beta_0, beta_T, num_steps)``) or ``"cosine"``
            (Nichol & Dhariwal's ``squaredcos_cap_v2``, built with diffusers; ``beta_0``/``beta_T`` unused).
        num_steps: ``T`` discrete steps (LipVoicer: 400).
        beta_0: first beta of the linear schedule.
        beta_T: last beta of the linear schedule.
    """

    kind: str = "linear"
    num_steps: int = 400
    beta_0: float = 1e-4
    beta_T: float = 0.02


@dataclass(frozen=True)
class DenoiserConfig:
    """DiffWave-style mel denoiser (:class:`l2s.models.denoiser.Denoiser`).

    Attributes:
        feature_dim: width ``D`` of the visual features (the VSR preset's d_model).
        channels: residual channels ``C``.
        layers: gated residual layers.
        dilation_cycle: dilations ``2 ** (i % dilation_cycle)``.
        kernel_size: kernel of the dilated convolutions (odd).
        cond_channels: channels of the conditioner (features + prior mel [+ speaker]) at the mel rate.
        step_dim: sinusoidal step embedding width (even).
        step_hidden: width of the step MLP.
        speaker_dim: width ``E`` of the optional speaker embedding (0: none).
        use_prior: read the DDSP prior mel (else only the visual features).
        drop_prior_with_video: the unconditional (dropped) pass also replaces the prior by its null
            vector, so that classifier-free guidance contrasts "video + prior" against "nothing".
        cond_dropout: training probability of dropping the video condition, per sample.
        schedule: the diffusion schedule it is trained for.
        prediction: what the network outputs: ``"epsilon"`` (the noise, as LipVoicer) or ``"v_prediction"``
            (``sqrt(abar) eps - sqrt(1 - abar) x_0``); the sampler always receives eps.
        residual_prior: model the mel *relative to* the prior (PriorGrad-style mean shift, Lee et al. 2022):
            the network reads ``x_t - sqrt(abar_t) prior`` and its target is that of ``mel - prior``, so it
            only has the residual to learn (the prior already holds the pitch, the energy and a coarse
            envelope); the diffusion process, the sampler and the guide ASR stay in mel space. Needs ``use_prior``.
    """

    feature_dim: int = 128
    channels: int = 64
    layers: int = 8
    dilation_cycle: int = 4
    kernel_size: int = 3
    cond_channels: int = 64
    step_dim: int = 64
    step_hidden: int = 128
    speaker_dim: int = 0
    use_prior: bool = True
    drop_prior_with_video: bool = True
    cond_dropout: float = 0.2
    schedule: NoiseScheduleConfig = field(default_factory=NoiseScheduleConfig)
    prediction: str = "epsilon"
    residual_prior: bool = False

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "DenoiserConfig":
        data = dict(data)
        data["schedule"] = NoiseScheduleConfig(**data.get("schedule", {}))
        return cls(**data)


@dataclass(frozen=True)
class GuideASRConfig:
    """CTC recogniser over noisy mels (:class:`l2s.models.asr_guide.GuideASR`).

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
        schedule: the diffusion schedule of the mels it reads.
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

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "GuideASRConfig":
        data = dict(data)
        data["schedule"] = NoiseScheduleConfig(**data.get("schedule", {}))
        return cls(**data)


# feature_dim follows the VSR presets' d_model (tiny 128, base 768).
DENOISER_TINY = DenoiserConfig()
DENOISER_BASE = DenoiserConfig(feature_dim=768, channels=256, layers=24, dilation_cycle=8, cond_channels=256,
                               step_dim=128, step_hidden=512)
DENOISER_PRESETS = {"tiny": DENOISER_TINY, "base": DENOISER_BASE}
GUIDE_ASR_TINY = GuideASRConfig()
GUIDE_ASR_BASE = GuideASRConfig(d_model=256, heads=4, ffn=1024, layers=8, conv_kernel=31, step_dim=128)
GUIDE_ASR_PRESETS = {"tiny": GUIDE_ASR_TINY, "base": GUIDE_ASR_BASE}
