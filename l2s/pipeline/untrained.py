"""Pipelines of untrained (randomly initialised) components, for tests and speed benchmarks.

They exercise every stage with the real code paths and tensor sizes of a preset, and say
``weights: untrained`` in ``pipeline.yaml``; their audio is noise.

Each component is a member of its stage's table (:mod:`l2s.arch`) built from one of that member's presets:

* ``tiny``: the sizes of the CPU-trainable bundled pipeline;
* ``micro``: narrower still, for tests that push minutes of input through the pipeline.

``arch="lipvoicer"`` takes LipVoicer's generator and guide (MelGen with its own lip and face encoders, the
Efficient Conformer guide) instead of l2s's, to exercise that variant; ``arch="content-flow"`` the content decoder
and flow refiner generator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import torch

from l2s.arch import lookup, save_model
from l2s.diffusion.flow import FlowSettings
from l2s.diffusion.guidance import Guidance
from l2s.diffusion.sampler import DiffusionSettings
from l2s.errors import InputError
from l2s.io.atomic import atomic_dir
from l2s.models.guide.base import CHAR_TOKENIZER
from l2s.pipeline.spec import COMPONENTS, ChunkSpec, PipelineSpec, write_spec
from l2s.structs import to_dict

PRESETS = ("tiny", "micro")
#: The member of each stage's table an untrained pipeline is made of, per variant, in the order their random
#: weights are drawn (a member added later goes last, so the others keep the weights they had).
MEMBERS = {
    "l2s": {"vsr": "auto-avsr", "prior": "ddsp", "generator": "denoiser", "guide": "ctc", "vocoder": "hifigan",
            "aligner": "viterbi"},
    "lipvoicer": {"vsr": "auto-avsr", "prior": "ddsp", "generator": "lipvoicer", "guide": "lipvoicer",
                  "vocoder": "hifigan", "aligner": "viterbi"},
    "content-flow": {"vsr": "auto-avsr", "prior": "ddsp", "generator": "content-flow", "guide": "ctc",
                     "vocoder": "hifigan", "aligner": "viterbi"},
}
ARCHS = tuple(MEMBERS)

#: The generator settings of the untrained pipelines: for the diffusion generators shallow diffusion from the
#: coarse prior, 10 DPM-Solver++ steps; for content-flow 4 Euler steps of its refiner.
UNTRAINED_SETTINGS = DiffusionSettings(solver="dpmsolver++", steps=10, asr_start=270, start_step=300)
SETTINGS = {"l2s": UNTRAINED_SETTINGS, "lipvoicer": UNTRAINED_SETTINGS, "content-flow": FlowSettings(steps=4)}
UNTRAINED_GUIDANCE = Guidance(w_video=2.0, w_asr=1.5)


def build_untrained_pipeline(out_dir: Union[str, Path], preset: str = "tiny", seed: int = 0,
                             chunking: ChunkSpec = ChunkSpec(), arch: str = "l2s") -> Path:
    """Write a complete pipeline directory of randomly initialised components.

    Args:
        out_dir: destination directory (replaced if it exists); assembled beside it and renamed.
        preset: ``"tiny"`` or ``"micro"`` (every member's preset of that name).
        arch: ``"l2s"`` (our diffusion generator and guide), ``"lipvoicer"`` (LipVoicer's MelGen and guide) or
            ``"content-flow"`` (the content decoder and flow refiner with our guide).
        seed: seed of the random weights.
        chunking: long-input chunking to record in ``pipeline.yaml``.

    Returns:
        ``out_dir``, loadable by :meth:`l2s.pipeline.Lip2Speech.from_pretrained`.
    """
    if preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; expected one of {PRESETS}")
    if arch not in ARCHS:
        raise InputError(f"unknown arch {arch!r}; expected one of {ARCHS}")
    out = Path(out_dir)
    with atomic_dir(out) as tmp:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            for component, member in MEMBERS[arch].items():
                save_model(lookup(component, member).create(preset), tmp / component, component)
        name = f"untrained-{preset}" + ("" if arch == "l2s" else f"-{arch}")
        spec = PipelineSpec(name=name, weights="untrained", trained_on=None, components={c: c for c in COMPONENTS},
                            generator=to_dict(SETTINGS[arch]), guidance=UNTRAINED_GUIDANCE,
                            guide_tokenizer=CHAR_TOKENIZER, vsr_beam_size=0, chunking=chunking)
        write_spec(tmp, spec)
    return out
