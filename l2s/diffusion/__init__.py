"""Diffusion: noise schedules, guidance terms (pure functions) and the reverse loop.

* :mod:`l2s.diffusion.schedules`: the LipVoicer linear schedule and diffusers schedulers built from it.
* :mod:`l2s.diffusion.guidance`: classifier-free guidance, the ASR gradient term, the shallow-diffusion start.
* :mod:`l2s.diffusion.sampler`: the reverse loop, written once, for every solver.
* :mod:`l2s.diffusion.options`: its settings (:class:`SamplerConfig`), importable without torch.

The names below are imported on first use, so ``l2s.diffusion.options`` loads without torch.
"""

import importlib
from typing import Any

_EXPORTS = {
    "DiffusionSchedule": "schedules", "linear_schedule": "schedules", "make_scheduler": "schedules",
    "cfg": "guidance", "asr_guidance": "guidance", "noised_prior": "guidance",
    "SamplerConfig": "options", "SampleResult": "sampler", "StepRecord": "sampler", "GaussianNoise": "sampler",
    "ReplayNoise": "sampler", "sample": "sampler",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
