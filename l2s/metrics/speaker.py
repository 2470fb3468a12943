"""Speaker similarity: cosine of Resemblyzer (GE2E) utterance embeddings, weights shipped in the package."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from l2s.config import SAMPLE_RATE
from l2s.extras import needs_extra
from l2s.metrics.base import Score, silence_reason


@lru_cache(maxsize=1)
def _encoder():
    try:
        from resemblyzer import VoiceEncoder
    except ImportError as exc:
        raise needs_extra("speaker similarity (Resemblyzer)", "eval", exc.name or "resemblyzer") from None
    return VoiceEncoder("cpu", verbose=False)


def speaker_embedding(wav: np.ndarray) -> np.ndarray:
    """``(256,)`` L2-normalised embedding of a ``(N,)`` waveform (Resemblyzer's VAD trimming applied)."""
    from resemblyzer import preprocess_wav

    x = preprocess_wav(np.asarray(wav, dtype=np.float32), source_sr=SAMPLE_RATE)
    if x.size == 0:  # the VAD removed everything: fall back to the raw (normalised) clip
        x = np.asarray(wav, dtype=np.float32)
    return _encoder().embed_utterance(x)


def speaker_similarity(ref: np.ndarray, hyp: np.ndarray) -> Score:
    """Cosine similarity in [-1, 1] of the two clips' speaker embeddings (1: same voice)."""
    for wav, what in ((ref, "reference"), (hyp, "hypothesis")):
        reason = silence_reason(np.asarray(wav), what)
        if reason:
            return Score.missing("speaker_sim", reason)
    a, b = speaker_embedding(ref), speaker_embedding(hyp)
    return Score.of("speaker_sim", float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12)))
