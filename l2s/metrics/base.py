"""The result type every metric returns: a value, or missing with the reason why."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class Score:
    """One metric value for one utterance (or one aggregate).

    Attributes:
        name: metric name as it appears in reports (``"stoi"``, ``"mcd_dtw"``...).
        value: the number, or ``None`` when it could not be computed.
        reason: why ``value`` is missing (``None`` when present).
    """

    name: str
    value: Optional[float]
    reason: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.value is not None

    @classmethod
    def of(cls, name: str, value: float) -> "Score":
        """A present value; NaN or inf become missing with a reason rather than poisoning means."""
        value = float(value)
        if not math.isfinite(value):
            return cls(name, None, f"non-finite result ({value})")
        return cls(name, value)

    @classmethod
    def missing(cls, name: str, reason: str) -> "Score":
        return cls(name, None, reason)


def silence_reason(wav: np.ndarray, what: str, floor: float = 1e-4) -> Optional[str]:
    """A reason string when ``wav`` is empty or silent (peak below ``floor``), else ``None``."""
    if wav.size == 0:
        return f"{what} is empty"
    if not np.all(np.isfinite(wav)):
        return f"{what} has non-finite samples"
    if float(np.max(np.abs(wav))) < floor:
        return f"{what} is silent (peak < {floor:g})"
    return None
