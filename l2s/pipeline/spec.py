"""``pipeline.yaml``: what a pipeline directory holds and how it samples.

A pipeline is a directory (see :mod:`l2s.hub`) whose ``pipeline.yaml`` names its components'
subdirectories, the generator's sampler settings and the guidance weights::

    format_version: 2
    kind: pipeline
    name: synthgrid-small
    weights: trained              # or "untrained" (random weights, for tests and speed benches)
    trained_on: synthgrid         # optional; synthetic-face models warn on real-world video
    components: {vsr: vsr, prior: prior, generator: generator, guide: guide, vocoder: vocoder}
    generator: {solver: dpmsolver++, steps: 10, start_step: 25, asr_start: 270, asr_end: 0}
    guidance: {w_video: 2.0, w_asr: 1.5}
    text: {guide_tokenizer: char, lowercase: true}   # "char", or a SentencePiece file inside the directory
    vsr_decoding: {beam_size: 0}                     # 0: greedy CTC; else joint CTC/attention beam search
    chunking: {max_frames: 250, overlap_frames: 10, search_frames: 25}

A component is a model directory (its ``config.yaml`` says its architecture) or the name of a member of its
stage's table that needs no directory (``vocoder: griffinlim``, ``guide: whisper``). ``generator:`` holds the
settings of the generator's own architecture (a diffusion generator's
:class:`~l2s.diffusion.sampler.DiffusionSettings`, in units of its schedule, which travels in its
``config.yaml``). Only ``components.generator`` and ``components.vocoder`` are required (LipVoicer bundles have
no prior and may have no lip reader). Format 1 (``f0_ddsp``, ``melgen``, ``guide_asr`` and one ``sampler:``
section) is read through :mod:`l2s.compat`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import yaml

from l2s.arch import FAMILIES
from l2s.diffusion.guidance import Guidance
from l2s.errors import InputError, ModelError
from l2s.hub import FORMAT_VERSION, PIPELINE_FILE, read_pipeline_yaml
from l2s.structs import from_dict

COMPONENTS = FAMILIES
REQUIRED_COMPONENTS = ("generator", "vocoder")


@dataclass(frozen=True)
class ChunkSpec:
    """How long inputs are split (video frames at 25 fps).

    Attributes:
        max_frames: longest chunk, overlap included (bounds every intermediate tensor).
        overlap_frames: frames two neighbouring chunks share, crossfaded in the audio.
        search_frames: how far before the nominal boundary a stiller mouth is looked for.
    """

    max_frames: int = 250
    overlap_frames: int = 10
    search_frames: int = 25

    def __post_init__(self) -> None:
        if self.overlap_frames < 2 or self.overlap_frames % 2:
            raise InputError(f"overlap_frames must be even and >= 2, got {self.overlap_frames}")
        if self.search_frames < 0 or self.max_frames < 2 * self.overlap_frames + self.search_frames + 1:
            raise InputError(f"max_frames {self.max_frames} too short for overlap {self.overlap_frames} "
                             f"and search {self.search_frames}")


@dataclass(frozen=True)
class PipelineSpec:
    """The parsed ``pipeline.yaml``.

    Attributes:
        name: model id shown in sidecars and benches.
        weights: ``"trained"`` or ``"untrained"``.
        trained_on: corpus family (``"synthgrid"`` triggers the real-video warning), or None.
        components: component name -> subdirectory (relative to the pipeline directory) or member name.
        generator: the generator's sampler settings as stored (its architecture's ``settings_cls`` reads them
            when the pipeline loads; absent fields take that class's defaults).
        guidance: the default guidance weights.
        guide_tokenizer: ``"char"`` or a SentencePiece model path relative to the directory, or None.
        vsr_beam_size: 0 for greedy CTC decoding of the lip reader, else the beam width.
        chunking: long-input chunking.
        provenance: where the weights came from (a converter's sources and key report), kept as is.
    """

    name: str
    components: Dict[str, str]
    weights: str = "trained"
    trained_on: Optional[str] = None
    generator: Mapping[str, Any] = field(default_factory=dict)
    guidance: Guidance = field(default_factory=Guidance)
    guide_tokenizer: Optional[str] = None
    vsr_beam_size: int = 0
    chunking: ChunkSpec = field(default_factory=ChunkSpec)
    provenance: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: Union[str, Path] = PIPELINE_FILE) -> "PipelineSpec":
        """From a ``pipeline.yaml`` mapping of the current format (:func:`read_spec` upgrades older ones)."""
        if data.get("format_version") != FORMAT_VERSION:
            raise ModelError(f"{where}: pipeline format_version {data.get('format_version')!r}, "
                             f"this l2s reads {FORMAT_VERSION}")
        components = {k: str(v) for k, v in dict(data.get("components") or {}).items() if v}
        unknown = sorted(set(components) - set(COMPONENTS))
        missing = [c for c in REQUIRED_COMPONENTS if c not in components]
        if unknown or missing:
            raise ModelError(f"{where}: components " + (f"unknown: {', '.join(unknown)} " if unknown else "")
                             + (f"missing: {', '.join(missing)}" if missing else ""))
        generator = data.get("generator") or {}
        if not isinstance(generator, Mapping):
            raise ModelError(f"{where}: generator: expected a mapping of settings, got {generator!r}")
        guidance = from_dict(Guidance, dict(data.get("guidance") or {}), f"{where}: guidance", ModelError)
        chunking = from_dict(ChunkSpec, dict(data.get("chunking") or {}), f"{where}: chunking", ModelError)
        text = dict(data.get("text") or {})
        return cls(name=str(data.get("name") or Path(str(where)).parent.name), components=components,
                   weights=str(data.get("weights", "trained")), trained_on=data.get("trained_on"),
                   generator=dict(generator), guidance=guidance, guide_tokenizer=text.get("guide_tokenizer"),
                   vsr_beam_size=int(dict(data.get("vsr_decoding") or {}).get("beam_size", 0)), chunking=chunking,
                   provenance=dict(data.get("provenance") or {}))

    def to_dict(self) -> Dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "kind": "pipeline",
            "name": self.name,
            "weights": self.weights,
            "trained_on": self.trained_on,
            "components": dict(self.components),
            "generator": dict(self.generator),
            "guidance": asdict(self.guidance),
            "text": {"guide_tokenizer": self.guide_tokenizer, "lowercase": True},
            "vsr_decoding": {"beam_size": self.vsr_beam_size},
            "chunking": asdict(self.chunking),
            **({"provenance": dict(self.provenance)} if self.provenance else {}),
        }


def read_spec(directory: Union[str, Path]) -> PipelineSpec:
    """Parse ``directory/pipeline.yaml`` (either format).

    Raises:
        ModelError: no ``pipeline.yaml``, or it is malformed.
    """
    return PipelineSpec.from_dict(read_pipeline_yaml(directory), Path(directory) / PIPELINE_FILE)


def write_spec(directory: Union[str, Path], spec: PipelineSpec) -> Path:
    """Write ``directory/pipeline.yaml`` (the directory itself is assembled by the caller)."""
    path = Path(directory) / PIPELINE_FILE
    path.write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False))
    return path
