"""Flow matching from a mean: the refiner's probability path, its training pair and its sampler.

A regression model gives a mel's conditional mean ``mu`` (blurred, but right in content and timing). The
refiner moves a sample of the *source* ``x_0 = mu + sigma z`` (``z`` standard normal, ``sigma`` about twice the
mean's RMS error) to the data ``x_1`` along the straight path of conditional flow matching (Lipman et al.
2023; the optimal-transport path of Tong et al., with ``sigma_min = 0``)::

    x_t = (1 - t) x_0 + t x_1,        t in [0, 1]

as Matcha-TTS does from a standard normal source, and as Grad-TTS and PriorGrad centre their source on the
encoder's mean. The network predicts the clean mel ``x_1`` (relative to ``mu``) rather than the velocity: the
velocity ``(x_1 - x_t) / (1 - t)`` follows from it, a network that outputs zero gives back the mean, and the
last solver step lands exactly on the network's clean estimate, so no sampling noise is left in the output.

Sampling integrates ``dx/dt = v(x, t)`` from ``t = 0`` with a few Euler or midpoint steps. Guidance by a
recogniser works on the clean estimate (:func:`guided_estimate`): its loss gradient is taken through the
network, smoothed over time, kept to speech frames and scaled to the noise left at ``t``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import torch
import torch.nn.functional as F

from l2s.diffusion.sampler import NoiseSource
from l2s.errors import InputError

#: Solvers of the flow ODE.
FLOW_SOLVERS = ("euler", "midpoint")

#: ``x1_hat = fn(x_t (B, 80, T), t (B,))``: the network's clean-mel estimate at ``t``.
EstimateFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: ``loss = fn(x (B, 80, T))``: a recogniser's loss toward the text on a clean mel.
CleanLossFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class FlowSettings:
    """How the refiner samples.

    Attributes:
        steps: ODE steps from the source to the data; 0 returns the mean itself (no refiner pass).
        solver: ``"euler"`` (one network evaluation a step) or ``"midpoint"`` (two).
        temperature: scale of the source noise (1: the ``sigma`` the refiner was trained with).
        rerank: draw this many samples and keep the one the guide finds closest to the text (1: no reranking).
        asr_smooth: frames of the Hann window that smooths the guide's gradient over time.
    """

    steps: int = 4
    solver: str = "euler"
    temperature: float = 1.0
    rerank: int = 1
    asr_smooth: int = 5

    def __post_init__(self) -> None:
        if self.solver not in FLOW_SOLVERS:
            raise InputError(f"unknown flow solver {self.solver!r}; expected one of {FLOW_SOLVERS}")
        if self.steps < 0:
            raise InputError(f"steps must be >= 0, got {self.steps}")
        if self.temperature < 0:
            raise InputError(f"temperature must be >= 0, got {self.temperature}")
        if self.rerank < 1:
            raise InputError(f"rerank must be >= 1, got {self.rerank}")
        if self.asr_smooth < 1 or self.asr_smooth % 2 == 0:
            raise InputError(f"asr_smooth must be an odd number of frames, got {self.asr_smooth}")


def source_sample(mean: torch.Tensor, sigma: float, noise: torch.Tensor) -> torch.Tensor:
    """``x_0 = mean + sigma noise``."""
    return mean + sigma * noise


def path_point(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``x_t = (1 - t) x_0 + t x_1`` for ``(B,)`` times."""
    t = t.to(x0)[:, None, None]
    return (1 - t) * x0 + t * x1


def smooth_time(x: torch.Tensor, frames: int) -> torch.Tensor:
    """``(B, C, T)`` smoothed along time by a normalised Hann window of ``frames`` (odd) frames."""
    if frames <= 1:
        return x
    window = torch.hann_window(frames + 2, periodic=False, dtype=x.dtype, device=x.device)[1:-1]
    window = (window / window.sum()).expand(x.shape[1], 1, frames)
    return F.conv1d(x, window, padding=frames // 2, groups=x.shape[1])


def guided_estimate(estimate: EstimateFn, x_t: torch.Tensor, t: torch.Tensor, loss_fn: CleanLossFn,
                    scale: float, speech: Optional[torch.Tensor], smooth: int
                    ) -> Tuple[torch.Tensor, torch.Tensor]:
    """The clean estimate at ``x_t`` moved down a recogniser's loss: ``(x1_hat', loss)``.

    The loss is that of the clean estimate, its gradient is taken with respect to ``x_t`` through the network
    (the estimate is what the recogniser can read; ``x_t`` is still noisy), smoothed over ``smooth`` frames,
    zeroed outside ``speech`` frames and normalised to an RMS of 1 over them; the step moves the estimate by
    ``scale`` times that (the caller ties ``scale`` to the noise left at ``t``, so late steps move little).

    Args:
        estimate: the network's clean estimate.
        x_t: ``(B, 80, T)`` the current point.
        t: ``(B,)`` its time.
        loss_fn: the recogniser's loss on a clean mel.
        scale: RMS of the move.
        speech: ``(B, 1, T)`` 1 on the frames to steer (the words), or None for all.
        smooth: odd window length of the gradient's time smoothing.
    """
    with torch.enable_grad():
        x_req = x_t.detach().requires_grad_(True)
        x1_hat = estimate(x_req, t)
        loss = loss_fn(x1_hat)
        (grad,) = torch.autograd.grad(loss, x_req)
    grad = smooth_time(grad, smooth)
    if speech is not None:
        grad = grad * speech
    frames = grad.shape[1] * (speech.sum() if speech is not None else grad.shape[-1] * grad.shape[0])
    rms = torch.sqrt((grad ** 2).sum() / frames.clamp(min=1))
    if rms > 0:
        x1_hat = x1_hat.detach() - scale * grad / rms
    return x1_hat.detach(), loss.detach()


@dataclass(frozen=True)
class FlowResult:
    """A finished flow sample.

    Attributes:
        mel: ``(B, 80, T)`` the sample.
        evals: network evaluations.
        asr_evals: guide forward+backward passes.
        losses: the guide's loss on the final sample of each draw (reranking), empty without a guide.
    """

    mel: torch.Tensor
    evals: int
    asr_evals: int
    losses: Tuple[float, ...] = ()


def flow_sample(estimate: EstimateFn, mean: torch.Tensor, sigma: float, settings: FlowSettings,
                noise: NoiseSource, loss_fn: Optional[CleanLossFn] = None, w_asr: float = 0.0,
                speech: Optional[torch.Tensor] = None) -> FlowResult:
    """Integrate the refiner's flow from ``mean + temperature * sigma * noise()`` to ``t = 1``.

    Args:
        estimate: the network's clean estimate ``x1_hat(x_t, t)``.
        mean: ``(B, 80, T)`` the content decoder's mean.
        sigma: the source noise scale the refiner was trained with.
        settings: steps, solver, temperature, reranking.
        noise: the source's standard normal draws (``initial`` for the first draw, ``step(k)`` for draw ``k + 1``).
        loss_fn: the guide's loss toward the text on a clean mel, or None.
        w_asr: guidance strength: the estimate moves by ``w_asr`` times the noise left (``(1 - t) sigma``).
        speech: ``(B, 1, T)`` frames the guide steers, or None.

    Returns:
        The draw the guide scores best (the only one without reranking).
    """
    if settings.steps == 0:
        return FlowResult(mel=mean, evals=0, asr_evals=0)
    guided = loss_fn is not None and w_asr > 0
    best: Optional[torch.Tensor] = None
    best_loss = float("inf")
    evals = asr_evals = 0
    losses: List[float] = []
    for draw in range(settings.rerank):
        z = noise.initial(mean.shape, mean) if draw == 0 else noise.step(draw - 1, mean.shape, mean)
        x = source_sample(mean, settings.temperature * sigma, z)

        def x1_at(x_t: torch.Tensor, t: float) -> torch.Tensor:
            nonlocal evals, asr_evals
            tt = torch.full((x_t.shape[0],), t, device=x_t.device)
            evals += 1
            if guided:
                asr_evals += 1
                return guided_estimate(estimate, x_t, tt, loss_fn, w_asr * (1 - t) * sigma, speech,
                                       settings.asr_smooth)[0]
            with torch.no_grad():
                return estimate(x_t, tt)

        n = settings.steps
        for k in range(n):
            t0, t1 = k / n, (k + 1) / n
            if settings.solver == "euler":
                x = x + (t1 - t0) * (x1_at(x, t0) - x) / (1 - t0)
            else:
                tm = 0.5 * (t0 + t1)
                xm = x + (tm - t0) * (x1_at(x, t0) - x) / (1 - t0)
                x = x + (t1 - t0) * (x1_at(xm, tm) - xm) / (1 - tm)
        if settings.rerank == 1 and loss_fn is None:
            return FlowResult(mel=x, evals=evals, asr_evals=asr_evals)
        with torch.no_grad():
            score = float(loss_fn(x)) if loss_fn is not None else 0.0
        losses.append(score)
        if best is None or score < best_loss:
            best, best_loss = x, score
    return FlowResult(mel=best, evals=evals, asr_evals=asr_evals, losses=tuple(losses))
