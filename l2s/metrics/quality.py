"""Non-intrusive quality: DNSMOS P.835 (SIG, BAK, OVRL) and P.808, from the ONNX models in ``speechmos``.

The models and their pre/post-processing (9.01 s windows hopped by 1 s, short clips tiled,
the P.835 polynomial calibration) are Microsoft's DNS-Challenge ones as packaged by
``speechmos``; we only build the ONNX sessions ourselves so the thread count follows
``OMP_NUM_THREADS`` and nothing is downloaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Dict

import numpy as np

from l2s.config import SAMPLE_RATE
from l2s.extras import needs_extra
from l2s.metrics.base import Score, silence_reason

_NAMES = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808")


@dataclass(frozen=True)
class DnsmosScores:
    """DNSMOS P.835 overall, signal and background, and P.808 MOS (each about 1-5)."""

    ovrl: Score
    sig: Score
    bak: Score
    p808: Score

    def as_dict(self) -> Dict[str, Score]:
        return dict(zip(_NAMES, (self.ovrl, self.sig, self.bak, self.p808)))


@lru_cache(maxsize=1)
def _dnsmos():
    try:
        import onnxruntime as ort
        from speechmos import dnsmos as sm
    except ImportError as exc:
        raise needs_extra("DNSMOS", "eval", exc.name or "speechmos") from None

    models = resources.files("speechmos") / "dnsmos_models"
    opts = ort.SessionOptions()
    threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1

    class _Dnsmos(sm.DNSMOS):
        def __init__(self) -> None:  # same models as the parent, our session options
            self.primary_model_path = str(models / "sig_bak_ovr.onnx")
            self.onnx_sess = ort.InferenceSession(self.primary_model_path, opts, providers=["CPUExecutionProvider"])
            self.p808_onnx_sess = ort.InferenceSession(str(models / "model_v8.onnx"), opts,
                                                       providers=["CPUExecutionProvider"])

    return _Dnsmos(), sm.SR


def dnsmos(wav: np.ndarray) -> DnsmosScores:
    """DNSMOS of one ``(N,)`` waveform at the contract rate (clipped to [-1, 1] as the model expects)."""
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    reason = silence_reason(wav, "audio")
    if reason:
        return DnsmosScores(*(Score.missing(n, reason) for n in _NAMES))
    model, rate = _dnsmos()
    if rate != SAMPLE_RATE:
        why = f"DNSMOS needs {rate} Hz audio"
        return DnsmosScores(*(Score.missing(n, why) for n in _NAMES))
    out = model(np.clip(wav, -1.0, 1.0), rate, False)
    return DnsmosScores(Score.of("dnsmos_ovrl", out["ovrl_mos"]), Score.of("dnsmos_sig", out["sig_mos"]),
                        Score.of("dnsmos_bak", out["bak_mos"]), Score.of("dnsmos_p808", out["p808_mos"]))
