"""LipVoicer's networks (Yemini et al., 2024), reimplemented so its released checkpoints run in l2s.

* :class:`MelGen`: lip + face encoders and the WaveNet-style mel denoiser.
* :class:`ASRGuide`: the step-conditioned Efficient Conformer CTC guide.
* :mod:`l2s.models.lipvoicer.convert`: LipVoicer checkpoint -> l2s state dict, every key accounted for.
"""

from l2s.models.lipvoicer.asr import ASRGuide, ASRGuideConfig
from l2s.models.lipvoicer.melgen import MelGen, MelGenConfig

__all__ = ["MelGen", "MelGenConfig", "ASRGuide", "ASRGuideConfig"]
