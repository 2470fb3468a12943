"""The ``prior`` stage: F0 and voicing predicted from the lips, and the DDSP coarse prior built on them.

* :mod:`l2s.models.prior.f0`: the F0 + voicing predictor, its targets and its loss.
* :mod:`l2s.models.prior.ddsp`: the harmonic-plus-noise synthesiser, its control network and
  :class:`~l2s.models.prior.ddsp.CoarsePrior` (the ``ddsp`` architecture).
"""
