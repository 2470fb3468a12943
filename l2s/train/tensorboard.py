"""TensorBoard logging of a training run: SpeechBrain's ``TensorboardLogger`` plus validation mels and audio.

Every stage logs its train and valid statistics each epoch, and its test statistics at the end, into
``<output_folder>/tensorboard`` (``tensorboard --logdir <output_folder>``). Stages that make mels or
audio (the F0/DDSP prior, the mel generator, the vocoder) also log a few validation utterances every
``tensorboard_every`` epochs: each mel as an image (low frequencies at the bottom) and each waveform as
audio. Recipe keys (all optional): ``tensorboard`` (default true), ``tensorboard_every`` (default 5),
``tensorboard_examples`` (default 3). The scalars' step is the epoch, so a resumed run continues its
curves. Without the ``tensorboard`` package (the ``train`` extra brings it) the run goes on unlogged,
with one warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Mapping, Optional

import torch

from l2s.config import SAMPLE_RATE

logger = logging.getLogger(__name__)

DEFAULT_EVERY = 5
DEFAULT_EXAMPLES = 3
LOG_DIR = "tensorboard"


@dataclass(frozen=True)
class Example:
    """One validation utterance's rendering.

    Attributes:
        name: the tag (``<utterance id>/<what>``).
        mel: ``(80, T)`` mel in model space, or None.
        wav: ``(N,)`` waveform at the contract rate, or None.
        vocode: render ``mel`` as audio too, with the training-free Griffin-Lim vocoder (for a stage that
            makes mels and has no vocoder of its own: the mel generator).
    """

    name: str
    mel: Optional[torch.Tensor] = None
    wav: Optional[torch.Tensor] = None
    vocode: bool = False


def mel_image(mel: torch.Tensor) -> torch.Tensor:
    """``(80, T)`` mel -> ``(80, T)`` image in [0, 1], low frequencies at the bottom (row 0 is the top)."""
    image = mel.detach().float().cpu().flip(0)
    low, high = image.min(), image.max()
    return (image - low) / (high - low) if high > low else torch.zeros_like(image)


class TensorBoard:
    """The run's TensorBoard writer (on the main process; a no-op elsewhere).

    Args:
        save_dir: where the event files go.
        every: log examples every this many epochs (0: never).
        examples: how many validation utterances to render.
    """

    def __init__(self, save_dir: Path, every: int = DEFAULT_EVERY, examples: int = DEFAULT_EXAMPLES):
        from speechbrain.utils.train_logger import TensorboardLogger

        self.logger = TensorboardLogger(save_dir=str(save_dir))
        self.every, self.examples = int(every), int(examples)

    @classmethod
    def for_run(cls, hparams: Any) -> Optional["TensorBoard"]:
        """The logger a recipe asks for (``tensorboard``, ``tensorboard_every``, ``tensorboard_examples``), or
        None when it is off or the ``tensorboard`` package is missing."""
        if not getattr(hparams, "tensorboard", True) or not getattr(hparams, "output_folder", None):
            return None
        try:
            return cls(Path(hparams.output_folder) / LOG_DIR, getattr(hparams, "tensorboard_every", DEFAULT_EVERY),
                       getattr(hparams, "tensorboard_examples", DEFAULT_EXAMPLES))
        except ImportError as exc:
            logger.warning("TensorBoard logging off: %s (pip install 'l2s[train]')", exc)
            return None

    @property
    def writer(self):
        return self.logger.writer  # None off the main process

    def renders(self, epoch: Optional[int]) -> bool:
        """Whether this epoch's validation renders examples."""
        return self.writer is not None and self.every > 0 and epoch is not None and epoch % self.every == 0

    def log_epoch(self, epoch: int, meta: Mapping[str, float], train_stats: Optional[Mapping[str, float]],
                  valid_stats: Mapping[str, float]) -> None:
        """The epoch's statistics, at step ``epoch``. Call it on every rank: SpeechBrain's ``log_stats`` runs on
        the main process and then broadcasts, a collective every rank must join."""
        train, valid = _numbers(train_stats), _numbers(valid_stats)
        # SpeechBrain's logger counts steps itself, from 1 in each process (a resumed run would start
        # over): each counter is set one short of the epoch, which its log_stats then adds
        steps = self.logger.global_step
        steps["meta"] = epoch - 1
        for dataset, stats in (("train", train), ("valid", valid)):
            steps[dataset].update(dict.fromkeys(stats or {}, epoch - 1))
        self.logger.log_stats(_numbers(meta) or {}, train_stats=train, valid_stats=valid)
        if self.writer is not None:
            self.writer.flush()

    def log_test(self, split: str, stats: Mapping[str, float], step: int) -> None:
        """A test split's statistics (tag ``<stat>/test`` with the split in front)."""
        if self.writer is None:
            return
        for name, value in _numbers(stats).items():
            self.writer.add_scalar(f"{name}/{split}", value, step)
        self.writer.flush()

    def log_examples(self, epoch: int, examples: List[Example]) -> None:
        """Mels as images, waveforms as audio, at step ``epoch``."""
        if self.writer is None:
            return
        for example in examples:
            wav = example.wav
            if example.mel is not None:
                self.writer.add_image(f"{example.name}/mel", mel_image(example.mel), epoch, dataformats="HW")
                if example.vocode and wav is None:
                    wav = griffin_lim(example.mel)
            if wav is not None:
                wav = wav.detach().float().cpu().reshape(-1)
                peak = float(wav.abs().max()) if wav.numel() else 0.0
                self.writer.add_audio(f"{example.name}/audio", wav / peak if peak > 1 else wav, epoch,
                                      sample_rate=SAMPLE_RATE)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def griffin_lim(mel: torch.Tensor) -> torch.Tensor:
    """``(80, T)`` model-space mel -> ``(T * 160,)`` waveform by the registered fast Griffin-Lim vocoder."""
    from l2s.vocoder import MEL_NORM, render
    from l2s.vocoder.registry import get_vocoder

    with torch.no_grad():
        return render(get_vocoder("griffinlim-fast"), mel.detach().float().cpu()[None], MEL_NORM)[0]


def _numbers(stats: Optional[Mapping[str, Any]]) -> Optional[dict]:
    """The entries of ``stats`` TensorBoard can plot (numbers), as floats."""
    if stats is None:
        return None
    out = {}
    for key, value in stats.items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(value)
    return out
