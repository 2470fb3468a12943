"""The ``aligner`` stage: what is learned to place a text on a lip reader's frames.

* :mod:`l2s.models.aligner.timing`: the timing head (frame posteriors over the reader's tokens, on time).
* :mod:`l2s.models.aligner.durations`: the duration model (a word's span shared among its phonemes).
* :mod:`l2s.models.aligner.model`: both as one model, :class:`~l2s.models.aligner.model.AlignerModel`
  (the ``viterbi`` architecture).

The alignment itself (forced alignment, G2P, the timeline) is :mod:`l2s.align`.
"""
