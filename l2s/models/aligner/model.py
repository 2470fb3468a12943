"""The ``viterbi`` aligner: the timing head and the duration model of one lip reader, as one model.

Both read that lip reader's features (and the timing head speaks its vocabulary), so in a pipeline the
``aligner`` component sits beside the ``vsr`` one. Alignment itself (a Viterbi search of the text's tokens on
the timing head's frame posteriors, then each word shared among its phonemes) is
:class:`l2s.align.Aligner`'s job; this module holds what is learned. Its model directory
(:mod:`l2s.hub`, kind ``aligner``, arch ``viterbi``) keeps ``config.yaml``
(``{durations: DurationConfig, timing: TimingConfig | null}``), the weights (``timing.*`` and ``durations.*``,
the mean phoneme durations among them) and ``phonemes.txt``, the phoneme inventory the duration model was
trained with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Union

import torch
from torch import nn

from l2s.arch import Architecture, load_model, save_model
from l2s.models.aligner.durations import DurationConfig, DurationModel
from l2s.models.aligner.timing import TimingConfig, TimingHead
from l2s.models.vsr.model import VSR_MICRO, VSR_TINY
from l2s.text.phonemes import DEFAULT_INVENTORY, INVENTORY_FILE, PhonemeInventory


@dataclass(frozen=True)
class AlignerConfig:
    """``timing``: the timing head's sizes (None: align on the lip reader's own CTC head);
    ``durations``: the duration model's."""

    durations: DurationConfig
    timing: Optional[TimingConfig] = None


# The widths follow the lip reader it is trained beside (vocabulary and feature width of the VSR presets of the
# same name) and the phoneme inventory; the trainer sets them from the reader it is given.
ALIGNER_TINY = AlignerConfig(
    timing=TimingConfig(vocab_size=VSR_TINY.vocab_size, feature_dim=VSR_TINY.d_model),
    durations=DurationConfig(num_phonemes=len(DEFAULT_INVENTORY), feature_dim=VSR_TINY.d_model))
ALIGNER_MICRO = AlignerConfig(
    timing=TimingConfig(vocab_size=VSR_MICRO.vocab_size, feature_dim=VSR_MICRO.d_model, hidden=16, kernel=3,
                        layers=1),
    durations=DurationConfig(num_phonemes=len(DEFAULT_INVENTORY), feature_dim=VSR_MICRO.d_model, embed_dim=8,
                             feature_proj=4, bins=4, hidden=16))
ALIGNER_PRESETS = {"tiny": ALIGNER_TINY, "micro": ALIGNER_MICRO}


class AlignerModel(nn.Module):
    """The learned parts of :class:`~l2s.align.aligner.Aligner`: ``timing`` (or None) and ``durations``."""

    def __init__(self, config: AlignerConfig, inventory: PhonemeInventory = DEFAULT_INVENTORY) -> None:
        super().__init__()
        self.config = config
        self.timing = TimingHead(config.timing) if config.timing is not None else None
        self.durations = DurationModel(config.durations, inventory)

    @property
    def inventory(self) -> PhonemeInventory:
        return self.durations.inventory


def _load(config: AlignerConfig, stored) -> AlignerModel:
    """The weights of a model directory, with the phoneme inventory stored beside them."""
    model = AlignerModel(config, PhonemeInventory.load(stored.path / INVENTORY_FILE))
    model.load_state_dict(stored.state_dict, strict=True)
    return model


def _files(model: AlignerModel, scratch: Path) -> Dict[str, Path]:
    return {INVENTORY_FILE: model.inventory.save(scratch / INVENTORY_FILE)}


ARCHITECTURE = Architecture(family="aligner", name="viterbi", model_cls=AlignerModel, config_cls=AlignerConfig,
                            presets=ALIGNER_PRESETS, load=_load, files=_files,
                            description="a timing head for a Viterbi search of the text on the lip reader's "
                                        "frames, and a duration model sharing each word among its phonemes")


def save_aligner(model: AlignerModel, path: Union[str, Path]) -> Path:
    """Write ``model`` as an ``aligner`` model directory (config, weights, ``phonemes.txt``)."""
    return save_model(model, path, "aligner")


def load_aligner(path: Union[str, Path], device: Union[str, torch.device] = "cpu") -> AlignerModel:
    """An aligner model from a model directory (name, path or hub id), in eval mode.

    Raises:
        ModelError: not an ``aligner`` directory, or its weights do not fit its config.
    """
    return load_model(path, "aligner", device)
