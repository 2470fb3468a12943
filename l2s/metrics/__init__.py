"""Evaluation metrics. Each returns :class:`~l2s.metrics.base.Score` values (missing ones carry a reason).

* :mod:`~l2s.metrics.wer`: WER / CER (jiwer, Whisper's English normaliser on both sides).
* :mod:`~l2s.metrics.align`: cross-correlation alignment within a bounded lag; DTW path.
* :mod:`~l2s.metrics.intelligibility`: STOI, ESTOI, wideband PESQ.
* :mod:`~l2s.metrics.spectral`: MCD (with and without DTW), F0 RMSE, V/UV error, log-F0 correlation.
* :mod:`~l2s.metrics.quality`: DNSMOS P.835 and P.808.
* :mod:`~l2s.metrics.speaker`: Resemblyzer speaker similarity.
* :mod:`~l2s.metrics.sync`: our audio-visual sync expert (not comparable with published LSE numbers).

Submodules import their heavy dependencies lazily; import what you use.
"""

from l2s.metrics.base import Score

__all__ = ["Score"]
