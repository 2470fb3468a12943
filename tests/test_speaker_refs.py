"""Reference recordings for speaker-conditioned training: another utterance of the same speaker."""

from __future__ import annotations

import json

import pytest
import torch

from l2s.errors import InputError
from l2s.train.speaker_refs import SpeakerReferences


def _manifest(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def refs(tmp_path):
    rows = [{"id": f"{spk}_{i}", "speaker": spk, "wav": f"audio/{spk}_{i}.wav"}
            for spk, n in (("a", 3), ("b", 2), ("c", 1)) for i in range(n)]
    rows.append({"id": "anon", "speaker": "", "wav": "audio/anon.wav"})
    train = _manifest(tmp_path / "train.jsonl", rows[:4])
    test = _manifest(tmp_path / "test.jsonl", rows[4:])
    calls = []

    def embed(path):
        calls.append(path.name)
        return torch.full((4,), float(len(path.name)))

    return SpeakerReferences([train, test], embed=embed), calls


def test_reference_is_another_utterance_of_the_speaker(refs):
    references, _ = refs
    # evaluation: fixed, the next utterance of the same speaker, cyclically
    assert [references.reference_id(f"a_{i}") for i in range(3)] == ["a_1", "a_2", "a_0"]
    assert references.reference_id("b_1") == "b_0"  # across manifests
    # alone with its speaker, or without a speaker label: its own recording
    assert references.reference_id("c_0") == "c_0" and references.reference_id("anon") == "anon"
    gen = torch.Generator().manual_seed(0)
    drawn = {references.reference_id("a_0", gen) for _ in range(40)}
    assert drawn == {"a_1", "a_2"}
    with pytest.raises(InputError):
        references.reference_id("nobody")


def test_embeddings_are_computed_once(refs):
    references, calls = refs
    batch = references.batch(["a_0", "a_1", "a_0"])
    assert batch.shape == (3, 4) and batch.dtype == torch.float32
    assert calls == ["a_1.wav", "a_2.wav"]  # a_0's reference (a_1) embedded once, then a_1's (a_2)
    references.batch(["a_0"])
    assert len(calls) == 2


def test_a_manifest_without_recordings_is_refused(tmp_path):
    path = _manifest(tmp_path / "m.jsonl", [{"id": "x", "speaker": "s"}])
    with pytest.raises(InputError, match="no wav"):
        SpeakerReferences([path])


def test_pitch_levels_follow_the_references(tmp_path):
    rows = [{"id": f"a_{i}", "speaker": "a", "wav": f"audio/a_{i}.wav"} for i in range(2)]
    levels = {"a_0.wav": 4.6, "a_1.wav": None}
    refs = SpeakerReferences([_manifest(tmp_path / "m.jsonl", rows)], embed=lambda p: torch.zeros(2),
                             level=lambda p: levels[p.name])
    out = refs.batch_levels(["a_1", "a_0"])
    assert out[0] == pytest.approx(4.6) and torch.isnan(out[1])  # a_1's reference is a_0, and a_0's a_1
