"""HiFi-GAN generator (Kong et al., 2020, "HiFi-GAN: Generative Adversarial Networks for
Efficient and High Fidelity Speech Synthesis"), laid out so jik876-format checkpoints load.

Our own code, written from the paper and the layout in the LipVoicer fixture README
(section 5). Parameter names follow jik876/hifi-gan (``conv_pre``, ``ups.i``,
``resblocks.j.convs1/convs2`` or ``.convs``, ``conv_post``) with weight norm stored as
``weight_g`` / ``weight_v``, so a ``{'generator': state_dict}`` file loads strictly.
The generator takes the natural-log contract mel (:data:`~l2s.vocoder.base.MEL_LOG`),
as LipVoicer feeds its 16 kHz HiFi-GAN.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from l2s.arch import Architecture, save_model
from l2s.config import N_MELS, SAMPLE_RATE
from l2s.errors import ModelError
from l2s.structs import from_dict
from l2s.vocoder.base import MEL_LOG
from l2s.vocoder.checkpoints import load_folded, load_state, read_state_dict
from l2s.vocoder.weight_norm import WNConv1d, WNConvTranspose1d, remove_weight_norm

LRELU_SLOPE = 0.1  # inside the network; the last activation uses torch's default 0.01, as the reference does


@dataclass(frozen=True)
class HiFiGANConfig:
    """Generator hyper-parameters (the jik876 ``config.json`` fields that shape the network).

    The defaults are V1 at our contract: LipVoicer's 16 kHz configuration, hop 160 = 2*5*4*4.
    """

    n_mels: int = N_MELS
    sample_rate: int = SAMPLE_RATE
    upsample_rates: Tuple[int, ...] = (2, 5, 4, 4)
    upsample_kernel_sizes: Tuple[int, ...] = (16, 15, 4, 4)
    upsample_initial_channel: int = 512
    resblock: str = "1"
    resblock_kernel_sizes: Tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: Tuple[Tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))

    def __post_init__(self) -> None:
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ValueError("upsample_rates and upsample_kernel_sizes differ in length")
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise ValueError("resblock_kernel_sizes and resblock_dilation_sizes differ in length")
        if self.resblock not in ("1", "2"):
            raise ValueError(f"resblock must be '1' or '2', got {self.resblock!r}")
        for u, k in zip(self.upsample_rates, self.upsample_kernel_sizes):
            if (k - u) % 2:
                raise ValueError(f"upsample kernel {k} minus rate {u} must be even (output length = T * hop)")

    @property
    def hop_length(self) -> int:
        return math.prod(self.upsample_rates)

    @classmethod
    def from_jik876(cls, config: Mapping[str, Any]) -> "HiFiGANConfig":
        """From a jik876 ``config.json`` dict (``num_mels``, ``sampling_rate``, ``hop_size``...)."""
        try:
            fields = {
                "n_mels": config.get("num_mels", N_MELS),
                "sample_rate": config["sampling_rate"],
                "upsample_rates": config["upsample_rates"],
                "upsample_kernel_sizes": config["upsample_kernel_sizes"],
                "upsample_initial_channel": config["upsample_initial_channel"],
                "resblock": str(config["resblock"]),
                "resblock_kernel_sizes": config["resblock_kernel_sizes"],
                "resblock_dilation_sizes": config["resblock_dilation_sizes"],
            }
        except (KeyError, TypeError) as exc:
            raise ModelError(f"not a usable jik876 HiFi-GAN config: {type(exc).__name__}: {exc}") from None
        cfg = from_dict(cls, fields, "jik876 HiFi-GAN config", ModelError)
        hop = config.get("hop_size")
        if hop is not None and int(hop) != cfg.hop_length:
            raise ModelError(f"jik876 config: hop_size {hop} != product of upsample_rates {cfg.hop_length}")
        return cfg


HIFIGAN_V1 = HiFiGANConfig()
HIFIGAN_TINY = HiFiGANConfig(upsample_initial_channel=32)  # tests and smoke runs
HIFIGAN_MICRO = replace(HIFIGAN_TINY, upsample_initial_channel=16, resblock_kernel_sizes=(3,),
                        resblock_dilation_sizes=((1,),))
HIFIGAN_PRESETS = {"v1": HIFIGAN_V1, "tiny": HIFIGAN_TINY, "micro": HIFIGAN_MICRO}


def _same_padding(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class ResBlock1(nn.Module):
    """Multi-receptive-field block, type 1: three (dilated conv, conv) pairs with residuals.

    Each pair: ``x + conv2(lrelu(conv1_d(lrelu(x))))``.
    """

    def __init__(self, channels: int, kernel: int, dilations: Sequence[int]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            WNConv1d(channels, channels, kernel, dilation=d, padding=_same_padding(kernel, d)) for d in dilations)
        self.convs2 = nn.ModuleList(
            WNConv1d(channels, channels, kernel, padding=_same_padding(kernel)) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, L)`` to ``(B, C, L)``."""
        for c1, c2 in zip(self.convs1, self.convs2):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x

    def reach(self) -> int:
        """Samples on each side one output sample depends on."""
        return sum(c.padding[0] for c in self.convs1) + sum(c.padding[0] for c in self.convs2)


class ResBlock2(nn.Module):
    """Multi-receptive-field block, type 2 (HiFi-GAN V3): dilated convs with residuals, ``x + conv_d(lrelu(x))``."""

    def __init__(self, channels: int, kernel: int, dilations: Sequence[int]):
        super().__init__()
        self.convs = nn.ModuleList(
            WNConv1d(channels, channels, kernel, dilation=d, padding=_same_padding(kernel, d)) for d in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, L)`` to ``(B, C, L)``."""
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, LRELU_SLOPE))
        return x

    def reach(self) -> int:
        return sum(c.padding[0] for c in self.convs)


class HiFiGAN(nn.Module):
    """HiFi-GAN generator: natural-log mel ``(B, n_mels, T)`` to waveform ``(B, T * hop)`` in [-1, 1].

    Built with weight norm (training form, the layout of jik876 checkpoints);
    call :meth:`remove_weight_norm` before inference, as the reference does.
    Satisfies :class:`~l2s.vocoder.base.Vocoder`.
    """

    mel_space = MEL_LOG

    def __init__(self, config: HiFiGANConfig = HIFIGAN_V1):
        super().__init__()
        self.config = config
        self.sample_rate = config.sample_rate
        self.hop_length = config.hop_length
        ch = config.upsample_initial_channel
        self.conv_pre = WNConv1d(config.n_mels, ch, 7, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        block = ResBlock1 if config.resblock == "1" else ResBlock2
        for i, (u, k) in enumerate(zip(config.upsample_rates, config.upsample_kernel_sizes)):
            c_in, c_out = ch // 2 ** i, ch // 2 ** (i + 1)
            self.ups.append(WNConvTranspose1d(c_in, c_out, k, u, padding=(k - u) // 2))
            for kernel, dilations in zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes):
                self.resblocks.append(block(c_out, kernel, dilations))
        self.conv_post = WNConv1d(ch // 2 ** len(config.upsample_rates), 1, 7, padding=3)
        self._init_weights()
        self.context_frames = self._context_frames()

    def _init_weights(self) -> None:
        # The paper's N(0, 0.01) initialisation of the upsampling and MRF convolutions,
        # with each weight-norm gain set to its direction's norm (so g * v / ||v|| = v).
        for module in list(self.ups) + list(self.resblocks.modules()) + [self.conv_post]:
            if isinstance(module, (WNConv1d, WNConvTranspose1d)):
                with torch.no_grad():
                    module.weight_v.normal_(0.0, 0.01)
                    module.weight_g.copy_(module.weight_v.flatten(1).norm(dim=1).view_as(module.weight_g))

    def _context_frames(self) -> int:
        """Receptive field, in mel frames on each side, rounded up (for chunked rendering)."""
        frames = self.conv_pre.padding[0]
        per_frame = 1
        blocks = len(self.config.resblock_kernel_sizes)
        for i, up in enumerate(self.ups):
            # A transposed conv output sample sees ceil(k / u) input samples (at the previous rate).
            frames += math.ceil(up.kernel_size[0] / up.stride[0]) / per_frame
            per_frame *= up.stride[0]
            frames += max(b.reach() for b in self.resblocks[i * blocks:(i + 1) * blocks]) / per_frame
        frames += self.conv_post.padding[0] / per_frame
        return math.ceil(frames) + 1

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, T)`` natural-log mel to ``(B, T * hop_length)`` waveform."""
        x = self.conv_pre(mel)
        blocks = len(self.config.resblock_kernel_sizes)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            mrf = self.resblocks[i * blocks](x)
            for j in range(1, blocks):
                mrf = mrf + self.resblocks[i * blocks + j](x)
            x = mrf / blocks
        x = self.conv_post(F.leaky_relu(x))
        return torch.tanh(x).squeeze(1)

    def remove_weight_norm(self) -> "HiFiGAN":
        """Fold weight norm into plain weights (inference form); returns ``self``."""
        return remove_weight_norm(self)


def _read_json_config(config: Union[str, Path, Mapping[str, Any]]) -> Mapping[str, Any]:
    if isinstance(config, Mapping):
        data = config
    else:
        path = Path(config)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path}: cannot read HiFi-GAN config ({exc})") from None
    # Accept a file that wraps the jik876 config under "config" (our fixtures' description files).
    if "upsample_rates" not in data and isinstance(data.get("config"), Mapping):
        data = data["config"]
    return data


def load_jik876(
    ckpt_path: Union[str, Path],
    config_json: Union[str, Path, Mapping[str, Any], HiFiGANConfig, None] = None,
    device: Union[str, torch.device] = "cpu",
    inference: bool = True,
) -> HiFiGAN:
    """A jik876-format HiFi-GAN generator checkpoint as a :class:`HiFiGAN`.

    Args:
        ckpt_path: ``g_XXXXXXXX`` (``{'generator': state_dict}``, weight-norm form), a bare
            state dict, or a ``.safetensors`` file with the same keys.
        config_json: the jik876 ``config.json`` (path or dict) or a :class:`HiFiGANConfig`;
            ``None`` reads ``config.json`` beside the checkpoint.
        device: where to put the model.
        inference: fold weight norm and switch to eval mode (what synthesis uses).

    Raises:
        ModelError: unreadable file, unusable config, or key/shape mismatch.
    """
    ckpt_path = Path(ckpt_path)
    if config_json is None:
        config_json = ckpt_path.parent / "config.json"
    config = config_json if isinstance(config_json, HiFiGANConfig) else \
        HiFiGANConfig.from_jik876(_read_json_config(config_json))
    model = HiFiGAN(config)
    load_state(model, read_state_dict(ckpt_path), str(ckpt_path))
    if inference:
        model.remove_weight_norm().eval()
    return model.to(device)


def convert_jik876(ckpt_path: Union[str, Path], out_dir: Union[str, Path],
                   config_json: Union[str, Path, Mapping[str, Any], HiFiGANConfig, None] = None) -> Path:
    """Convert a jik876 generator checkpoint into an l2s vocoder directory (weight norm folded).

    The directory stores the generator's own rate and hop; :func:`~l2s.vocoder.registry.get_vocoder`
    refuses it as a contract vocoder unless they are 16 kHz and 160.
    """
    return save_model(load_jik876(ckpt_path, config_json), out_dir, "vocoder")


ARCHITECTURE = Architecture(family="vocoder", name="hifigan", model_cls=HiFiGAN, config_cls=HiFiGANConfig,
                            presets=HIFIGAN_PRESETS, load=load_folded(HiFiGAN),
                            description="HiFi-GAN generator (jik876 layout; LipVoicer's vocoder)")
