"""Vocos (Siuzdak, 2023, "Vocos: Closing the gap between time-domain and Fourier-based
neural vocoders") built from the ``vocos`` package's modules.

Two uses:

* :class:`VocosVocoder`, at our contract: ``vocos.models.VocosBackbone`` (ConvNeXt) on the
  contract mel in model space (:data:`~l2s.vocoder.base.MEL_NORM`), then
  ``vocos.heads.ISTFTHead`` with n_fft 640, hop 160 and "same" padding, so ``T`` frames
  give exactly ``T * 160`` samples at 16 kHz. Stored as an l2s model directory.
* :class:`PretrainedVocos`: an official checkpoint directory (``config.yaml`` +
  ``pytorch_model.bin``, the ``charactr/vocos-mel-24khz`` layout) with its own mel front
  end and sample rate. It does not take the contract mel; it offers
  :meth:`PretrainedVocos.copy_synthesis` on contract-rate waveforms (resampling in and out).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Union

import torch
import yaml
from torch import nn

from l2s.arch import Architecture
from l2s.config import CONTRACT, N_MELS, SAMPLE_RATE
from l2s.errors import ModelError
from l2s.vocoder.base import MEL_LOG, MEL_NORM
from l2s.vocoder.checkpoints import load_folded, load_state

OFFICIAL_CONFIG = "config.yaml"
OFFICIAL_WEIGHTS = "pytorch_model.bin"

# Classes an official config.yaml may name. Only these are built: a config file never
# gets to import arbitrary code.
_ALLOWED_CLASSES = {
    "vocos.feature_extractors.MelSpectrogramFeatures",
    "vocos.models.VocosBackbone",
    "vocos.models.VocosResNetBackbone",
    "vocos.heads.ISTFTHead",
    "vocos.heads.IMDCTSymExpHead",
    "vocos.heads.IMDCTCosHead",
}


@dataclass(frozen=True)
class VocosConfig:
    """A Vocos at our contract.

    The default is the size of the official Vocos models (dim 512, 8 ConvNeXt layers,
    13.3 M parameters), which still renders at a real-time factor of about 0.03 on one CPU
    thread at our 100 frames/s (target <= 0.05; see ``vocoders/README.md``).
    """

    n_mels: int = N_MELS
    dim: int = 512
    intermediate_dim: int = 1536
    num_layers: int = 8
    n_fft: int = CONTRACT.mel.n_fft
    hop_length: int = CONTRACT.mel.hop_length
    sample_rate: int = SAMPLE_RATE


VOCOS_BASE = VocosConfig()
#: the bundled pipeline's size (2.7 M parameters; vocoders/vocos-small)
VOCOS_SMALL = VocosConfig(dim=256, intermediate_dim=768, num_layers=6)
VOCOS_TINY = VocosConfig(dim=32, intermediate_dim=96, num_layers=2)
VOCOS_PRESETS = {"base": VOCOS_BASE, "small": VOCOS_SMALL, "tiny": VOCOS_TINY}


class VocosVocoder(nn.Module):
    """Contract mel (model space) ``(B, 80, T)`` to waveform ``(B, T * 160)``; a Vocoder."""

    mel_space = MEL_NORM

    def __init__(self, config: VocosConfig = VOCOS_BASE):
        super().__init__()
        from l2s.extras import import_using_torchaudio

        import_using_torchaudio("vocos")  # vocos imports torchaudio: its broken extension is one line
        from vocos.heads import ISTFTHead
        from vocos.models import VocosBackbone

        self.config = config
        self.sample_rate = config.sample_rate
        self.hop_length = config.hop_length
        self.backbone = VocosBackbone(input_channels=config.n_mels, dim=config.dim,
                                      intermediate_dim=config.intermediate_dim, num_layers=config.num_layers)
        self.head = ISTFTHead(dim=config.dim, n_fft=config.n_fft, hop_length=config.hop_length, padding="same")
        # Embedding conv (k 7) and one depthwise k-7 conv per block, plus the frames one
        # ISTFT window spans; all other layers act per frame.
        self.context_frames = 3 + 3 * config.num_layers + math.ceil(config.n_fft / config.hop_length) + 1

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, T)`` model-space mel to ``(B, T * hop_length)`` waveform."""
        return self.head(self.backbone(mel))


def _build(section: Mapping[str, Any], where: str) -> nn.Module:
    import importlib

    class_path = section.get("class_path") if isinstance(section, Mapping) else None
    if class_path not in _ALLOWED_CLASSES:
        raise ModelError(f"{where}: unsupported Vocos component {class_path!r} "
                         f"(supported: {', '.join(sorted(_ALLOWED_CLASSES))})")
    module_name, name = class_path.rsplit(".", 1)
    cls = getattr(importlib.import_module(module_name), name)
    try:
        return cls(**dict(section.get("init_args") or {}))
    except TypeError as exc:
        raise ModelError(f"{where}: bad init_args for {class_path}: {exc}") from None


class PretrainedVocos(nn.Module):
    """An official Vocos checkpoint: its own feature extractor, backbone and head.

    Attributes:
        sample_rate / hop_length / n_mels: the checkpoint's own front end (24000 / 256 / 100
            for ``charactr/vocos-mel-24khz``).
    """

    mel_space = MEL_LOG  # natural log, but of the checkpoint's own mel, not the contract's
    takes_contract_mel = False

    def __init__(self, feature_extractor: nn.Module, backbone: nn.Module, head: nn.Module, sample_rate: int,
                 hop_length: int, n_mels: int):
        super().__init__()
        self.feature_extractor = feature_extractor
        self.backbone = backbone
        self.head = head
        self.sample_rate = sample_rate
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.context_frames = 64

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """The checkpoint's own features ``(B, n_mels, T)`` to waveform ``(B, samples)`` at ``sample_rate``."""
        return self.head(self.backbone(features))

    def copy_synthesis(self, wav: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
        """Resynthesise ``(B, N)`` audio at ``sample_rate`` through the checkpoint; ``(B, N)`` out."""
        from torchaudio.functional import resample

        x = resample(wav, sample_rate, self.sample_rate) if sample_rate != self.sample_rate else wav
        y = self(self.feature_extractor(x))
        y = resample(y, self.sample_rate, sample_rate) if sample_rate != self.sample_rate else y
        n = wav.shape[-1]
        return y[..., :n] if y.shape[-1] >= n else torch.nn.functional.pad(y, (0, n - y.shape[-1]))


def is_official_vocos_dir(path: Union[str, Path]) -> bool:
    """Whether ``path`` looks like an official Vocos checkpoint directory."""
    path = Path(path)
    if not (path / OFFICIAL_CONFIG).is_file() or not (path / OFFICIAL_WEIGHTS).is_file():
        return False
    try:
        data = yaml.safe_load((path / OFFICIAL_CONFIG).read_text()) or {}
    except yaml.YAMLError:
        return False
    return isinstance(data, dict) and {"feature_extractor", "backbone", "head"} <= set(data)


def load_official_vocos(path: Union[str, Path], device: Union[str, torch.device] = "cpu") -> PretrainedVocos:
    """Load an official Vocos checkpoint from a local directory or a hub repo id.

    A repo id is resolved through :func:`l2s.hub.resolve`, which uses only the local
    cache when ``HF_HUB_OFFLINE`` is set. Only mel-feature checkpoints are supported
    (the EnCodec-token ones need the EnCodec model and are not vocoders of mels).

    Raises:
        ModelError: missing files, an unsupported component, or a key mismatch.
    """
    from l2s.hub import resolve

    root = resolve(path)
    cfg_file, weights = root / OFFICIAL_CONFIG, root / OFFICIAL_WEIGHTS
    if not cfg_file.is_file() or not weights.is_file():
        raise ModelError(f"{root}: not an official Vocos directory (needs {OFFICIAL_CONFIG} and {OFFICIAL_WEIGHTS})")
    config = yaml.safe_load(cfg_file.read_text()) or {}
    parts = {}
    for part in ("feature_extractor", "backbone", "head"):
        if part not in config:
            raise ModelError(f"{cfg_file}: no {part!r} section")
        parts[part] = _build(config[part], str(cfg_file))
    fe_args = config["feature_extractor"].get("init_args") or {}
    model = PretrainedVocos(**parts, sample_rate=int(fe_args.get("sample_rate", 24000)),
                            hop_length=int(fe_args.get("hop_length", 256)), n_mels=int(fe_args.get("n_mels", 100)))
    try:
        state = torch.load(str(weights), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad pickle
        raise ModelError(f"{weights}: unreadable ({type(exc).__name__}: {exc})") from None
    load_state(model, state, str(weights))
    return model.eval().to(device)


ARCHITECTURE = Architecture(family="vocoder", name="vocos", model_cls=VocosVocoder, config_cls=VocosConfig,
                            presets=VOCOS_PRESETS, load=load_folded(VocosVocoder),
                            description="Vocos (ConvNeXt backbone + ISTFT head) at the signal contract")
