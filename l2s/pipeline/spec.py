"""``pipeline.yaml``: what a pipeline directory holds and how it samples.

A pipeline is a directory (see :mod:`l2s.hub`) whose ``pipeline.yaml`` names its components'
subdirectories and carries the sampler settings::

    format_version: 1
    kind: pipeline
    name: synthgrid-small
    weights: trained              # or "untrained" (random weights, for tests and speed benches)
    trained_on: synthgrid         # optional; synthetic-face models warn on real-world video
    components: {vsr: vsr, f0_ddsp: f0_ddsp, melgen: melgen, guide_asr: guide_asr, vocoder: vocoder}
    sampler: {schedule: {num_steps: 400, beta_0: 1.0e-4, beta_T: 0.02}, solver: dpmsolver++, steps: 10,
              w_video: 2.0, w_asr: 1.5, asr_start: 270, start_step: null}
    text: {guide_tokenizer: char, lowercase: true}   # "char", or a SentencePiece file inside the directory
    vsr_decoding: {beam_size: 0}                     # 0: greedy CTC; else joint CTC/attention beam search
    chunking: {max_frames: 250, overlap_frames: 10, search_frames: 25}

Only ``components.melgen`` and ``components.vocoder`` are required (LipVoicer bundles have no
F0/DDSP prior and may have no lip reader). ``aligner`` (:mod:`l2s.align.checkpoint`) places the text on
the timeline with the lip reader's features.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import yaml

from l2s.diffusion.sampler import SamplerConfig
from l2s.diffusion.schedules import LIPVOICER_BETA_0, LIPVOICER_BETA_T, LIPVOICER_T
from l2s.errors import InputError, ModelError
from l2s.hub import FORMAT_VERSION, PIPELINE_FILE

COMPONENTS = ("vsr", "aligner", "f0_ddsp", "melgen", "guide_asr", "vocoder")
REQUIRED_COMPONENTS = ("melgen", "vocoder")
CHAR_TOKENIZER = "char"


@dataclass(frozen=True)
class ScheduleSpec:
    """The linear DDPM schedule the mel generator was trained with."""

    num_steps: int = LIPVOICER_T
    beta_0: float = LIPVOICER_BETA_0
    beta_T: float = LIPVOICER_BETA_T


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
        components: component name -> subdirectory (relative to the pipeline directory).
        schedule: the diffusion schedule of a generator that stores none (LipVoicer's); l2s's denoiser
            carries its training schedule in its own config, which wins.
        sampler: default solver, steps and guidance weights.
        guide_tokenizer: ``"char"`` or a SentencePiece model path relative to the directory, or None.
        vsr_beam_size: 0 for greedy CTC decoding of the lip reader, else the beam width.
        chunking: long-input chunking.
        provenance: where the weights came from (a converter's sources and key report), kept as is.
    """

    name: str
    components: Dict[str, str]
    weights: str = "trained"
    trained_on: Optional[str] = None
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    guide_tokenizer: Optional[str] = None
    vsr_beam_size: int = 0
    chunking: ChunkSpec = field(default_factory=ChunkSpec)
    provenance: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: Union[str, Path] = PIPELINE_FILE) -> "PipelineSpec":
        if data.get("format_version") != FORMAT_VERSION:
            raise ModelError(f"{where}: pipeline format_version {data.get('format_version')!r}, "
                             f"this l2s reads {FORMAT_VERSION}")
        components = {k: str(v) for k, v in dict(data.get("components") or {}).items() if v}
        unknown = sorted(set(components) - set(COMPONENTS))
        missing = [c for c in REQUIRED_COMPONENTS if c not in components]
        if unknown or missing:
            raise ModelError(f"{where}: components " + (f"unknown: {', '.join(unknown)} " if unknown else "")
                             + (f"missing: {', '.join(missing)}" if missing else ""))
        sampler = dict(data.get("sampler") or {})
        schedule = ScheduleSpec(**dict(sampler.pop("schedule", None) or {}))
        try:
            sampler_cfg = SamplerConfig(**sampler)
            chunking = ChunkSpec(**dict(data.get("chunking") or {}))
        except TypeError as exc:
            raise ModelError(f"{where}: bad sampler or chunking section ({exc})") from None
        text = dict(data.get("text") or {})
        return cls(name=str(data.get("name") or Path(str(where)).parent.name), components=components,
                   weights=str(data.get("weights", "trained")), trained_on=data.get("trained_on"),
                   schedule=schedule, sampler=sampler_cfg, guide_tokenizer=text.get("guide_tokenizer"),
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
            "sampler": {"schedule": asdict(self.schedule), **asdict(self.sampler)},
            "text": {"guide_tokenizer": self.guide_tokenizer, "lowercase": True},
            "vsr_decoding": {"beam_size": self.vsr_beam_size},
            "chunking": asdict(self.chunking),
            **({"provenance": dict(self.provenance)} if self.provenance else {}),
        }


def read_spec(directory: Union[str, Path]) -> PipelineSpec:
    """Parse ``directory/pipeline.yaml``.

    Raises:
        ModelError: no ``pipeline.yaml``, or it is malformed.
    """
    path = Path(directory) / PIPELINE_FILE
    if not path.is_file():
        raise ModelError(f"{directory}: not a pipeline directory (no {PIPELINE_FILE})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ModelError(f"{path}: unreadable YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a mapping")
    return PipelineSpec.from_dict(data, path)


def write_spec(directory: Union[str, Path], spec: PipelineSpec) -> Path:
    """Write ``directory/pipeline.yaml`` (the directory itself is assembled by the caller)."""
    path = Path(directory) / PIPELINE_FILE
    path.write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False))
    return path
