"""Model-based metrics on one short TTS utterance: DNSMOS (speechmos ONNX) and Resemblyzer."""

import numpy as np
import pytest

from tests._eval_speech import speech

pytest.importorskip("speechmos")


def test_dnsmos_speech_above_noise():
    from l2s.metrics.quality import dnsmos

    ref = speech(0)
    noise = (0.1 * np.random.default_rng(0).standard_normal(len(ref))).astype(np.float32)
    clean, noisy = dnsmos(ref), dnsmos(noise)
    assert noisy.ovrl.value < 2.0 and noisy.sig.value < 2.0
    assert clean.ovrl.value > noisy.ovrl.value + 1.0
    assert dnsmos(np.zeros(16000, np.float32)).ovrl.reason


def test_speaker_similarity_same_voice_above_noise():
    pytest.importorskip("resemblyzer")
    from l2s.metrics.speaker import speaker_similarity

    a, b = speech(0), speech(1)
    noise = (0.1 * np.random.default_rng(0).standard_normal(len(a))).astype(np.float32)
    same = speaker_similarity(a, b).value
    assert same > 0.75
    assert speaker_similarity(a, a).value == pytest.approx(1.0, abs=1e-5)
    assert speaker_similarity(a, noise).value < same - 0.2
