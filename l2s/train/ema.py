"""An exponential moving average (EMA) of a model's weights, for evaluating and exporting a trained model.

Diffusion models are usually sampled with averaged weights: the last iterate of Adam at a constant
learning rate wanders around the optimum, and the average of the recent iterates denoises better. After
every optimiser step, ``avg <- decay * avg + (1 - decay) * weights``; buffers (BatchNorm statistics) are
copied as they are. The average covers about ``1 / (1 - decay)`` recent steps.

:class:`WeightEMA` is an ``nn.Module`` so that a SpeechBrain checkpointer saves and recovers it. A run
recovered from a checkpoint that holds no average (one written before the average existed, loaded with
``optional_load``) starts the average from the recovered weights at its first step.
"""

from __future__ import annotations

import copy

import torch


class WeightEMA(torch.nn.Module):
    """The moving average of ``model``'s parameters, held in a frozen copy of ``model`` (``.model``).

    Args:
        model: the model being trained (the copy is taken now; it is overwritten by the first
            :meth:`update` unless a checkpoint is loaded first).
        decay: the weight of the previous average at each step, in ``[0, 1)``.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.model = copy.deepcopy(model)
        self.model.requires_grad_(False).eval()
        # 0 until the average has seen the trained weights (saved with it, so a recovered run knows)
        self.register_buffer("started", torch.zeros((), dtype=torch.long))

    def train(self, mode: bool = True) -> "WeightEMA":
        """The copy stays in eval mode (no dropout, frozen BatchNorm statistics) whatever the trainer asks."""
        super().train(mode)
        self.model.eval()
        return self

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Fold ``model``'s current weights into the average (the first call copies them)."""
        decay = self.decay if int(self.started) else 0.0
        for avg, new in zip(self.model.parameters(), model.parameters()):
            avg.lerp_(new.detach().to(avg.dtype), 1.0 - decay)
        for avg, new in zip(self.model.buffers(), model.buffers()):
            avg.copy_(new)
        self.started.fill_(1)

    def reset(self) -> None:
        """Forget the average: the next :meth:`update` or :meth:`averaged` starts it from the model's weights."""
        self.started.zero_()

    def averaged(self, model: torch.nn.Module) -> torch.nn.Module:
        """The averaged model; before any update, ``model``'s own weights are copied in first."""
        if not int(self.started):
            self.update(model)
        return self.model
