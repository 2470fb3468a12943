"""Intrusive intelligibility and quality: STOI, ESTOI (pystoi) and wideband PESQ (pesq).

Inputs are an aligned pair (see :mod:`l2s.metrics.align`) at the contract sample rate.
A silent, empty or too-short signal yields a missing :class:`~l2s.metrics.base.Score`
with the reason, never an exception: one bad utterance must not stop an evaluation.
"""

from __future__ import annotations

import numpy as np

from l2s.config import SAMPLE_RATE
from l2s.metrics.base import Score, silence_reason

# pystoi works on 384 ms segments at 10 kHz; PESQ needs at least a quarter second.
_MIN_STOI_S = 0.4
_MIN_PESQ_S = 0.25
_PESQ_WB_RATE = 16000  # fixed by ITU-T P.862.2, not by our contract


def _check(ref: np.ndarray, hyp: np.ndarray, name: str, min_s: float) -> "Score | None":
    for wav, what in ((ref, "reference"), (hyp, "hypothesis")):
        reason = silence_reason(wav, what)
        if reason:
            return Score.missing(name, reason)
    if min(len(ref), len(hyp)) < min_s * SAMPLE_RATE:
        return Score.missing(name, f"shorter than {min_s} s")
    return None


def stoi(ref: np.ndarray, hyp: np.ndarray, extended: bool = False) -> Score:
    """(E)STOI of ``hyp`` against ``ref``, both ``(N,)`` at the contract rate (cropped to the shorter)."""
    from pystoi import stoi as _stoi

    name = "estoi" if extended else "stoi"
    n = min(len(ref), len(hyp))
    ref, hyp = np.asarray(ref[:n], np.float64), np.asarray(hyp[:n], np.float64)
    bad = _check(ref, hyp, name, _MIN_STOI_S)
    if bad:
        return bad
    try:
        return Score.of(name, _stoi(ref, hyp, SAMPLE_RATE, extended=extended))
    except Exception as exc:  # pystoi raises on clips with no speech frames left after its VAD
        return Score.missing(name, f"{type(exc).__name__}: {exc}")


def estoi(ref: np.ndarray, hyp: np.ndarray) -> Score:
    return stoi(ref, hyp, extended=True)


def pesq_wb(ref: np.ndarray, hyp: np.ndarray) -> Score:
    """Wideband PESQ (ITU-T P.862.2, MOS-LQO about 1.0-4.64) of ``hyp`` against ``ref`` at 16 kHz."""
    from pesq import PesqError, pesq

    n = min(len(ref), len(hyp))
    ref, hyp = np.asarray(ref[:n], np.float32), np.asarray(hyp[:n], np.float32)
    bad = _check(ref, hyp, "pesq_wb", _MIN_PESQ_S)
    if bad:
        return bad
    if SAMPLE_RATE != _PESQ_WB_RATE:
        return Score.missing("pesq_wb", f"needs {_PESQ_WB_RATE} Hz audio, got {SAMPLE_RATE}")
    try:
        return Score.of("pesq_wb", pesq(SAMPLE_RATE, ref, hyp, "wb"))
    except (PesqError, ValueError) as exc:  # e.g. NoUtterancesError on degenerate input
        return Score.missing("pesq_wb", f"{type(exc).__name__}: {exc}")
