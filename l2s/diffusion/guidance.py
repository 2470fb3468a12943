"""Guidance: its weights (:class:`Guidance`) and its terms, as pure tensor functions (no networks, no state).

The sampler calls these; networks only supply ``eps`` and gradients. Notation
follows LipVoicer (Yemini et al., 2024): ``w_video`` is w1 (classifier-free
guidance on the video), ``w_asr`` is w2 (ASR classifier guidance).
"""

from __future__ import annotations

import torch

from l2s.diffusion.options import Guidance  # noqa: F401  (re-exported: the guidance weights)


def cfg(eps_cond: torch.Tensor, eps_uncond: torch.Tensor, w_video: float) -> torch.Tensor:
    """Classifier-free guidance: ``(1 + w) eps_cond - w eps_uncond``.

    Args:
        eps_cond: ``(B, 80, T)`` noise predicted with the video condition.
        eps_uncond: ``(B, 80, T)`` noise predicted with the null condition.
        w_video: guidance weight (0 gives ``eps_cond``).
    """
    return (1 + w_video) * eps_cond - w_video * eps_uncond


def asr_guidance(eps: torch.Tensor, grad: torch.Tensor, abar_t: torch.Tensor | float,
                 w_asr: float) -> torch.Tensor:
    """Add the ASR gradient to ``eps`` with LipVoicer's gradient-norm scaling.

    ``lam = ||eps / sqrt(1 - abar_t)|| / ||grad||`` (Frobenius norms over the whole tensor) and
    ``eps + sqrt(1 - abar_t) * w_asr * lam * grad``, so the added term always has norm
    ``w_asr * ||eps||``. ``grad`` is d(CTC loss)/d x_t: adding it to eps and then subtracting eps in
    the update moves x_t *down* the loss. As in LipVoicer the norms couple batch items (B = 1 there).
    A zero gradient leaves ``eps`` unchanged.

    Args:
        eps: ``(B, 80, T)`` the (CFG-combined) noise estimate.
        grad: ``(B, 80, T)`` gradient of the guide's loss with respect to x_t.
        abar_t: cumulative product of alphas at the current step.
        w_asr: guidance weight.
    """
    grad_norm = torch.linalg.norm(grad)
    if grad_norm == 0:
        # CTC with zero_infinity gives a zero gradient when the text cannot fit the clip; LipVoicer
        # would turn that into NaN (0/0), we leave eps unguided
        return eps
    sqrt_one_minus = torch.sqrt(1 - torch.as_tensor(abar_t, dtype=eps.dtype))
    lam = torch.linalg.norm(eps / sqrt_one_minus) / grad_norm
    return eps + sqrt_one_minus * w_asr * lam * grad


def grad_normaliser(eps: torch.Tensor, grad: torch.Tensor, abar_t: torch.Tensor | float) -> torch.Tensor:
    """The ``lam`` of :func:`asr_guidance` (for logging and tests)."""
    sqrt_one_minus = torch.sqrt(1 - torch.as_tensor(abar_t, dtype=eps.dtype))
    return torch.linalg.norm(eps / sqrt_one_minus) / torch.linalg.norm(grad)


def noised_prior(prior_mel: torch.Tensor, abar_t: torch.Tensor | float, noise: torch.Tensor) -> torch.Tensor:
    """Shallow-diffusion start: ``q(x_t | x_0 = prior) = sqrt(abar_t) prior + sqrt(1 - abar_t) noise``.

    Args:
        prior_mel: ``(B, 80, T)`` coarse mel in model space (the DDSP prior).
        abar_t: cumulative product of alphas at the start step.
        noise: ``(B, 80, T)`` standard normal noise.
    """
    abar = torch.as_tensor(abar_t, dtype=prior_mel.dtype)
    return torch.sqrt(abar) * prior_mel + torch.sqrt(1 - abar) * noise
