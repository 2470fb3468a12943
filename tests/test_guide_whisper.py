"""The Whisper guide: our mel mapped onto Whisper's front-end, a differentiable log-likelihood that
prefers the spoken text (Whisper tiny.en converted offline, piper TTS speech)."""

from __future__ import annotations

from functools import lru_cache

import pytest
import torch

from l2s.errors import L2SError
from l2s.features.mel import peak_normalize, wav_to_mel
from tests._eval_speech import SENTENCES, speech

whisper_audio = pytest.importorskip("whisper.audio")


@lru_cache(maxsize=1)
def _guide():
    from l2s.models.guide.whisper import WhisperGuide

    try:
        return WhisperGuide.load("tiny.en")
    except L2SError as exc:
        pytest.skip(f"offline Whisper tiny.en unavailable: {exc}")


def _text(index: int) -> str:
    return SENTENCES[index].lower().rstrip(".")


def test_mel_map_matches_whispers_front_end():
    from l2s.models.guide.whisper import MelToWhisper

    wav = torch.from_numpy(speech(0))
    ref = whisper_audio.log_mel_spectrogram(peak_normalize(wav), padding=0)  # (80, N // 160)
    ours = MelToWhisper()(wav_to_mel(wav)[None])[0]
    n = min(ref.shape[-1], ours.shape[-1])
    err = (ref[:, :n] - ours[:, :n]).abs()
    # the filterbank map is an approximation: small on average (normalised log-mel units span about 2)
    assert float(err.mean()) < 0.12, float(err.mean())
    assert float(err.quantile(0.9)) < 0.3


def test_prefers_the_spoken_text_and_is_differentiable():
    guide = _guide()
    mel = wav_to_mel(torch.from_numpy(speech(1)))[None]
    with torch.no_grad():
        ll = guide.log_likelihood(mel.expand(2, -1, -1), [_text(1), _text(2)])
    assert float(ll[0]) > float(ll[1]) + 10.0, ll.tolist()
    x = mel.clone().requires_grad_(True)
    loss = guide.loss_fn([_text(1)])(x, torch.zeros(1, 1))
    (grad,) = torch.autograd.grad(loss, x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert torch.allclose(loss.detach(), -ll[0], rtol=1e-4, atol=1e-3)


def test_a_pipeline_selects_whisper_as_its_guide_by_name(tmp_path):
    """``components: {guide: whisper}``: the guide table's ``whisper`` member, no model directory; it reads the
    generator's schedule to undo the forward process's scaling, and its gradient steers the generator."""
    import numpy as np
    import yaml

    from l2s.hub import PIPELINE_FILE
    from l2s.pipeline import Lip2Speech, build_untrained_pipeline

    _guide()  # skips when the offline Whisper is not installed
    root = build_untrained_pipeline(tmp_path / "p", "micro")
    meta = yaml.safe_load((root / PIPELINE_FILE).read_text())
    meta["components"]["guide"] = "whisper"
    (root / PIPELINE_FILE).write_text(yaml.safe_dump(meta))
    pipe = Lip2Speech.from_pretrained(root, device="cpu")
    assert pipe.guide.arch == "whisper" and pipe.guide.model.schedule.num_steps == 400
    roi = np.random.default_rng(0).integers(0, 256, (10, 96, 96), dtype=np.uint8)
    guided = pipe(roi, text="bin blue at f two now", steps=2, w_asr=1.5, seed=0)
    plain = pipe(roi, steps=2, w_asr=0.0, seed=0)  # the text would only label it
    assert guided.network_evals > plain.network_evals  # the guide ran at the steps t <= asr_start
    assert not np.array_equal(guided.mel, plain.mel)
