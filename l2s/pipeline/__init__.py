"""The end-to-end pipeline: silent talking-face video -> speech (:class:`Lip2Speech`).

* :mod:`l2s.pipeline.pipeline`: :class:`Lip2Speech` and :class:`SynthesisResult`.
* :mod:`l2s.pipeline.spec`: ``pipeline.yaml`` (components, sampler, chunking).
* :mod:`l2s.pipeline.generators`: mel generators and guides behind one interface (LipVoicer's, ours).
* :mod:`l2s.pipeline.chunking`: long inputs in overlapping chunks cut where the mouth is still.
* :mod:`l2s.pipeline.inputs`: video files, frames, ROIs and reference voices.
* :mod:`l2s.pipeline.untrained`: randomly initialised pipelines for tests and speed benchmarks.
"""

from l2s.pipeline.pipeline import L2SWarning, Lip2Speech, LipReading, SynthesisResult, resolve_device
from l2s.pipeline.spec import ChunkSpec, PipelineSpec, read_spec
from l2s.pipeline.untrained import build_untrained_pipeline

__all__ = ["Lip2Speech", "SynthesisResult", "LipReading", "L2SWarning", "resolve_device", "PipelineSpec",
           "ChunkSpec", "read_spec", "build_untrained_pipeline"]
