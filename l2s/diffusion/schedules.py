"""Noise schedules: the configuration a network is trained with, the schedule it describes, and diffusers
schedulers built from the same betas.

* :class:`NoiseScheduleConfig`: what a checkpoint stores (kind, steps, betas); :func:`build_schedule` turns it
  into a :class:`DiffusionSchedule`, so trainer and sampler read the same ``abar``; :func:`check_schedule`
  refuses a guide and a generator trained on different ones.
* :func:`make_scheduler`: diffusers' scheduler for one of the :data:`~l2s.diffusion.options.SOLVERS`.

LipVoicer (after DiffWave) uses ``beta = linspace(beta_0, beta_T, T)`` in float32 and
computes ``abar_t = prod_{s<=t} (1 - beta_s)`` as a *sequential* float32 product, which
differs from :func:`torch.cumprod` by up to 3.6e-7. We reproduce the sequential
product so a replayed LipVoicer run matches to float32 rounding.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import sys
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Tuple

import torch

from l2s.diffusion.options import SOLVERS
from l2s.errors import InputError, ModelError

#: LipVoicer's production schedule (``configs/config.yaml``).
LIPVOICER_T = 400
LIPVOICER_BETA_0 = 1e-4
LIPVOICER_BETA_T = 0.02

SCHEDULE_KINDS = ("linear", "cosine")


@dataclass(frozen=True)
class NoiseScheduleConfig:
    """The training noise schedule; the sampler must use the same one (it travels in the checkpoint).

    Attributes:
        kind: ``"linear"`` (LipVoicer/DiffWave: ``linspace(beta_0, beta_T, num_steps)``) or ``"cosine"``
            (Nichol & Dhariwal's ``squaredcos_cap_v2``, built with diffusers; ``beta_0``/``beta_T`` unused).
        num_steps: ``T`` discrete steps (LipVoicer: 400).
        beta_0: first beta of the linear schedule.
        beta_T: last beta of the linear schedule.
    """

    kind: str = "linear"
    num_steps: int = LIPVOICER_T
    beta_0: float = LIPVOICER_BETA_0
    beta_T: float = LIPVOICER_BETA_T


@dataclass(frozen=True)
class DiffusionSchedule:
    """A discrete variance-preserving schedule of ``T`` steps (index 0..T-1, 0 is the cleanest).

    Attributes:
        betas: ``(T,)`` float32 noise variances.
        alphas: ``(T,)`` ``1 - betas``.
        alpha_bars: ``(T,)`` cumulative products of ``alphas`` (sequential float32 product).
        sigmas: ``(T,)`` ancestral standard deviations ``sqrt(beta_t (1 - abar_{t-1}) / (1 - abar_t))``
            for t >= 1, and ``sqrt(beta_0)`` at t = 0 (never used).
    """

    betas: torch.Tensor
    alphas: torch.Tensor
    alpha_bars: torch.Tensor
    sigmas: torch.Tensor

    @property
    def num_steps(self) -> int:
        return int(self.betas.shape[0])

    @classmethod
    def from_betas(cls, betas: torch.Tensor) -> "DiffusionSchedule":
        """Build the derived arrays from ``(T,)`` betas, exactly as LipVoicer does (float32)."""
        betas = betas.detach().to(torch.float32).cpu()
        alphas = 1 - betas
        alpha_bars = alphas.clone()
        for t in range(1, alphas.shape[0]):
            # sequential product on purpose (not torch.cumprod): matches LipVoicer bit for bit
            alpha_bars[t] = alpha_bars[t] * alpha_bars[t - 1]
        sigmas = betas.clone()
        for t in range(1, betas.shape[0]):
            sigmas[t] = sigmas[t] * ((1 - alpha_bars[t - 1]) / (1 - alpha_bars[t]))
        return cls(betas=betas, alphas=alphas, alpha_bars=alpha_bars, sigmas=torch.sqrt(sigmas))


def linear_schedule(num_steps: int = LIPVOICER_T, beta_0: float = LIPVOICER_BETA_0,
                    beta_T: float = LIPVOICER_BETA_T) -> DiffusionSchedule:
    """LipVoicer's schedule: ``beta = linspace(beta_0, beta_T, num_steps)`` in float32."""
    if num_steps < 1:
        raise InputError(f"a schedule needs at least one step, got {num_steps}")
    return DiffusionSchedule.from_betas(torch.linspace(beta_0, beta_T, num_steps))


def make_scheduler(solver: str, schedule: DiffusionSchedule, **overrides: Any):
    """A diffusers scheduler over the same betas (epsilon prediction, no sample clipping).

    Args:
        solver: ``"ddpm"`` (:class:`~diffusers.DDPMScheduler`, ``fixed_small`` variance, i.e. the same
            ancestral sigma as LipVoicer), ``"dpmsolver++"`` (:class:`~diffusers.DPMSolverMultistepScheduler`)
            or ``"unipc"`` (:class:`~diffusers.UniPCMultistepScheduler`).
        schedule: the training schedule; its betas become ``trained_betas``.
        overrides: extra scheduler config fields (``solver_order``, ``timestep_spacing``...).
    """
    DDPMScheduler, DPMSolverMultistepScheduler, UniPCMultistepScheduler = _scheduler_classes()
    common = dict(num_train_timesteps=schedule.num_steps, trained_betas=schedule.betas.tolist(),
                  prediction_type="epsilon")
    if solver == "ddpm":
        return DDPMScheduler(**{**common, "variance_type": "fixed_small", "clip_sample": False, **overrides})
    if solver == "dpmsolver++":
        return DPMSolverMultistepScheduler(**{**common, "algorithm_type": "dpmsolver++", "solver_order": 2,
                                              "thresholding": False, **overrides})
    if solver == "unipc":
        return UniPCMultistepScheduler(**{**common, "solver_order": 2, "predict_x0": True,
                                          "thresholding": False, **overrides})
    raise InputError(f"unknown solver {solver!r}; expected one of {SOLVERS}")


class _Refuse(importlib.abc.MetaPathFinder):
    """Refuses one module name (see :func:`_refused`)."""

    def __init__(self, name: str):
        self.name = name

    def find_spec(self, fullname, path, target=None):
        if fullname == self.name:
            raise ModuleNotFoundError(f"{fullname} is not loaded while importing diffusers' schedulers", name=fullname)
        return None


@contextlib.contextmanager
def _refused(name: str) -> Iterator[None]:
    """Importing ``name`` fails inside the block (nothing changes if it is already loaded)."""
    finder = _Refuse(name)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def _scheduler_classes() -> Tuple[Any, Any, Any]:
    """diffusers' DDPM, DPM-Solver++ and UniPC scheduler classes.

    diffusers' utilities import ``torch._dynamo`` only to mark diffusers' own networks
    ``allow_in_graph``, and use a no-op instead when that import fails; its schedulers never need it.
    Loading torch's compiler costs about 2 s of CPU, half the start-up of ``l2s synthesize`` on a short
    clip, so while diffusers loads that one import is refused. ``torch._dynamo`` loads normally
    afterwards, for anything that compiles.
    """
    with _refused("torch._dynamo") if "diffusers" not in sys.modules else contextlib.nullcontext():
        from diffusers import DDPMScheduler, DPMSolverMultistepScheduler, UniPCMultistepScheduler
    return DDPMScheduler, DPMSolverMultistepScheduler, UniPCMultistepScheduler


def build_schedule(config: NoiseScheduleConfig) -> DiffusionSchedule:
    """The schedule described by ``config`` (``linear``: LipVoicer's; ``cosine``: diffusers' squaredcos_cap_v2)."""
    if config.kind == "linear":
        return linear_schedule(config.num_steps, config.beta_0, config.beta_T)
    if config.kind == "cosine":
        _scheduler_classes()  # diffusers loads without torch's compiler
        from diffusers.schedulers.scheduling_ddpm import betas_for_alpha_bar

        return DiffusionSchedule.from_betas(betas_for_alpha_bar(config.num_steps, alpha_transform_type="cosine"))
    raise InputError(f"unknown noise schedule {config.kind!r}; expected one of {SCHEDULE_KINDS}")


def check_schedule(guide: Optional[NoiseScheduleConfig], generator: Optional[NoiseScheduleConfig],
                   where: str = "pipeline") -> None:
    """Refuse a guide trained on another noise schedule than the generator's: its ``x_t`` would mean other
    things, and its gradient would steer toward noise. ``None`` (a guide that reads any schedule, a generator
    without one) always passes.

    Raises:
        ModelError: both have a schedule and they differ.
    """
    if guide is not None and generator is not None and guide != generator:
        raise ModelError(f"{where}: the guide was trained on the noise schedule {guide}, the generator on "
                         f"{generator}; they must be the same")
