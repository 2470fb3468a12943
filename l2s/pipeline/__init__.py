"""The end-to-end pipeline: silent talking-face video -> speech (:class:`Lip2Speech`).

* :mod:`l2s.pipeline.pipeline`: :class:`Lip2Speech` and :class:`SynthesisResult`.
* :mod:`l2s.pipeline.spec`: ``pipeline.yaml`` (components, the generator's settings, guidance, chunking).
* :mod:`l2s.pipeline.build`: a pipeline directory from trained model directories (``l2s pipeline build``).
* :mod:`l2s.pipeline.lipvoicer`: a pipeline directory from LipVoicer's released checkpoints.
* :mod:`l2s.pipeline.chunking`: long inputs in overlapping chunks cut where the mouth is still.
* :mod:`l2s.pipeline.inputs`: video files, frames, ROIs and reference voices.
* :mod:`l2s.pipeline.untrained`: randomly initialised pipelines for tests and speed benchmarks.

The stages' networks and their seams (the generator and guide interfaces) live in :mod:`l2s.models`, found
through the architecture tables of :mod:`l2s.arch`; nothing there imports this package.
"""

from l2s.pipeline.pipeline import L2SWarning, Lip2Speech, LipReading, SynthesisResult, resolve_device
from l2s.pipeline.spec import ChunkSpec, PipelineSpec, read_spec
from l2s.pipeline.untrained import build_untrained_pipeline

__all__ = ["Lip2Speech", "SynthesisResult", "LipReading", "L2SWarning", "resolve_device", "PipelineSpec",
           "ChunkSpec", "read_spec", "build_untrained_pipeline"]
