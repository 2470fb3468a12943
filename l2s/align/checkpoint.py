"""The ``aligner`` model directory: the timing head and the duration model of one lip reader.

Both read that lip reader's features (and the timing head speaks its vocabulary), so in a pipeline the
``aligner`` component sits beside the ``vsr`` one. The directory is an :mod:`l2s.hub` model of kind
``aligner``: ``config.yaml`` (``{timing: TimingConfig | null, durations: DurationConfig}``), the weights
(``timing.*`` and ``durations.*``, the mean phoneme durations among them) and ``phonemes.txt``, the
phoneme inventory the duration model was trained with.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Union

import torch
from torch import nn

from l2s.align.durations import DurationConfig, DurationModel
from l2s.align.timing import TimingConfig, TimingHead
from l2s.errors import ModelError
from l2s.text.phonemes import INVENTORY_FILE, PhonemeInventory

MODEL_KIND = "aligner"


@dataclass(frozen=True)
class AlignerConfig:
    """``timing``: the timing head's sizes (None: align on the lip reader's own CTC head);
    ``durations``: the duration model's."""

    durations: DurationConfig
    timing: Optional[TimingConfig] = None

    @classmethod
    def from_dict(cls, data) -> "AlignerConfig":
        data = dict(data)
        timing = data.get("timing")
        return cls(durations=DurationConfig(**dict(data["durations"])),
                   timing=None if timing is None else TimingConfig(**dict(timing)))


class AlignerModel(nn.Module):
    """The learned parts of :class:`~l2s.align.aligner.Aligner`: ``timing`` (or None) and ``durations``."""

    def __init__(self, config: AlignerConfig, inventory: PhonemeInventory) -> None:
        super().__init__()
        self.config = config
        self.timing = TimingHead(config.timing) if config.timing is not None else None
        self.durations = DurationModel(config.durations, inventory)

    @property
    def inventory(self) -> PhonemeInventory:
        return self.durations.inventory


def save_aligner(model: AlignerModel, path: Union[str, Path]) -> Path:
    """Write ``model`` as an ``aligner`` model directory (config, weights, ``phonemes.txt``)."""
    from l2s.hub import save_model_dir

    with tempfile.TemporaryDirectory() as tmp:
        inventory = model.inventory.save(Path(tmp) / INVENTORY_FILE)
        return save_model_dir(path, kind=MODEL_KIND, config=asdict(model.config), state_dict=model.state_dict(),
                              extra_files={INVENTORY_FILE: inventory})


def load_aligner(path: Union[str, Path], device: Union[str, torch.device] = "cpu") -> AlignerModel:
    """Rebuild an aligner model from a model directory (name, path or hub id), in eval mode.

    Raises:
        ModelError: not an ``aligner`` directory, or its weights do not fit its config.
    """
    from l2s.hub import load_model_dir, resolve

    model_dir = load_model_dir(resolve(path), kind=MODEL_KIND)
    inventory = PhonemeInventory.load(model_dir.path / INVENTORY_FILE)
    try:
        model = AlignerModel(AlignerConfig.from_dict(model_dir.config), inventory)
        model.load_state_dict(model_dir.state_dict, strict=True)
    except (KeyError, TypeError, RuntimeError) as exc:
        raise ModelError(f"{model_dir.path}: not a loadable aligner ({str(exc).splitlines()[0]})") from None
    return model.to(device).eval()
