"""SynthGRID building blocks: grammar, viseme table, coarticulation, the face renderer."""

from __future__ import annotations

import numpy as np

from l2s.corpora.synthgrid import grammar
from l2s.corpora.synthgrid.face import FaceRenderer, sample_nuisance
from l2s.corpora.synthgrid.mouth import mouth_track
from l2s.corpora.synthgrid.phonemes import VISEMES, split_units, viseme_of
from l2s.corpora.synthgrid.speakers import make_speakers


def test_grammar():
    assert grammar.NUM_SENTENCES == 64000 and len(grammar.VOCABULARY) == 51
    words = ("bin", "blue", "at", "f", "two", "now")
    assert grammar.sentence_code(words) == "bbaf2n"
    parts = {grammar.sentence_partition(grammar.sentence_from_index(i)) for i in range(200)}
    assert parts == {"train", "valid", "test"}
    got = grammar.sample_sentences(np.random.default_rng(0), 30, "test")
    assert len(set(got)) == 30 and all(grammar.sentence_partition(s) == "test" for s in got)


def test_viseme_table():
    assert 12 <= len(VISEMES) <= 15
    assert split_units("ˈaʊ") == ["a", "ʊ"] and split_units("tʃ") == ["tʃ"] and split_units("") == []
    same = [("p", "b", "m"), ("f", "v"), ("t", "d", "n", "s", "z", "l"), ("k", "ɡ", "ŋ")]
    for group in same:
        assert len({viseme_of(u) for u in group}) == 1
    assert len({viseme_of(g[0]) for g in same}) == len(same)
    assert VISEMES[viseme_of("p")] == "bilabial"


def _render(phones, seed=0):
    speaker = make_speakers(1, 7)[0]
    times = np.arange(20) / 25 + 0.02
    track = [(viseme_of(u), 0.1 + 0.1 * i, 0.2 + 0.1 * i) for i, u in enumerate(phones)]
    poses = mouth_track(track, times)
    nuisance = sample_nuisance(np.random.default_rng(seed), 20, 25)
    return FaceRenderer(speaker.face, 96).render(poses, nuisance, 25)


def test_one_viseme_class_renders_identically():
    a, marks_a = _render(["a", "p", "a", "t", "i"])
    b, marks_b = _render(["a", "b", "a", "n", "i"])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(marks_a["inner_lip"], marks_b["inner_lip"])
    c, _ = _render(["a", "f", "a", "t", "i"])  # another class does show
    assert np.abs(a.astype(int) - c.astype(int)).max() > 20


def test_coarticulation_is_continuous_and_bilabials_dominate():
    times = np.arange(0, 1.0, 0.01)
    poses = mouth_track([(viseme_of("a"), 0.2, 0.4), (viseme_of("m"), 0.4, 0.46), (viseme_of("a"), 0.46, 0.7)], times)
    assert np.abs(np.diff(poses[:, 0])).max() < 0.5
    assert poses[43, 0] < 0.04 < 0.9 < poses[30, 0]  # closed inside the /m/, open in the vowel
