"""Lexicon, word LM and lexicon-constrained CTC beam search over phoneme posteriors (l2s.models.vsr.lexicon)."""

import math

import pytest
import torch

from l2s.errors import InputError, ModelError
from l2s.models.vsr.lexicon import (Lexicon, LexiconSearchOptions, RescoreOptions, WordLM, lexicon_beam_search,
                                    phoneme_log_likelihood, rescore_nbest)
from l2s.models.vsr.ngram_lm import NgramOptions
from l2s.text.phonemes import BLANK_ID, DEFAULT_INVENTORY, SIL_ID, G2P

INV = DEFAULT_INVENTORY
TEXTS = ["i want two red dogs", "i eat too much", "the red dog sat", "two dogs sat down", "i want two"]


@pytest.fixture(scope="module")
def g2p():
    return G2P()


@pytest.fixture(scope="module")
def lexicon(g2p):
    return Lexicon.from_texts(TEXTS, g2p)


@pytest.fixture(scope="module")
def word_lm():
    return WordLM.from_texts(TEXTS, NgramOptions(order=3))


def posteriors(frames, peak=0.9):
    """Peaky (T, P) log-probs: each frame's unit (0 = blank) gets ``peak``, the rest share the remainder."""
    probs = torch.full((len(frames), len(INV)), (1 - peak) / (len(INV) - 1), dtype=torch.float64)
    probs[torch.arange(len(frames)), torch.tensor(frames)] = peak
    return probs.log().float()


def frames_of(units, repeat=2):
    """Each unit for ``repeat`` frames then one blank; a leading and trailing blank."""
    out = [BLANK_ID]
    for u in units:
        out += [u] * repeat + [BLANK_ID]
    return out + [BLANK_ID]


def test_lexicon_from_texts_homophones_and_lookup(lexicon, g2p):
    assert set(lexicon.words) == {w for t in TEXTS for w in t.split()}
    assert lexicon.ids("two") == lexicon.ids("too") == tuple(INV.ids(["t", "u"]))
    assert lexicon.ids("red") == tuple(INV.ids(["ɹ", "ɛ", "d"]))
    # the word alone comes first; the in-context pronunciations follow when they differ
    assert lexicon.pronunciations("the")[0] == tuple(INV.ids(g2p(["the"])[0]))
    assert lexicon.ids("cat", g2p) == tuple(INV.ids(["k", "æ", "t"]))
    with pytest.raises(InputError, match="not in the lexicon"):
        lexicon.ids("cat")
    alone = Lexicon.from_texts(TEXTS, g2p, in_context=False)
    assert all(len(alone.pronunciations(w)) == 1 for w in alone.words)


def test_lexicon_save_load_roundtrip(lexicon, tmp_path):
    path = lexicon.save(tmp_path / "lexicon.txt")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert "red\tɹ ɛ d" in lines and "two\tt u" in lines
    assert Lexicon.load(path) == lexicon
    # a hand-added word (and a blank line) is read
    path.write_text(path.read_text(encoding="utf-8") + "\ncat\tk æ t\n", encoding="utf-8")
    assert Lexicon.load(path).ids("cat") == tuple(INV.ids(["k", "æ", "t"]))


@pytest.mark.parametrize("text, match", [
    ("red ɹ ɛ d\n", "expected 'word<TAB>"),
    ("red\t\n", "expected 'word<TAB>"),
    ("red\tɹ ɛ XYZ\n", "'XYZ' is not a phoneme"),
    ("red\tɹ <blank> d\n", "'<blank>' is not a phoneme"),
    ("\n\n", "empty lexicon"),
])
def test_lexicon_bad_file_is_a_model_error(tmp_path, text, match):
    path = tmp_path / "lexicon.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ModelError, match=match) as info:
        Lexicon.load(path)
    assert "\n" not in str(info.value)
    with pytest.raises(ModelError, match="cannot read"):
        Lexicon.load(tmp_path / "missing.txt")


def test_word_lm_scores_and_roundtrip(word_lm, tmp_path):
    assert word_lm.logprob(["i", "want"], "two") > word_lm.logprob(["i", "want"], "too")
    assert word_lm.logprob(["i", "eat"], "too") > word_lm.logprob(["i", "eat"], "two")
    assert word_lm.end_logprob(["red", "dog", "sat"]) > word_lm.end_logprob(["red"])
    total = sum(math.exp(word_lm.logprob(["i"], w)) for w in word_lm.words + ("<unk>",))
    assert total + math.exp(word_lm.end_logprob(["i"])) == pytest.approx(1.0, abs=1e-9)
    loaded = WordLM.load(word_lm.save(tmp_path / "word_lm.json"))
    assert loaded.words == word_lm.words
    sentence = ["i", "want", "two"]
    assert loaded.sentence_logprob(sentence) == pytest.approx(word_lm.sentence_logprob(sentence))
    (tmp_path / "bad.json").write_text('{"format": "something else"}', encoding="utf-8")
    with pytest.raises(ModelError, match="not an l2s word language model"):
        WordLM.load(tmp_path / "bad.json")
    (tmp_path / "worse.json").write_text("{", encoding="utf-8")
    with pytest.raises(ModelError, match="cannot read"):
        WordLM.load(tmp_path / "worse.json")


def _units(g2p, text):
    return [i for word in g2p(text.split()) for i in INV.ids(word)]


def test_search_reads_the_words_across_a_repeated_unit(lexicon, g2p):
    # "red dog": /d/ ends one word and starts the next, with a blank between them
    units = _units(g2p, "the red dog sat")
    assert INV.id("d") in units and units[units.index(INV.id("d")) + 1] == INV.id("d")
    hyps = lexicon_beam_search(posteriors(frames_of(units)), lexicon, options=LexiconSearchOptions(beam_size=10))
    assert hyps[0].words == ("the", "red", "dog", "sat")
    assert hyps[0].lm == 0.0 and hyps[0].score == pytest.approx(hyps[0].acoustic)
    assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)


def test_search_needs_a_blank_between_repeated_units():
    a = INV.id("a")
    lex = Lexicon((("x", (a,)), ("xx", (a, a))))
    # a a a (no blank): one /a/, so only "x"
    hyps = lexicon_beam_search(posteriors([a, a, a]), lex)
    assert hyps[0].words == ("x",) and hyps[1].score < hyps[0].score - 5
    assert all(math.isfinite(h.score) for h in hyps)
    # a _ a: two /a/ -> "xx" or "x x" (the same phonemes; "x x" also has the small mass of <sil> in the
    # middle frame), "x" alone far behind
    hyps = lexicon_beam_search(posteriors([a, BLANK_ID, a]), lex)
    assert [h.words for h in hyps[:2]] == [("x", "x"), ("xx",)]
    assert hyps[0].score == pytest.approx(hyps[1].score, abs=0.01)
    assert all(h.score < hyps[1].score - 5 for h in hyps[2:])
    # a pause ends a word: "x x" only, and the pause can end the clip
    hyps = lexicon_beam_search(posteriors([a, SIL_ID, a]), lex)
    assert hyps[0].words == ("x", "x") and hyps[1].score < hyps[0].score - 5
    hyps = lexicon_beam_search(posteriors([SIL_ID, a, a, SIL_ID, SIL_ID]), lex)
    assert hyps[0].words == ("x",) and hyps[1].score < hyps[0].score - 5


def test_word_lm_chooses_between_homophones(lexicon, word_lm, g2p):
    options = LexiconSearchOptions(beam_size=10, lm_weight=1.0)
    for text in ("i want two red dogs", "i eat too much"):
        log_probs = posteriors(frames_of(_units(g2p, text)))
        hyps = lexicon_beam_search(log_probs, lexicon, word_lm, options)
        assert hyps[0].text == text
        assert hyps[0].lm == pytest.approx(word_lm.sentence_logprob(text.split()))
        # without the LM the homophones tie on the acoustics (a wide beam keeps all their alignments)
        plain = lexicon_beam_search(log_probs, lexicon, options=LexiconSearchOptions(beam_size=50))
        assert {h.text for h in plain[:2]} == {text, text.replace("two", "too") if "two" in text
                                               else text.replace("too", "two")}
        assert plain[0].acoustic == pytest.approx(plain[1].acoustic, rel=1e-6)


def test_phoneme_log_likelihood_matches_the_paths():
    a, b = INV.id("a"), INV.id("b")
    log_probs = torch.randn(2, len(INV), generator=torch.Generator().manual_seed(0)).log_softmax(-1)
    p = log_probs.double().exp()
    # "a b" in two frames: one path; "a" in two frames: a a, a _, _ a
    assert phoneme_log_likelihood(log_probs, [a, b]) == pytest.approx(math.log(p[0, a] * p[1, b]), rel=1e-5)
    expect = math.log(p[0, a] * p[1, a] + p[0, a] * p[1, 0] + p[0, 0] * p[1, a])
    assert phoneme_log_likelihood(log_probs, [a]) == pytest.approx(expect, rel=1e-5)
    assert phoneme_log_likelihood(log_probs, [a, a]) == -math.inf  # needs a blank: three frames


def test_rescoring_prefers_the_hypothesis_the_phonemes_support(lexicon, word_lm, g2p):
    log_probs = posteriors(frames_of(_units(g2p, "the red dog sat")))
    nbest = [("the bed dog sat", -1.0), ("the red dog sat", -1.5)]
    with pytest.raises(InputError):
        rescore_nbest(nbest, log_probs, lexicon)  # "bed" is not in the lexicon
    out = rescore_nbest(nbest, log_probs, lexicon, word_lm, RescoreOptions(phoneme_weight=0.5, lm_weight=0.1), g2p)
    assert [h.text for h in out] == ["the red dog sat", "the bed dog sat"]
    assert out[0].phoneme > out[1].phoneme
    assert out[0].score == pytest.approx(out[0].base + 0.5 * out[0].phoneme + 0.1 * out[0].lm)
    # with no phoneme weight the base order stands
    out = rescore_nbest(nbest, log_probs, lexicon, options=RescoreOptions(phoneme_weight=0.0), g2p=g2p)
    assert out[0].text == "the bed dog sat"


def test_search_scores_are_the_ctc_likelihood_with_a_wide_beam():
    # with every hypothesis kept, a word sequence's acoustic score is the CTC log-likelihood of its phonemes
    # (summed over its pronunciations); <sil> gets no mass here, so no pause paths add to it
    a, b, c = INV.id("a"), INV.id("b"), INV.id("k")
    lex = Lexicon((("ab", (a, b)), ("abb", (a, b, b)), ("ba", (b, a)), ("ba", (b, c)), ("c", (c,))))
    logits = torch.randn(6, len(INV), generator=torch.Generator().manual_seed(1))
    logits[:, SIL_ID] = -math.inf
    log_probs = logits.log_softmax(-1)
    hyps = lexicon_beam_search(log_probs, lex, options=LexiconSearchOptions(beam_size=10_000, token_prune=1e9))
    assert len(hyps) > 10
    for h in hyps:
        choices = [[]]
        for word in h.words:
            choices = [seq + list(p) for seq in choices for p in lex.pronunciations(word)]
        expect = torch.logsumexp(torch.tensor([phoneme_log_likelihood(log_probs, s) for s in choices]), 0)
        assert h.acoustic == pytest.approx(float(expect), rel=1e-6, abs=1e-9), h.words
