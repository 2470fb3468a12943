"""The reverse diffusion loop, written once for every solver and guidance setting.

One step at diffusion index ``t`` (0 is the cleanest):

1. ``e_c = eps_cond(x, t)``; with ``w_video > 0`` also ``e_u = eps_uncond(x, t)`` and
   ``e = cfg(e_c, e_u, w_video)``;
2. if an ASR loss is given and ``asr_end <= t <= asr_start``: ``g = d loss(x, t) / d x`` and
   ``e = asr_guidance(e, g, abar_t, w_asr)``;
3. update ``x`` with the solver: ``"ddpm"`` is LipVoicer's ancestral step with its sigma
   (every step of the schedule), ``"dpmsolver++"``/``"unipc"`` are diffusers' few-step solvers.

The networks come in as callables, so the loop knows nothing about MelGen or the guide; the
noise comes from a :class:`NoiseSource`, so a recorded run can be replayed exactly. A diffusion
generator's sampler settings are a :class:`DiffusionSettings`, in units of its own schedule.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, List, Optional, Protocol, Sequence, Tuple

import torch

from l2s.diffusion.guidance import Guidance, asr_guidance, cfg, noised_prior
from l2s.diffusion.options import SOLVERS, DiffusionSettings  # noqa: F401  (re-exported: a generator's settings)
from l2s.diffusion.schedules import DiffusionSchedule, make_scheduler
from l2s.errors import InputError

#: ``eps = fn(x (B, 80, T), t (B, 1) float32 step index)``.
EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: ``loss = fn(x (B, 80, T), t (B, 1))``, a scalar whose gradient steers the sample (the CTC loss).
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class StepRecord:
    """What happened at one step (handed to ``on_step``; tensors are detached)."""

    index: int
    t: int
    x_in: torch.Tensor
    eps_cond: torch.Tensor
    eps_uncond: Optional[torch.Tensor]
    eps_cfg: torch.Tensor
    asr_loss: Optional[torch.Tensor]
    asr_grad: Optional[torch.Tensor]
    eps_final: torch.Tensor


@dataclass(frozen=True)
class SampleResult:
    """A finished sample.

    Attributes:
        mel: ``(B, 80, T)`` the clean sample x_0 in model space (``mel_norm``).
        timesteps: the step indices visited, in order.
        generator_evals: generator network passes (2 per step with classifier-free guidance).
        guide_evals: guide forward+backward passes.
    """

    mel: torch.Tensor
    timesteps: Tuple[int, ...]
    generator_evals: int
    guide_evals: int

    @property
    def network_evals(self) -> int:
        return self.generator_evals + self.guide_evals


class NoiseSource(Protocol):
    """Where the sampler's random draws come from."""

    def initial(self, shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
        """The starting noise (x_{T-1}, or the noise added to the prior)."""
        ...

    def step(self, k: int, shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
        """The noise injected after loop step ``k`` (0-based)."""
        ...


class GaussianNoise:
    """Fresh standard normal draws from a seeded generator (CPU draws, so seeds agree across devices)."""

    def __init__(self, seed: Optional[int] = None):
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)

    def _draw(self, shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
        return torch.randn(tuple(shape), generator=self.generator).to(like.device, like.dtype)

    def initial(self, shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
        return self._draw(shape, like)

    def step(self, k: int, shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
        return self._draw(shape, like)


class ReplayNoise:
    """Recorded draws: ``x_init`` first, then ``noise[k]`` after step k (a LipVoicer run's record)."""

    def __init__(self, x_init: torch.Tensor, noise: torch.Tensor):
        self.x_init, self.noise = x_init, noise

    def initial(self, shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
        if tuple(self.x_init.shape) != tuple(shape):
            raise InputError(f"recorded initial noise has shape {tuple(self.x_init.shape)}, need {tuple(shape)}")
        return self.x_init.to(like.device, like.dtype)

    def step(self, k: int, shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
        if k >= self.noise.shape[0]:
            raise InputError(f"the record has {self.noise.shape[0]} injected draws, step {k} needs one more")
        return self.noise[k].to(like.device, like.dtype)


def loss_gradient(loss_fn: LossFn, x: torch.Tensor, t: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(loss, d loss / d x)`` at the current sample (the only place the loop needs autograd)."""
    with torch.enable_grad():
        x_req = x.detach().requires_grad_(True)
        loss = loss_fn(x_req, t)
        (grad,) = torch.autograd.grad(loss, x_req)
    return loss.detach(), grad


def _timesteps(config: DiffusionSettings, schedule: DiffusionSchedule, start: int):
    """The steps to visit and, for diffusers solvers, the scheduler that visits them."""
    if config.solver == "ddpm":
        if config.steps is not None and config.steps != start + 1:
            raise InputError(f"the ddpm solver runs every schedule step ({start + 1}), not {config.steps}; "
                             "use dpmsolver++ or unipc for fewer steps")
        return list(range(start, -1, -1)), None
    # A schedule cut at ``start`` has the same alpha_bars below it, so a scheduler built on
    # the first start + 1 betas runs the shallow case with diffusers' own spacing.
    sub = DiffusionSchedule.from_betas(schedule.betas[: start + 1])
    scheduler = make_scheduler(config.solver, sub)
    steps = config.steps if config.steps is not None else 20
    if steps > start + 1:
        raise InputError(f"{steps} solver steps is more than the {start + 1} schedule steps available")
    with warnings.catch_warnings():
        # diffusers 0.42 calls np.array(tensor, copy=False) here; harmless, and not ours to fix
        warnings.simplefilter("ignore", DeprecationWarning)
        scheduler.set_timesteps(steps)
    return [int(t) for t in scheduler.timesteps], scheduler


def sample(
    eps_cond: EpsFn,
    schedule: DiffusionSchedule,
    shape: Sequence[int],
    config: DiffusionSettings = DiffusionSettings(),
    guidance: Guidance = Guidance(),
    eps_uncond: Optional[EpsFn] = None,
    asr_loss: Optional[LossFn] = None,
    prior: Optional[torch.Tensor] = None,
    noise: Optional[NoiseSource] = None,
    on_step: Optional[Callable[[StepRecord], None]] = None,
    device: torch.device | str = "cpu",
    progress: Optional[Callable[[List[int]], List[int]]] = None,
) -> SampleResult:
    """Draw one guided sample.

    Args:
        eps_cond: the conditioned denoiser (the video already bound to it).
        schedule: the schedule the denoiser was trained with.
        shape: ``(B, 80, T)`` of the sample.
        config: solver, steps, shallow start and the guide's step range.
        guidance: the weights of classifier-free guidance and of the guide.
        eps_uncond: the denoiser with the null condition (needed when ``w_video > 0``).
        asr_loss: the guide's loss toward the text (CTC); ``None`` or ``w_asr = 0`` disables it.
        prior: ``(B, 80, T)`` model-space prior mel for shallow diffusion (``config.start_step``).
        noise: random draws; :class:`GaussianNoise` (unseeded) by default.
        on_step: called with a :class:`StepRecord` after each step's guidance (tracing, tests).
        device: where ``x`` lives.
        progress: wraps the list of steps (a progress bar).

    Returns:
        The sample and how many network evaluations it took.
    """
    shape = tuple(int(s) for s in shape)
    if guidance.w_video > 0 and eps_uncond is None:
        raise InputError("w_video > 0 needs the unconditional denoiser (eps_uncond)")
    start = schedule.num_steps - 1 if config.start_step is None else int(config.start_step)
    if not 0 <= start < schedule.num_steps:
        raise InputError(f"start_step {start} outside the schedule (0..{schedule.num_steps - 1})")
    if config.start_step is not None and prior is None:
        raise InputError("shallow diffusion (start_step) needs a prior mel")
    noise = GaussianNoise() if noise is None else noise
    like = torch.empty(0, device=device)
    timesteps, scheduler = _timesteps(config, schedule, start)
    use_asr = asr_loss is not None and guidance.w_asr > 0

    x = noise.initial(shape, like)
    if config.start_step is not None:
        x = noised_prior(prior.to(like.device, like.dtype), schedule.alpha_bars[start], x)
    generator_evals = guide_evals = 0
    steps_iter = progress(timesteps) if progress is not None else timesteps
    for k, t in enumerate(steps_iter):
        tt = torch.full((shape[0], 1), float(t), device=like.device)
        x_in = x
        with torch.no_grad():
            e_c = eps_cond(x, tt)
            generator_evals += 1
            e_u = None
            if guidance.w_video > 0:
                e_u = eps_uncond(x, tt)
                generator_evals += 1
                e_cfg = cfg(e_c, e_u, guidance.w_video)
            else:
                e_cfg = e_c
        e, loss, grad = e_cfg, None, None
        abar_t = schedule.alpha_bars[t].to(like.device)
        if use_asr and config.asr_end <= t <= config.asr_start:
            loss, grad = loss_gradient(asr_loss, x, tt)
            guide_evals += 1
            e = asr_guidance(e_cfg, grad, abar_t, guidance.w_asr)
        if on_step is not None:
            on_step(StepRecord(k, t, x_in.detach(), e_c.detach(), None if e_u is None else e_u.detach(),
                               e_cfg.detach(), loss, grad, e.detach()))
        with torch.no_grad():
            if scheduler is None:
                x = _ddpm_step(x, e, t, schedule, noise, k, like)
            else:
                x = scheduler.step(e, t, x).prev_sample
    return SampleResult(mel=x, timesteps=tuple(timesteps), generator_evals=generator_evals, guide_evals=guide_evals)


def _ddpm_step(x: torch.Tensor, eps: torch.Tensor, t: int, schedule: DiffusionSchedule,
               noise: NoiseSource, k: int, like: torch.Tensor) -> torch.Tensor:
    """LipVoicer's ancestral update (DDPM eq. 11 with sigma_t^2 = beta-tilde_t), in its operation order."""
    alpha = schedule.alphas[t].to(like.device)
    abar = schedule.alpha_bars[t].to(like.device)
    x = (x - (1 - alpha) / torch.sqrt(1 - abar) * eps) / torch.sqrt(alpha)
    if t > 0:
        x = x + schedule.sigmas[t].to(like.device) * noise.step(k, x.shape, like)
    return x
