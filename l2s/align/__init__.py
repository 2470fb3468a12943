"""Lip-read text on the timeline: CTC forced alignment on the video frames, phonemes, subtitles.

* :mod:`l2s.align.ctc`: Viterbi forced alignment of a token sequence on frame posteriors.
* :mod:`l2s.align.aligner`: :class:`Aligner`, text -> :class:`Alignment` with a lip reader, a G2P and
  the learned parts of the ``aligner`` stage (:mod:`l2s.models.aligner`: the timing head and the duration
  model).
* :mod:`l2s.align.timeline`: :class:`Alignment` and :func:`render_frames` (per mel frame).
* :mod:`l2s.align.subtitles`: txt, json, srt, vtt and tsv writers.
"""

from l2s.align.aligner import Aligner
from l2s.align.timeline import Alignment, PhonemeFrames, PhonemeSpan, WordSpan, render_frames

__all__ = ["Aligner", "Alignment", "PhonemeFrames", "PhonemeSpan", "WordSpan", "render_frames"]
