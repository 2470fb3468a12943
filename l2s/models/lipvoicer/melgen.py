"""LipVoicer's MelGen: a DiffWave-style mel denoiser conditioned on lip and face features.

Reimplemented from the specification in the LipVoicer fixtures (``fixtures/lipvoicer/README.md``,
section 3) and checked against their outputs. Weight norm is folded into plain weights when a
checkpoint is converted (inference never trains the gains), so the layers here are ordinary
convolutions.

Usage::

    cond = melgen.encode(roi, face)           # once per clip: (B, 640, Tv)
    null = melgen.encode_null(B, Tv)          # the stored null buffers, for classifier-free guidance
    eps = melgen(x_t, t, cond)                # (B, 80, 4 Tv)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from l2s.config import CROP_SIZE, MEL_FRAMES_PER_VIDEO_FRAME, N_MELS
from l2s.diffusion.schedules import NoiseScheduleConfig
from l2s.models.lipvoicer.encoders import FaceEncoder, LipEncoder

FACE_SIZE = 224


@dataclass(frozen=True)
class MelGenConfig:
    """MelGen hyper-parameters (defaults: LipVoicer's released LRS2/LRS3 model, 57.3 M parameters).

    Attributes:
        tcn_channels: widths of the lip encoder's TCN blocks (dilations 1, 2, 4, 8...).
        tcn_kernel_size: TCN kernel.
        face_widths: widths of the four ResNet-18 stages of the face encoder.
        face_dim: identity vector size.
        res_channels: denoiser residual width.
        skip_channels: denoiser skip width.
        num_layers: denoiser residual layers (all dilation 1).
        step_embed_in: sinusoidal step-embedding size.
        step_embed_mid: hidden size of the step MLP.
        step_embed_out: output size of the step MLP.
        cond_upsample: time strides of the conditioner's transposed convs (product = mel frames per video frame).
        schedule: the diffusion schedule it was trained for (LipVoicer's checkpoints: its linear 400 steps).
    """

    tcn_channels: Tuple[int, ...] = (512, 512, 512, 512)
    tcn_kernel_size: int = 3
    face_widths: Tuple[int, ...] = (64, 128, 256, 512)
    face_dim: int = 128
    res_channels: int = 512
    skip_channels: int = 512
    num_layers: int = 12
    step_embed_in: int = 128
    step_embed_mid: int = 512
    step_embed_out: int = 512
    cond_upsample: Tuple[int, ...] = (2, 2)
    schedule: NoiseScheduleConfig = field(default_factory=NoiseScheduleConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tcn_channels", tuple(self.tcn_channels))
        object.__setattr__(self, "face_widths", tuple(self.face_widths))
        object.__setattr__(self, "cond_upsample", tuple(self.cond_upsample))
        if math.prod(self.cond_upsample) != MEL_FRAMES_PER_VIDEO_FRAME:
            raise ValueError(f"cond_upsample {self.cond_upsample} must multiply to {MEL_FRAMES_PER_VIDEO_FRAME}")

    @property
    def cond_channels(self) -> int:
        return self.face_dim + self.tcn_channels[-1]


MELGEN_LIPVOICER = MelGenConfig()
#: small MelGens of LipVoicer's architecture (untrained pipelines, tests)
MELGEN_TINY = MelGenConfig(tcn_channels=(32, 32), face_widths=(8, 8, 16, 16), face_dim=8, res_channels=32,
                           skip_channels=32, num_layers=4, step_embed_in=16, step_embed_mid=32, step_embed_out=32)
MELGEN_MICRO = replace(MELGEN_TINY, tcn_channels=(16, 16), res_channels=16, skip_channels=16, num_layers=2)
MELGEN_PRESETS = {"lipvoicer": MELGEN_LIPVOICER, "tiny": MELGEN_TINY, "micro": MELGEN_MICRO}


def step_embedding(t: torch.Tensor, dim: int = 128) -> torch.Tensor:
    """DiffWave's sinusoidal step embedding: ``(B, 1)`` step indices -> ``(B, dim)`` ``[sin(t f), cos(t f)]``
    with ``f_i = exp(-i ln(10000) / (dim/2 - 1))``."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=t.device) * -(math.log(10000) / (half - 1)))
    angles = t.float() * freqs
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class StepMLP(nn.Module):
    """Sinusoidal embedding -> Linear, swish, Linear, swish."""

    def __init__(self, dim_in: int, dim_mid: int, dim_out: int):
        super().__init__()
        self.dim_in = dim_in
        self.fc1 = nn.Linear(dim_in, dim_mid)
        self.fc2 = nn.Linear(dim_mid, dim_out)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """``(B, 1)`` float step indices -> ``(B, dim_out)``."""
        return F.silu(self.fc2(F.silu(self.fc1(step_embedding(t, self.dim_in)))))


class ResidualLayer(nn.Module):
    """One gated residual layer; the conditioner is upsampled to the mel rate inside each layer."""

    def __init__(self, res: int, skip: int, cond: int, step_dim: int, upsample: Tuple[int, ...]):
        super().__init__()
        self.step_proj = nn.Linear(step_dim, res)
        self.conv = nn.Conv1d(res, 2 * res, 3, padding=1)
        # The conditioner is a 1-channel image (B, 1, C, Tv): each transposed conv doubles time and its
        # 3-tap kernel also mixes neighbouring conditioner channels (as LipVoicer does).
        self.cond_upsample = nn.ModuleList(
            nn.ConvTranspose2d(1, 1, (3, 2 * s), stride=(1, s), padding=(1, s // 2)) for s in upsample)
        self.cond_proj = nn.Conv1d(cond, 2 * res, 1)
        self.res_proj = nn.Conv1d(res, res, 1)
        self.skip_proj = nn.Conv1d(res, skip, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, emb: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``x (B, R, T)``, ``cond (B, C, Tv)``, ``emb (B, E)`` -> (next x, skip)."""
        res = x.shape[1]
        h = self.conv(x + self.step_proj(emb).unsqueeze(-1))
        c = cond.unsqueeze(1)
        for up in self.cond_upsample:
            c = F.leaky_relu(up(c), 0.4)
        h = h + self.cond_proj(c.squeeze(1)[:, :, : x.shape[-1]])
        z = torch.tanh(h[:, :res]) * torch.sigmoid(h[:, res:])
        return (x + self.res_proj(z)) * math.sqrt(0.5), self.skip_proj(z)


class WaveNetDenoiser(nn.Module):
    """``(x_t (B, 80, T), t (B, 1), cond (B, C, Tv))`` -> predicted noise ``(B, 80, T)``."""

    def __init__(self, cfg: MelGenConfig):
        super().__init__()
        self.input_proj = nn.Conv1d(N_MELS, cfg.res_channels, 1)
        self.step_mlp = StepMLP(cfg.step_embed_in, cfg.step_embed_mid, cfg.step_embed_out)
        self.layers = nn.ModuleList(
            ResidualLayer(cfg.res_channels, cfg.skip_channels, cfg.cond_channels, cfg.step_embed_out,
                          cfg.cond_upsample) for _ in range(cfg.num_layers))
        self.output_hidden = nn.Conv1d(cfg.skip_channels, cfg.skip_channels, 1)
        self.output = nn.Conv1d(cfg.skip_channels, N_MELS, 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.input_proj(x))
        emb = self.step_mlp(t)
        skip = 0
        for layer in self.layers:
            h, s = layer(h, cond, emb)
            skip = skip + s
        out = skip * math.sqrt(1.0 / len(self.layers))
        return self.output(F.relu(self.output_hidden(out)))


class MelGen(nn.Module):
    """LipVoicer's audio-visual mel generator (lip encoder + face encoder + WaveNet denoiser).

    Buffers ``null_roi (1, 1, 1, 88, 88)`` and ``null_face (1, 3, 224, 224)`` are the fixed Gaussian
    inputs that stand for "no video" in classifier-free guidance; they come from the checkpoint.
    """

    def __init__(self, cfg: MelGenConfig = MelGenConfig()):
        super().__init__()
        self.config = cfg
        self.lip = LipEncoder(cfg.tcn_channels, cfg.tcn_kernel_size)
        self.face = FaceEncoder(cfg.face_widths, cfg.face_dim)
        self.denoiser = WaveNetDenoiser(cfg)
        self.register_buffer("null_roi", torch.zeros(1, 1, 1, CROP_SIZE, CROP_SIZE))
        self.register_buffer("null_face", torch.zeros(1, 3, FACE_SIZE, FACE_SIZE))

    def encode(self, roi: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        """Visual conditioner: ``roi (B, 1, Tv, 88, 88)``, ``face (B, 3, 224, 224)`` -> ``(B, face_dim + C, Tv)``,
        identity channels first (repeated over frames), then lip channels."""
        lip = self.lip(roi)
        ident = self.face(face).unsqueeze(-1).expand(-1, -1, lip.shape[-1])
        return torch.cat([ident, lip], dim=1)

    def encode_null(self, batch: int, frames: int) -> torch.Tensor:
        """The conditioner of the null inputs, broadcast to ``batch`` clips of ``frames`` video frames."""
        roi = self.null_roi.expand(batch, 1, frames, -1, -1)
        face = self.null_face.expand(batch, -1, -1, -1)
        return self.encode(roi, face)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``x_t (B, 80, 4 Tv)``, ``t (B, 1)`` float step index, ``cond (B, C, Tv)`` -> eps ``(B, 80, 4 Tv)``."""
        return self.denoiser(x, t, cond)
