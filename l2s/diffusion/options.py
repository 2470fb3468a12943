"""A diffusion generator's settings (:class:`DiffusionSettings`, :data:`SOLVERS`) and the guidance weights
(:class:`Guidance`), in a module free of torch: command-line options can show their defaults without loading it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

from l2s.errors import InputError

#: The solvers of the reverse process, by our name: ``ddpm`` is LipVoicer's ancestral step (every schedule
#: step), ``dpmsolver++`` and ``unipc`` diffusers' few-step solvers.
SOLVERS = ("ddpm", "dpmsolver++", "unipc")


@dataclass(frozen=True)
class Guidance:
    """How strongly a generator is steered (any generator: the weights are not tied to its sampler).

    Attributes:
        w_video: classifier-free guidance weight on the video (LipVoicer's w1; 0 disables the
            unconditional pass).
        w_asr: weight of the guide's gradient toward the text (w2; 0 disables the guide).
    """

    w_video: float = 2.0
    w_asr: float = 1.5

    def __post_init__(self) -> None:
        if self.w_video < 0 or self.w_asr < 0:
            raise InputError("guidance weights must be >= 0")


@dataclass(frozen=True)
class DiffusionSettings:
    """How a diffusion generator samples; steps are indices of its own schedule (0 is the cleanest).

    Attributes:
        solver: ``"ddpm"`` (LipVoicer-faithful ancestral sampling over every schedule step),
            ``"dpmsolver++"`` or ``"unipc"`` (few-step, deterministic, via diffusers): :data:`SOLVERS`.
        steps: solver steps; ``None`` means every schedule step for ``"ddpm"`` (the only value it
            accepts besides that count) and 20 for the few-step solvers.
        start_step: shallow diffusion: start from the prior noised to this step instead of pure
            noise at the last step (needs a prior).
        asr_start: the guide's term is applied at steps ``t <= asr_start`` (LipVoicer: 270 of 400).
        asr_end: ... and ``t >= asr_end`` (LipVoicer: 0). Stopping early leaves the last, low-noise steps to
            the denoiser alone, which can undo perturbations that fool a small guide ASR without being speech.
    """

    solver: str = "ddpm"
    steps: Optional[int] = None
    start_step: Optional[int] = None
    asr_start: int = 270
    asr_end: int = 0

    def __post_init__(self) -> None:
        if self.solver not in SOLVERS:
            raise InputError(f"unknown solver {self.solver!r}; expected one of {SOLVERS}")
        if self.steps is not None and self.steps < 1:
            raise InputError(f"steps must be >= 1, got {self.steps}")
        if not 0 <= self.asr_end <= self.asr_start:
            raise InputError(f"need 0 <= asr_end <= asr_start, got asr_end {self.asr_end}, asr_start "
                             f"{self.asr_start}")

    def override(self, solver: Optional[str] = None, steps: Optional[int] = None, start_step: Optional[int] = None,
                 asr_start: Optional[int] = None, asr_end: Optional[int] = None) -> "DiffusionSettings":
        """These settings with the given options (None: keep); what ``--solver``, ``--steps`` and
        ``--start-step`` change.

        A new solver brings its own default step count (all steps for ddpm, 20 otherwise) unless ``steps`` is
        given; ``start_step`` 0 means none (start from pure noise).
        """
        out = self
        if solver is not None and solver != out.solver:
            out = replace(out, solver=solver, steps=None)
        changes = {k: v for k, v in (("steps", steps), ("asr_start", asr_start), ("asr_end", asr_end))
                   if v is not None}
        if start_step is not None:
            changes["start_step"] = start_step or None
        return replace(out, **changes)
