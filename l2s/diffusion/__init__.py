"""Sampling mels from noise: schedules, guidance terms (pure functions) and the reverse loop.

* :mod:`l2s.diffusion.schedules`: the training noise schedule a checkpoint stores (:class:`NoiseScheduleConfig`),
  the schedule it describes and diffusers schedulers built from it.
* :mod:`l2s.diffusion.steps`: the step embedding, forward noising and the output parameterisations.
* :mod:`l2s.diffusion.guidance`: the guidance terms (classifier-free, the guide's gradient, the shallow-diffusion
  start).
* :mod:`l2s.diffusion.sampler`: the reverse loop, written once, for every solver.
* :mod:`l2s.diffusion.options`: the settings, importable without torch: the solvers (:data:`SOLVERS`), a
  diffusion generator's :class:`DiffusionSettings` and the guidance weights (:class:`Guidance`).

The names below are imported on first use, so ``l2s.diffusion.options`` loads without torch.
"""

import importlib
from typing import Any

_EXPORTS = {
    "DiffusionSchedule": "schedules", "NoiseScheduleConfig": "schedules", "build_schedule": "schedules",
    "check_schedule": "schedules", "linear_schedule": "schedules", "make_scheduler": "schedules",
    "cfg": "guidance", "asr_guidance": "guidance", "noised_prior": "guidance",
    "SOLVERS": "options", "Guidance": "options", "DiffusionSettings": "options",
    "SampleResult": "sampler", "StepRecord": "sampler", "GaussianNoise": "sampler", "ReplayNoise": "sampler",
    "sample": "sampler",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
