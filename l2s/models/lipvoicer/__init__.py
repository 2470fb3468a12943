"""LipVoicer's networks (Yemini et al., 2024), reimplemented so its released checkpoints run in l2s.

* :class:`MelGen`: lip + face encoders and the WaveNet-style mel denoiser.
* :class:`ASRGuide`: the step-conditioned Efficient Conformer CTC guide.
* :mod:`l2s.models.lipvoicer.convert`: LipVoicer checkpoint -> l2s state dict, every key accounted for.

They join the stage tables as the ``lipvoicer`` members of the ``generator`` and ``guide`` families
(:mod:`l2s.models.generator.lipvoicer`, :mod:`l2s.models.guide.lipvoicer`); :mod:`l2s.pipeline.lipvoicer`
writes a pipeline directory from LipVoicer's released checkpoints.
"""

from l2s.models.lipvoicer.asr import ASRGuide, ASRGuideConfig
from l2s.models.lipvoicer.melgen import MelGen, MelGenConfig

__all__ = ["MelGen", "MelGenConfig", "ASRGuide", "ASRGuideConfig"]
