"""An :class:`~l2s.align.timeline.Alignment` as tiers of the ``synthesize --plot`` figure
(:func:`l2s.figures.synthesis_figure` draws each tier of labelled spans under the mels)."""

from __future__ import annotations

from typing import Dict, Optional, Tuple

from l2s.align.timeline import Alignment
from l2s.pipeline.words import Span


def timeline_tiers(alignment: Optional[Alignment]) -> Optional[Dict[str, Tuple[Span, ...]]]:
    """``{"words": ..., "phonemes": ...}`` spans of an alignment, or None without one (the figure then
    draws its default tier, the words of the greedy CTC path)."""
    if alignment is None:
        return None
    return {"words": tuple(Span(w.start, w.end, w.word) for w in alignment.words),
            "phonemes": tuple(Span(p.start, p.end, p.phoneme) for p in alignment.phonemes)}
