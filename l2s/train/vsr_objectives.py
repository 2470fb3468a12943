"""The vsr trainer's fine-tuning options (:class:`Objectives`) and the phoneme targets of its phoneme head.

All are off by default; ``recipes/common/vsr.yaml`` lists the keys. See :mod:`l2s.train.vsr`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch

from l2s.errors import InputError
from l2s.models.vsr.loss import IGNORE_ID, pad_labels
from l2s.text.phonemes import DEFAULT_INVENTORY, G2P, PhonemeInventory
from l2s.train.distill import DistillWeights
from l2s.train.pcpg import PCPGOptions


@dataclass(frozen=True)
class Objectives:
    """The recipe's fine-tuning options of the vsr trainer (all off by default; see :mod:`l2s.train.vsr`).

    Attributes:
        init_from: a lip reader (model directory, or a pipeline whose reader to take: a path, bundled name or hub
            id) whose weights start the run, or None.
        freeze_frontend: freeze the visual front-end and compute its output once per clip.
        frontend_cache: a folder keeping those outputs between runs (None: in memory, for this run).
        phoneme_weight: weight of the phoneme CTC loss (0 = no phoneme head).
        distill: weights of the distillation levels.
        distill_teacher: the teacher (a CTC guide's model directory, or a pipeline whose guide to take), needed
            when ``distill`` is active.
        pcpg: the policy-gradient settings.
    """

    init_from: Optional[str] = None
    freeze_frontend: bool = False
    frontend_cache: Optional[str] = None
    phoneme_weight: float = 0.0
    distill: DistillWeights = DistillWeights()
    distill_teacher: Optional[str] = None
    pcpg: PCPGOptions = PCPGOptions()

    @property
    def auxiliary(self) -> bool:
        """Whether a loss beside the hybrid one is on (or the front-end frozen): a single-process run."""
        return self.freeze_frontend or self.distill.active or self.pcpg.weight > 0


def objectives(hparams: Mapping[str, Any]) -> Objectives:
    """The recipe's :class:`Objectives`.

    Raises:
        InputError: settings that cannot work.
    """
    def number(key: str, default: float) -> float:
        value = hparams.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{key} must be a number, got {value!r}")
        return float(value)

    def integer(key: str, default: int) -> int:
        value = hparams.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{key} must be an integer, got {value!r}")
        return value

    phoneme_weight = number("phoneme_ctc_weight", 0.0)
    if phoneme_weight < 0:
        raise InputError(f"phoneme_ctc_weight must be >= 0, got {phoneme_weight}")
    distill = DistillWeights(frame=number("distill_frame_weight", 0.0),
                             sequence=number("distill_sequence_weight", 0.0),
                             soft=number("distill_soft_weight", 0.0),
                             temperature=number("distill_temperature", 1.0))
    teacher = hparams.get("distill_teacher")
    if distill.active and not teacher:
        raise InputError("distillation needs distill_teacher (a CTC guide model directory, e.g. the bundled "
                         "synthgrid-small's guide)")
    pcpg = PCPGOptions(weight=number("pcpg_weight", 0.0), kernel=integer("pcpg_kernel", 5),
                       samples=integer("pcpg_samples", 2), temperature=number("pcpg_temperature", 1.0),
                       extra_tokens=integer("pcpg_extra_tokens", 5))
    freeze = hparams.get("freeze_frontend", False)
    if not isinstance(freeze, bool):
        raise InputError(f"freeze_frontend must be true or false, got {freeze!r}")
    init_from = hparams.get("init_from")
    cache = hparams.get("frontend_cache")
    return Objectives(init_from=str(init_from) if init_from else None, freeze_frontend=freeze,
                      frontend_cache=str(cache) if cache else None,
                      phoneme_weight=phoneme_weight, distill=distill,
                      distill_teacher=str(teacher) if teacher else None, pcpg=pcpg)


class PhonemeTargets:
    """Transcripts -> phoneme ids (:class:`~l2s.text.phonemes.G2P`, memoised per transcript)."""

    def __init__(self, inventory: PhonemeInventory = DEFAULT_INVENTORY) -> None:
        self.inventory = inventory
        self.g2p = G2P()
        self.memo: Dict[str, List[int]] = {}

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        """``(B, P)`` ids padded with -1."""
        for text in texts:
            if text not in self.memo:
                words = text.split()
                self.memo[text] = [i for units in self.g2p(words) for i in self.inventory.ids(units)]
        return pad_labels([self.memo[t] for t in texts], IGNORE_ID)
