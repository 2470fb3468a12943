"""Mel generators and guide ASRs behind one interface, whatever their architecture.

A pipeline's ``melgen`` directory says its ``arch`` in ``config.yaml``:

* ``lipvoicer``: LipVoicer's MelGen (its own lip and face encoders; no speaker vector; the DDSP
  prior only as the start of shallow diffusion);
* anything else: l2s's own denoiser (:mod:`l2s.models.denoiser`), conditioned on the VSR features,
  the DDSP prior mel and an optional speaker embedding, with its training schedule stored inside.

The guide ASR (``guide_asr``) is LipVoicer's step-conditioned Efficient Conformer (``arch: lipvoicer``)
or ours (:mod:`l2s.models.asr_guide`); either reads the text through the tokenizer ``pipeline.yaml``
names. Both generators run the one sampler loop, :func:`l2s.diffusion.sampler.sample`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Protocol, Union

import torch
import yaml

from l2s.config import MEL_FRAMES_PER_VIDEO_FRAME, N_MELS
from l2s.diffusion.sampler import LossFn, NoiseSource, SampleResult, SamplerConfig, sample
from l2s.diffusion.schedules import DiffusionSchedule
from l2s.errors import ModelError
from l2s.hub import CONFIG_FILE
from l2s.pipeline.spec import CHAR_TOKENIZER

LIPVOICER_ARCH = "lipvoicer"
L2S_ARCH = "l2s"


@dataclass(frozen=True)
class GeneratorInputs:
    """What a generator may condition on, for one clip (batch 1).

    Attributes:
        roi: ``(1, T, 96, 96)`` uint8 mouth crops.
        features: ``(1, T, D)`` VSR features, or None (LipVoicer reads the ROI itself).
        prior_mel: ``(1, 80, 4 T)`` model-space DDSP prior mel, or None.
        face: ``(1, H, W, 3)`` uint8 RGB face frame, or None (LipVoicer then uses its null face).
        speaker: ``(1, E)`` speaker embedding, or None.
    """

    roi: torch.Tensor
    features: Optional[torch.Tensor] = None
    prior_mel: Optional[torch.Tensor] = None
    face: Optional[torch.Tensor] = None
    speaker: Optional[torch.Tensor] = None


class MelGenerator(Protocol):
    """The mel generator stage of a pipeline."""

    arch: str
    takes_speaker: bool
    needs_features: bool

    def schedule(self) -> Optional[DiffusionSchedule]:
        """The schedule stored with the network, or None (then ``pipeline.yaml``'s applies)."""
        ...

    def sample(self, inputs: GeneratorInputs, config: SamplerConfig, schedule: DiffusionSchedule,
               asr_loss: Optional[LossFn], noise: Optional[NoiseSource]) -> SampleResult:
        """Sample ``(1, 80, 4 T)`` model-space mel; ``asr_loss`` (if any) steers it toward a text."""
        ...


class Guide:
    """A guide ASR network and the tokenizer of its text.

    Args:
        model: the guide network.
        tokenizer: ``"char"`` (:class:`~l2s.text.tokenizer.CharTokenizer` ids, blank 0) or a
            SentencePiece model file (plain ``encode`` ids, LipVoicer's convention).
        arch: ``"lipvoicer"`` (``ctc_loss(x, lengths, t, tokens)``) or ``"l2s"``
            (:func:`l2s.models.asr_guide.guidance_loss`).
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Union[str, Path], arch: str):
        self.model, self.arch = model, arch
        if str(tokenizer) == CHAR_TOKENIZER:
            from l2s.text.tokenizer import CharTokenizer

            self._encode = CharTokenizer().encode
        else:
            import sentencepiece as spm

            processor = spm.SentencePieceProcessor(model_file=str(tokenizer))
            self._encode = processor.encode

    def tokens(self, text: str) -> Optional[torch.Tensor]:
        """``(1, S)`` ids of the lower-cased text, or None when it has none."""
        ids = [int(i) for i in self._encode(" ".join(text.lower().split()))]
        return torch.tensor([ids], dtype=torch.long) if ids else None

    def loss_fn(self, tokens: torch.Tensor, frames: int) -> LossFn:
        """The sampler's ``asr_loss`` toward ``tokens`` for one clip of ``frames`` mel frames."""
        device = next(self.model.parameters()).device
        tokens = tokens.to(device)
        if self.arch == LIPVOICER_ARCH:
            lengths = torch.tensor([frames], device=device)
            return lambda x, t: self.model.ctc_loss(x, lengths, t, tokens)
        from l2s.models.asr_guide import guidance_loss

        return guidance_loss(self.model, tokens)


class LipVoicerGenerator:
    """LipVoicer's MelGen: mouth crops and a face frame in; the DDSP prior only for shallow starts.

    The visual conditioner is computed once per clip (and once for the null inputs), as
    :func:`l2s.models.lipvoicer.generate.generate_mel` does.
    """

    arch = LIPVOICER_ARCH
    takes_speaker = False
    needs_features = False

    def __init__(self, melgen: torch.nn.Module):
        self.melgen = melgen

    def schedule(self) -> Optional[DiffusionSchedule]:
        return None  # LipVoicer checkpoints carry no schedule: pipeline.yaml's applies

    def sample(self, inputs: GeneratorInputs, config: SamplerConfig, schedule: DiffusionSchedule,
               asr_loss: Optional[LossFn], noise: Optional[NoiseSource]) -> SampleResult:
        from l2s.models.lipvoicer.preprocess import face_input, roi_input

        device = next(self.melgen.parameters()).device
        roi = roi_input(inputs.roi).to(device)
        frames = roi.shape[2]
        # without a face frame (a bare ROI input) the identity is unknown: the stored null face
        face = self.melgen.null_face if inputs.face is None else face_input(inputs.face).to(device)
        with torch.no_grad():
            cond = self.melgen.encode(roi, face)
            null = self.melgen.encode_null(1, frames) if config.w_video > 0 else None
        prior = inputs.prior_mel if config.start_step is not None else None
        if config.start_step is not None and prior is None:
            config = replace(config, start_step=None)
        return sample(lambda x, t: self.melgen(x, t, cond), schedule, (1, N_MELS, MEL_FRAMES_PER_VIDEO_FRAME * frames),
                      config, eps_uncond=None if null is None else (lambda x, t: self.melgen(x, t, null)),
                      asr_loss=asr_loss, prior=prior, noise=noise, device=device)


class DenoiserGenerator:
    """l2s's own denoiser (:mod:`l2s.models.denoiser`): VSR features, the DDSP prior mel and an optional
    speaker embedding in; its training schedule travels with it."""

    arch = L2S_ARCH
    needs_features = True

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.takes_speaker = model.config.speaker_dim > 0

    def schedule(self) -> Optional[DiffusionSchedule]:
        return self.model.schedule()

    def sample(self, inputs: GeneratorInputs, config: SamplerConfig, schedule: DiffusionSchedule,
               asr_loss: Optional[LossFn], noise: Optional[NoiseSource]) -> SampleResult:
        from l2s.models.denoiser import sample_mel

        if inputs.features is None:
            raise ModelError("l2s's denoiser needs the VSR features: the pipeline has no lip reader (vsr)")
        if config.start_step is not None and inputs.prior_mel is None:
            config = replace(config, start_step=None)
        speaker = inputs.speaker if self.takes_speaker else None
        return sample_mel(self.model, inputs.features, config, prior_mel=inputs.prior_mel, speaker=speaker,
                          asr_loss=asr_loss, noise=noise)


def model_arch(directory: Union[str, Path]) -> Optional[str]:
    """The ``config.arch`` of a model directory, or None."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise ModelError(f"{directory}: not a model directory (no {CONFIG_FILE})")
    meta = yaml.safe_load(path.read_text()) or {}
    return (meta.get("config") or {}).get("arch")


def load_generator(directory: Union[str, Path], device: torch.device) -> MelGenerator:
    """The mel generator stored in ``directory``, dispatched on its ``arch``."""
    if model_arch(directory) == LIPVOICER_ARCH:
        from l2s.models.lipvoicer.variants import load_melgen

        return LipVoicerGenerator(load_melgen(directory, device))
    from l2s.models.denoiser import load_denoiser

    return DenoiserGenerator(load_denoiser(directory, device))


def load_guide(directory: Union[str, Path], tokenizer: Optional[str], root: Path,
               device: torch.device) -> Optional[Guide]:
    """The guide ASR in ``directory`` with its tokenizer (``None`` when no tokenizer is known)."""
    if tokenizer is None:
        return None
    tok: Union[str, Path] = tokenizer if tokenizer == CHAR_TOKENIZER else root / tokenizer
    if tok != CHAR_TOKENIZER and not Path(tok).is_file():
        raise ModelError(f"{root}: guide tokenizer {tokenizer} not found")
    if model_arch(directory) == LIPVOICER_ARCH:
        from l2s.models.lipvoicer.variants import load_guide as load_lipvoicer_guide

        return Guide(load_lipvoicer_guide(directory, device), tok, LIPVOICER_ARCH)
    from l2s.models.asr_guide import load_guide as load_l2s_guide

    return Guide(load_l2s_guide(directory, device), tok, L2S_ARCH)
