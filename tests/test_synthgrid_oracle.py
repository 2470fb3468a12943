"""The viseme-ambiguity floor on hand-made alignments."""

import pytest

from l2s.corpora.synthgrid.oracle import viseme_floor, word_visemes
from l2s.errors import InputError


def clip(words):
    """An align dict of consecutive words, each ``(word, [viseme, ...])``, 0.1 s per phoneme."""
    out = {"words": [], "phonemes": []}
    t = 0.0
    for word, visemes in words:
        start = t
        for v in visemes:
            out["phonemes"].append({"viseme": v, "start": t, "end": t + 0.1})
            t += 0.1
        out["words"].append({"word": word, "start": start, "end": t})
    return out


SENT_B = [("bin", ["bilabial", "spread", "alveolar"]), ("blue", ["bilabial", "alveolar", "round-close"]),
          ("at", ["open", "alveolar"]), ("b", ["bilabial", "spread"]), ("one", ["round-approx", "mid", "alveolar"]),
          ("now", ["alveolar", "open", "round-close"])]
SENT_P = SENT_B[:3] + [("p", ["bilabial", "spread", "spread"])] + SENT_B[4:]
SENT_F = SENT_B[:3] + [("f", ["mid", "labiodental"])] + SENT_B[4:]


def test_repeats_merge_and_silence_drops():
    c = clip([("p", ["sil", "bilabial", "spread", "spread"])])
    assert word_visemes(c) == [("p", ("bilabial", "spread"))]


def test_lookalikes_cost_half_a_word_each():
    floor = viseme_floor([clip(SENT_B), clip(SENT_F)], [clip(SENT_B), clip(SENT_P), clip(SENT_F)])
    # 12 words, one ambiguous ("b" looks like "p"): expected errors 0.5
    assert floor.words == 12 and floor.ambiguous_words == 1
    assert floor.wer == pytest.approx(100 * 0.5 / 12)
    assert dict(floor.lookalikes) == {"b": ("p",)}


def test_words_outside_their_grammar_slot_are_refused():
    with pytest.raises(InputError, match="slot"):
        viseme_floor([clip([("blue", ["bilabial"])])], [])
