"""LipVoicer's MelGen as a member of the ``generator`` family (the ``lipvoicer`` architecture).

The network is :class:`~l2s.models.lipvoicer.melgen.MelGen` (its own lip and face encoders, no speaker vector);
the coarse prior is used only as the start of shallow diffusion. The visual conditioner is computed once per
clip (and once for the null inputs); LipVoicer recomputes both encoders on every denoiser pass, which gives the
same numbers (the encoders are deterministic in eval mode) at roughly twice the cost.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

import torch

from l2s.arch import Architecture
from l2s.config import MEL_FRAMES_PER_VIDEO_FRAME, N_MELS
from l2s.diffusion.guidance import Guidance
from l2s.diffusion.sampler import DiffusionSettings, LossFn, NoiseSource, SampleResult, sample
from l2s.diffusion.schedules import NoiseScheduleConfig, build_schedule
from l2s.models.generator.base import GeneratorInputs
from l2s.models.lipvoicer.melgen import MELGEN_PRESETS, MelGen, MelGenConfig

#: LipVoicer's inference settings (``configs/config.yaml``): ancestral DDPM over its 400 steps, the guide from
#: step 270; with :data:`LIPVOICER_GUIDANCE` (w1 = 2, w2 = 1.5).
LIPVOICER_SETTINGS = DiffusionSettings(solver="ddpm", steps=None, asr_start=270)
LIPVOICER_GUIDANCE = Guidance(w_video=2.0, w_asr=1.5)


class LipVoicerGenerator:
    """The pipeline's generator stage for a MelGen: mouth crops and a face frame in."""

    arch = "lipvoicer"
    takes_speaker = False
    needs_features = False
    batches = False  # MelGen is built for one clip
    needs_alignment = False

    def __init__(self, model: MelGen, settings: DiffusionSettings = LIPVOICER_SETTINGS):
        self.model, self.settings = model, settings
        self.schedule: Optional[NoiseScheduleConfig] = model.config.schedule

    def with_settings(self, settings: DiffusionSettings) -> "LipVoicerGenerator":
        return LipVoicerGenerator(self.model, settings)

    def sample(self, inputs: GeneratorInputs, guidance: Guidance, asr_loss: Optional[LossFn],
               noise: Optional[NoiseSource]) -> SampleResult:
        from l2s.models.lipvoicer.preprocess import face_input, roi_input

        melgen = self.model
        device = next(melgen.parameters()).device
        roi = roi_input(inputs.roi).to(device)
        frames = roi.shape[2]
        # without a face frame (a bare ROI input) the identity is unknown: the stored null face
        face = melgen.null_face if inputs.face is None else face_input(inputs.face).to(device)
        with torch.no_grad():
            cond = melgen.encode(roi, face)
            null = melgen.encode_null(1, frames) if guidance.w_video > 0 else None
        settings = self.settings
        prior = inputs.prior_mel if settings.start_step is not None else None
        if settings.start_step is not None and prior is None:
            settings = replace(settings, start_step=None)
        return sample(lambda x, t: melgen(x, t, cond), build_schedule(self.schedule),
                      (1, N_MELS, MEL_FRAMES_PER_VIDEO_FRAME * frames), settings, guidance,
                      eps_uncond=None if null is None else (lambda x, t: melgen(x, t, null)),
                      asr_loss=asr_loss, prior=prior, noise=noise, device=device)


def _untrained(config: MelGenConfig) -> MelGen:
    model = MelGen(config)
    # LipVoicer's null inputs are fixed Gaussian draws, not zeros
    model.null_roi.normal_()
    model.null_face.normal_()
    return model


ARCHITECTURE = Architecture(family="generator", name="lipvoicer", model_cls=MelGen, config_cls=MelGenConfig,
                            presets=MELGEN_PRESETS, init=_untrained, stage=LipVoicerGenerator,
                            settings_cls=DiffusionSettings,
                            description="LipVoicer's MelGen: lip and face encoders, WaveNet-style mel denoiser")
