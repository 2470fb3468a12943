"""The ``generator`` stage: mel generators behind one seam (:mod:`l2s.models.generator.base`).

* :mod:`l2s.models.generator.denoiser`: l2s's DiffWave-style diffusion denoiser (``denoiser``), conditioned on
  the lip reader's features, the coarse prior mel and an optional speaker embedding.
* :mod:`l2s.models.generator.lipvoicer`: LipVoicer's MelGen (``lipvoicer``), with its own lip and face encoders.
"""

from l2s.models.generator.base import Generator, GeneratorInputs

__all__ = ["Generator", "GeneratorInputs"]
