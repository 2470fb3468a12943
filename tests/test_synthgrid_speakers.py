"""SynthGRID speakers: fixed tuples from a seed, and voices a speaker encoder tells apart."""

from __future__ import annotations

import numpy as np
import pytest

from l2s.corpora.synthgrid.speakers import Speaker, make_speakers


def test_speakers_are_fixed_tuples():
    a, b = make_speakers(6, 0), make_speakers(6, 0)
    assert a == b and make_speakers(6, 1) != a
    assert {s.engine for s in a} == {"piper", "espeak"}
    assert len({(s.voice, s.f0_scale, s.warp) for s in a}) == 6
    assert all(Speaker.from_dict(s.to_dict()) == s for s in a)
    # faces follow voices loosely: the face is wider for the lower-formant (warp < 1) half of many speakers
    many = make_speakers(200, 3)
    warp = np.array([s.warp for s in many])
    width = np.array([s.face.face_width for s in many])
    assert np.corrcoef(warp, width)[0, 1] < -0.2


def test_resemblyzer_within_speaker_above_between_speakers():
    pytest.importorskip("piper")
    pytest.importorskip("resemblyzer")
    from l2s.corpora.synthgrid import grammar, speech
    from l2s.metrics.speaker import speaker_embedding

    speakers = make_speakers(3, 0)
    # Word i of every slot: each sentence is its own carrier, so every voice synthesises two sentences only.
    sentences = [tuple(slot[i] for slot in grammar.SLOTS) for i in (0, 1)]
    emb = {s.id: [speaker_embedding(speech.speak(s, w, np.random.default_rng(k)).wav)
                  for k, w in enumerate(sentences)] for s in speakers}
    ids = list(emb)
    within = [float(emb[i][0] @ emb[i][1]) for i in ids]
    between = [float(emb[i][a] @ emb[j][b]) for n, i in enumerate(ids) for j in ids[n + 1:] for a in (0, 1)
               for b in (0, 1)]
    assert min(within) > np.mean(between), (within, between)
    assert np.mean(within) > np.mean(between) + 0.05, (within, between)


def test_corpus_speakers_command(tmp_path):
    pytest.importorskip("piper")
    pytest.importorskip("resemblyzer")
    import json

    from click.testing import CliRunner

    from l2s.cli import main
    from l2s.corpora.synthgrid.generate import make_clips

    rows = make_clips(tmp_path, n=4, seed=0, speakers=2)
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(main, ["corpus", "speakers", str(tmp_path), "--clips", "2", "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["speakers"] == 2 and stats["chance"] == 0.5
    assert stats["within_mean"] > stats["between_mean"]
    assert 0.0 <= stats["nearest_centroid_accuracy"] <= 1.0
    bad = CliRunner().invoke(main, ["corpus", "speakers", str(tmp_path), "--clips", "1"])
    assert bad.exit_code == 2 and len(bad.stderr.strip().splitlines()) == 1
