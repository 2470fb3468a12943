"""How to sample (:class:`SamplerConfig`), in a module free of torch: command-line options show its defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from l2s.errors import InputError

SOLVERS = ("ddpm", "dpmsolver++", "unipc")


@dataclass(frozen=True)
class SamplerConfig:
    """How to sample.

    Attributes:
        solver: ``"ddpm"`` (LipVoicer-faithful ancestral sampling over every schedule step),
            ``"dpmsolver++"`` or ``"unipc"`` (few-step, deterministic, via diffusers).
        steps: solver steps; ``None`` means every schedule step for ``"ddpm"`` (the only value it
            accepts besides that count) and 20 for the few-step solvers.
        w_video: classifier-free guidance weight on the video (LipVoicer's w1; 0 disables the
            unconditional pass).
        w_asr: ASR guidance weight (w2; 0 disables the ASR).
        asr_start: the ASR term is applied at steps ``t <= asr_start`` (LipVoicer: 270 of 400).
        asr_end: ... and ``t >= asr_end`` (LipVoicer: 0). Stopping early leaves the last, low-noise steps to
            the denoiser alone, which can undo perturbations that fool a small guide ASR without being speech.
        start_step: shallow diffusion: start from the prior noised to this step instead of pure
            noise at the last step (needs ``prior``).
    """

    solver: str = "ddpm"
    steps: Optional[int] = None
    w_video: float = 2.0
    w_asr: float = 1.5
    asr_start: int = 270
    start_step: Optional[int] = None
    asr_end: int = 0

    def __post_init__(self) -> None:
        if self.solver not in SOLVERS:
            raise InputError(f"unknown solver {self.solver!r}; expected one of {SOLVERS}")
        if self.steps is not None and self.steps < 1:
            raise InputError(f"steps must be >= 1, got {self.steps}")
        if self.w_video < 0 or self.w_asr < 0:
            raise InputError("guidance weights must be >= 0")
        if not 0 <= self.asr_end <= self.asr_start:
            raise InputError(f"need 0 <= asr_end <= asr_start, got asr_end {self.asr_end}, asr_start "
                             f"{self.asr_start}")
