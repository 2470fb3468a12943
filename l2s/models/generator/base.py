"""The generator seam: what the pipeline gives a mel generator, and what it gets back.

A generator owns its network, its schedule (if it has one) and its sampler settings; the pipeline passes
only the clip's inputs (:class:`GeneratorInputs`), the guidance weights, the guide's loss toward the text
and the noise source. A family member declares its settings dataclass (``settings_cls`` of its
:class:`~l2s.arch.Architecture`), which ``pipeline.yaml`` stores under ``generator:`` and the command line
overrides (``--steps``, ``--solver``, ``--start-step``; an option the generator does not know is refused).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Protocol

import torch

from l2s.diffusion.guidance import Guidance
from l2s.diffusion.sampler import LossFn, NoiseSource, SampleResult
from l2s.diffusion.schedules import NoiseScheduleConfig


@dataclass(frozen=True)
class GeneratorInputs:
    """What a generator may condition on, for a batch of B clips of one length (B = 1 unless the generator
    ``batches``).

    Attributes:
        roi: ``(B, T, 96, 96)`` uint8 mouth crops.
        features: ``(B, T, D)`` VSR features, or None (LipVoicer reads the ROI itself).
        prior_mel: ``(B, 80, 4 T)`` model-space coarse prior mel, or None.
        face: ``(B, H, W, 3)`` uint8 RGB face frame, or None (LipVoicer then uses its null face).
        speaker: ``(B, E)`` speaker embedding, or None.
        f0: ``(B, 4 T)`` the prior's F0 in Hz (0 unvoiced), or None.
        voiced: ``(B, 4 T)`` the prior's voicing, or None.
        alignment: the text on the clip's timeline (:class:`~l2s.align.timeline.Alignment`), or None; read by
            a generator whose ``needs_alignment`` is True (such a generator does not batch).
    """

    roi: torch.Tensor
    features: Optional[torch.Tensor] = None
    prior_mel: Optional[torch.Tensor] = None
    face: Optional[torch.Tensor] = None
    speaker: Optional[torch.Tensor] = None
    f0: Optional[torch.Tensor] = None
    voiced: Optional[torch.Tensor] = None
    alignment: Optional[Any] = None


class Generator(Protocol):
    """The generator stage of a pipeline.

    Attributes:
        arch: its architecture's name.
        model: the network (what a pipeline stores and loads).
        settings: its sampler settings (a frozen dataclass of its family's ``settings_cls``).
        schedule: the noise schedule the network was trained on, or None (a guide must share it).
        takes_speaker: a speaker embedding changes its output.
        needs_features: it reads the lip reader's features.
        batches: its :meth:`sample` takes several clips at once (B > 1, each item's noise drawn from the noise
            source) and gives what it gives them one by one; the pipeline then runs a long input's chunks in
            batches on a GPU (:mod:`l2s.pipeline.batched`). A generator without the attribute is run one
            chunk at a time.
        needs_alignment: it reads the text on the timeline (:attr:`GeneratorInputs.alignment`): the text then
            drives the speech without a guide.
    """

    arch: str
    model: torch.nn.Module
    settings: Any
    schedule: Optional[NoiseScheduleConfig]
    takes_speaker: bool
    needs_features: bool
    batches: bool
    needs_alignment: bool

    def with_settings(self, settings: Any) -> "Generator":
        """The same network with other sampler settings."""
        ...

    def sample(self, inputs: GeneratorInputs, guidance: Guidance, asr_loss: Optional[LossFn],
               noise: Optional[NoiseSource]) -> SampleResult:
        """Sample ``(B, 80, 4 T)`` model-space mel; ``asr_loss`` (if any) steers it toward a text."""
        ...
