"""Spectral distances: mel-cepstral distortion (with and without DTW) and F0 / voicing errors.

MCD follows the usual recipe (Kubichek 1993): WORLD's spectral envelope (CheapTrick on
DIO+StoneMask F0) coded as ``MCEP_DIM`` mel-cepstral coefficients
(``pyworld.code_spectral_envelope``), ``c0`` (energy) excluded, and
``MCD = 10 / ln 10 * sqrt(2 * sum_d (c_d - c'_d)^2)`` in dB averaged over frames. Without
DTW, frames are compared one to one on the aligned pair; with DTW, along the
minimum-cost path. All frames are used (no silence removal), as in ``pymcd``'s plain mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

import numpy as np

from l2s.config import CONTRACT, SAMPLE_RATE
from l2s.features.pitch import PitchTrack, extract_f0
from l2s.metrics.align import dtw_path
from l2s.metrics.base import Score, silence_reason

MCEP_DIM = 25  # c0..c24; c0 is dropped, leaving the conventional 24
#: A voiced frame's F0 error is *gross* when it is more than this fraction of the reference F0 (the usual 20 %
#: of the gross pitch error, GPE: octave and half-octave errors of a tracker or of a prediction).
GROSS_PITCH_TOLERANCE = 0.2
_MCD_CONST = 10.0 * np.sqrt(2.0) / np.log(10.0)


def mel_cepstrum(wav: np.ndarray, dim: int = MCEP_DIM) -> np.ndarray:
    """``(T, dim)`` WORLD mel-cepstrum at the contract frame rate (``1 + N // hop`` frames, or WORLD's count)."""
    from l2s.extras import import_pyworld
    pyworld = import_pyworld()

    x = np.ascontiguousarray(np.asarray(wav, dtype=np.float64).reshape(-1))
    period_ms = 1000.0 * CONTRACT.f0.hop_length / SAMPLE_RATE
    f0, t = pyworld.dio(x, SAMPLE_RATE, f0_floor=CONTRACT.f0.f0_floor, f0_ceil=CONTRACT.f0.f0_ceil,
                        frame_period=period_ms)
    f0 = pyworld.stonemask(x, f0, t, SAMPLE_RATE)
    sp = pyworld.cheaptrick(x, f0, t, SAMPLE_RATE)
    return pyworld.code_spectral_envelope(sp, SAMPLE_RATE, dim)


def _frame_mcd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-frame MCD in dB between ``(T, D)`` cepstra, c0 excluded."""
    diff = a[:, 1:] - b[:, 1:]
    return _MCD_CONST * np.sqrt(np.sum(diff * diff, axis=1))


def mcd(ref: np.ndarray, hyp: np.ndarray, dtw: bool = False) -> Score:
    """Mel-cepstral distortion in dB between two waveforms (aligned pair for ``dtw=False``)."""
    name = "mcd_dtw" if dtw else "mcd"
    for wav, what in ((ref, "reference"), (hyp, "hypothesis")):
        reason = silence_reason(np.asarray(wav), what)
        if reason:
            return Score.missing(name, reason)
    a, b = mel_cepstrum(ref), mel_cepstrum(hyp)
    if not dtw:
        n = min(len(a), len(b))
        return Score.of(name, float(np.mean(_frame_mcd(a[:n], b[:n]))))
    cost = _MCD_CONST * np.sqrt(np.maximum(
        np.sum(a[:, None, 1:] ** 2, -1) + np.sum(b[None, :, 1:] ** 2, -1) - 2.0 * a[:, 1:] @ b[:, 1:].T, 0.0))
    path = dtw_path(cost)
    return Score.of(name, float(np.mean(cost[path[:, 0], path[:, 1]])))


@dataclass(frozen=True)
class PitchErrorSums:
    """Sums over the frames voiced in both tracks, to pool clips before taking rates and roots.

    Attributes:
        frames: frames voiced in both.
        sq_error: sum of squared F0 differences (Hz^2).
        gross: frames whose error exceeds :data:`GROSS_PITCH_TOLERANCE` of the reference F0.
        fine_sq_error: sum of squared differences over the other (fine) frames (Hz^2).
    """

    frames: float = 0.0
    sq_error: float = 0.0
    gross: float = 0.0
    fine_sq_error: float = 0.0

    def __add__(self, other: "PitchErrorSums") -> "PitchErrorSums":
        return PitchErrorSums(self.frames + other.frames, self.sq_error + other.sq_error, self.gross + other.gross,
                              self.fine_sq_error + other.fine_sq_error)

    @property
    def rmse(self) -> float:
        """F0 RMSE in Hz over all frames voiced in both (NaN with none)."""
        return float(np.sqrt(self.sq_error / self.frames)) if self.frames else float("nan")

    @property
    def gpe(self) -> float:
        """Gross pitch error: the share of those frames with a gross error (NaN with none)."""
        return self.gross / self.frames if self.frames else float("nan")

    @property
    def fine_rmse(self) -> float:
        """F0 RMSE in Hz over the frames without a gross error (NaN with none)."""
        fine = self.frames - self.gross
        return float(np.sqrt(self.fine_sq_error / fine)) if fine else float("nan")


def pitch_error_sums(ref_hz: np.ndarray, hyp_hz: np.ndarray, both: np.ndarray) -> PitchErrorSums:
    """:class:`PitchErrorSums` of two F0 tracks in Hz on the frames where ``both`` (bool) is true."""
    r = np.asarray(ref_hz, dtype=np.float64)[both]
    h = np.asarray(hyp_hz, dtype=np.float64)[both]
    sq = (h - r) ** 2
    gross = np.abs(h - r) > GROSS_PITCH_TOLERANCE * r
    return PitchErrorSums(float(r.size), float(sq.sum()), float(gross.sum()), float(sq[~gross].sum()))


@dataclass(frozen=True)
class F0Scores:
    """F0 agreement of an aligned pair (frames at 100 Hz)."""

    f0_rmse: Score
    vuv_error: Score
    logf0_corr: Score
    gpe: Score
    f0_rmse_fine: Score

    def as_dict(self) -> Dict[str, Score]:
        return {"f0_rmse": self.f0_rmse, "vuv_error": self.vuv_error, "logf0_corr": self.logf0_corr,
                "gpe": self.gpe, "f0_rmse_fine": self.f0_rmse_fine}


F0_SCORE_NAMES = ("f0_rmse", "vuv_error", "logf0_corr", "gpe", "f0_rmse_fine")


def f0_scores(ref: np.ndarray, hyp: np.ndarray, ref_track: "PitchTrack | None" = None,
              hyp_track: "PitchTrack | None" = None) -> F0Scores:
    """F0 RMSE (Hz, frames voiced in both), V/UV decision error rate, log-F0 Pearson correlation, the gross
    pitch error (GPE) and the RMSE of the other frames (:class:`PitchErrorSums`).

    Args:
        ref, hyp: ``(N,)`` aligned waveforms.
        ref_track, hyp_track: precomputed pitch tracks (:func:`l2s.features.pitch.extract_f0`).
    """
    for wav, what in ((ref, "reference"), (hyp, "hypothesis")):
        reason = silence_reason(np.asarray(wav), what)
        if reason:
            return F0Scores(*(Score.missing(n, reason) for n in F0_SCORE_NAMES))
    r = ref_track or extract_f0(ref)
    h = hyp_track or extract_f0(hyp)
    n = min(len(r.f0), len(h.f0))
    rv, hv = r.voiced[:n], h.voiced[:n]
    vuv = Score.of("vuv_error", float(np.mean(rv != hv))) if n else Score.missing("vuv_error", "no frames")
    both = rv & hv
    if np.count_nonzero(both) < 2:
        why = "fewer than 2 frames voiced in both"
        return F0Scores(*(vuv if name == "vuv_error" else Score.missing(name, why) for name in F0_SCORE_NAMES))
    sums = pitch_error_sums(r.f0[:n], h.f0[:n], both)
    fr, fh = r.f0[:n][both].astype(np.float64), h.f0[:n][both].astype(np.float64)
    rmse = Score.of("f0_rmse", sums.rmse)
    gpe = Score.of("gpe", sums.gpe)
    fine = (Score.of("f0_rmse_fine", sums.fine_rmse) if sums.gross < sums.frames
            else Score.missing("f0_rmse_fine", "every frame voiced in both has a gross error"))
    lr, lh = np.log(fr), np.log(fh)
    if np.std(lr) == 0 or np.std(lh) == 0:
        corr = Score.missing("logf0_corr", "constant log-F0 on the shared voiced frames")
    else:
        corr = Score.of("logf0_corr", float(np.corrcoef(lr, lh)[0, 1]))
    return F0Scores(rmse, vuv, corr, gpe, fine)
