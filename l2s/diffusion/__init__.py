"""Diffusion: noise schedules, guidance terms (pure functions) and the reverse loop.

* :mod:`l2s.diffusion.schedules`: the LipVoicer linear schedule and diffusers schedulers built from it.
* :mod:`l2s.diffusion.guidance`: classifier-free guidance, the ASR gradient term, the shallow-diffusion start.
* :mod:`l2s.diffusion.sampler`: the reverse loop, written once, for every solver.
"""

from l2s.diffusion.guidance import asr_guidance, cfg, noised_prior
from l2s.diffusion.sampler import GaussianNoise, ReplayNoise, SampleResult, SamplerConfig, StepRecord, sample
from l2s.diffusion.schedules import DiffusionSchedule, linear_schedule, make_scheduler

__all__ = [
    "DiffusionSchedule", "linear_schedule", "make_scheduler",
    "cfg", "asr_guidance", "noised_prior",
    "SamplerConfig", "SampleResult", "StepRecord", "GaussianNoise", "ReplayNoise", "sample",
]
