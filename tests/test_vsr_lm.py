"""The token n-gram language model of the lip reader: Kneser-Ney by hand, storage, shallow fusion, CLI."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from l2s.errors import ModelError
from l2s.models.vsr.decoding import BeamSearchOptions, beam_search
from l2s.models.vsr.ngram_lm import LM_FILE, NgramLM, NgramOptions, load_lm, save_lm
from l2s.models.vsr import VSR_TINY, VSRModel, check_lm, load_vsr, save_vsr
from l2s.text.tokenizer import CharTokenizer

# ids: 0 blank, 1 unk, 2 a, 3 b, 4 c, 5 sos/eos
A, B, C, E = 2, 3, 4, 5
V = 6


def _toy(order=2, discount=0.5):
    return NgramLM.estimate([[A, B], [A, C]], V, E, E, (0,), NgramOptions(order=order, discount=discount))


def test_interpolated_kneser_ney_matches_hand_computation():
    lm = _toy()
    # unigram level: continuation counts a 1, b 1, c 1, eos 2 (preceded by b and c); 4 types over 5;
    # the base is uniform over the 5 emittable ids (no blank), so P1(a) = 0.5/5 + 0.5*4/5*0.2 = 0.18.
    p1 = lm.distribution([E, E])[[1, A, B, C, E]]  # context 'sos': seen once with 'a' (count 2)
    after_a = lm.distribution([A])
    np.testing.assert_allclose(after_a[[1, A, B, C, E]], [0.04, 0.09, 0.34, 0.34, 0.19], atol=1e-12)
    assert after_a[0] == 0.0
    # after sos: 'a' twice -> (2 - 0.5)/2 + 0.5*1/2 * P1
    np.testing.assert_allclose(p1, [0.25 * 0.08, 0.75 + 0.25 * 0.18, 0.25 * 0.18, 0.25 * 0.18, 0.25 * 0.38],
                               atol=1e-12)


@pytest.mark.parametrize("order", [1, 3, 5])
def test_every_distribution_sums_to_one_and_unseen_contexts_back_off(order):
    lm = _toy(order=order, discount=0.75)
    for context in ([], [A], [A, B], [C, C, C, C], [1, 1]):
        dist = lm.distribution(context)
        assert dist.sum() == pytest.approx(1.0, abs=1e-12)
        assert dist[0] == 0.0 and (dist[1:] > 0).all()
    # a never-seen context of the top order backs off to what its suffix predicts
    np.testing.assert_allclose(lm.distribution([C, C, A]), lm.distribution([A]) if order == 2 else
                               lm.distribution([C, C, A]))


def test_score_is_the_beam_search_hook():
    lm = _toy()
    ys = torch.tensor([[E, A], [E, B]])
    scores = lm.score(ys)
    assert scores.shape == (2, V) and scores.dtype == torch.float32
    np.testing.assert_allclose(scores[0].exp().numpy(), lm.distribution([A]), rtol=1e-6)
    assert scores[0, 0] < -1e9  # blank: never, but finite
    assert lm.sentence_logprob([A, B]) > lm.sentence_logprob([B, A])
    assert 1.0 < lm.perplexity([[A, B], [A, C]]) < lm.perplexity([[C, B], [B, A]])


def test_save_load_round_trip_and_bad_files(tmp_path):
    lm = _toy(order=3)
    path = save_lm(lm, tmp_path / "lm.json")
    loaded = load_lm(path)
    assert loaded.options == lm.options and loaded.counts == lm.counts
    np.testing.assert_array_equal(loaded.distribution([A]), lm.distribution([A]))
    assert sorted(f.name for f in tmp_path.iterdir()) == ["lm.json"]  # no temporary file left
    heavier = lm.with_weight(0.9)
    assert heavier.options == NgramOptions(order=3, discount=0.5, weight=0.9) and lm.options.weight == 0.5
    np.testing.assert_array_equal(heavier.distribution([A]), lm.distribution([A]))
    (tmp_path / "bad.json").write_text(json.dumps({"format": "something"}))
    for bad in (tmp_path / "bad.json", tmp_path / "missing.json"):
        with pytest.raises(ModelError):
            load_lm(bad)
    with pytest.raises(ValueError):
        NgramOptions(order=0)
    with pytest.raises(ModelError):
        NgramLM({(A, B, C): 1}, V, E, E, options=NgramOptions(order=2))


class _FlatDecoder:
    """A decoder that cannot tell tokens apart: the search follows the language model alone."""

    def forward_one_step(self, ys, memory, cache=None):
        return torch.full((ys.shape[0], V), -float(np.log(V))), []


def test_shallow_fusion_steers_an_undecided_search_to_the_language_model():
    lm = NgramLM.estimate([[C, A, B]] * 3, V, E, E, (0,), NgramOptions(order=3))
    memory = torch.zeros(8, 4)
    # the length bonus cancels the decoder's flat per-token cost, so only the language model ranks
    options = BeamSearchOptions(beam_size=4, ctc_weight=0.0, lm_weight=1.0, length_bonus=float(np.log(V)))
    best = beam_search(_FlatDecoder(), memory, None, E, E, 0, options, lm)[0]
    assert best.token_ids == [C, A, B]
    assert best.scores["lm"] == pytest.approx(lm.sentence_logprob([C, A, B]), abs=1e-4)


MICRO = dataclasses.replace(VSR_TINY, frontend_widths=(4, 4, 8, 8), d_model=16, encoder_ffn=32, decoder_ffn=32,
                            encoder_layers=1, decoder_layers=1, heads=2)


def test_lm_travels_with_the_vsr_checkpoint_and_sets_the_beam_weight(tmp_path):
    tok = CharTokenizer()
    model = VSRModel(MICRO, tok).eval()
    assert model.beam_options(0) is None and model.beam_options(3).lm_weight == 0.0
    model.lm = NgramLM.estimate([tok.encode("bin blue at a one now")], tok.vocab_size, tok.sos_id, tok.eos_id,
                                options=NgramOptions(order=4, weight=0.7))
    assert model.beam_options(3) == BeamSearchOptions(beam_size=3, ctc_weight=MICRO.ctc_weight, lm_weight=0.7)
    assert model.beam_options(3, lm_weight=0.0).lm_weight == 0.0
    path = save_vsr(model, tmp_path / "vsr")
    assert (path / LM_FILE).is_file()
    loaded = load_vsr(path)
    assert loaded.lm is not None and loaded.lm.counts == model.lm.counts and loaded.lm.options.weight == 0.7
    result = loaded.transcribe(torch.zeros(12, 96, 96, dtype=torch.uint8), beam=loaded.beam_options(3))
    assert isinstance(result.text, str)
    other = NgramLM.estimate([[A, B]], V, E, E)
    with pytest.raises(ModelError, match="language model over 6 tokens"):
        check_lm(other, loaded, "lm.json")


def test_cli_estimates_a_model_and_transcribe_takes_it(tmp_path):
    from l2s.cli import main

    texts = tmp_path / "train.txt"
    texts.write_text("bin blue at a one now\nplace red by b two soon\n")
    out = tmp_path / "lm.json"
    runner = CliRunner()
    res = runner.invoke(main, ["lm", "estimate", str(texts), "-o", str(out), "--order", "5", "--weight", "0.3",
                               "--valid", str(texts)])
    assert res.exit_code == 0, res.output
    assert "perplexity per token" in res.output
    lm = load_lm(out)
    assert lm.options == NgramOptions(order=5, discount=0.75, weight=0.3) and lm.vocab_size == 31
    res = runner.invoke(main, ["lm", "estimate", str(tmp_path / "none.txt"), "-o", str(tmp_path / "x.json")])
    assert res.exit_code == 2 and "no such file" in res.output and not (tmp_path / "x.json").exists()
    res = runner.invoke(main, ["transcribe", str(tmp_path / "none.mp4"), "--lm", str(out)])
    assert res.exit_code == 2


def test_cli_tune_scores_every_setting_and_saves_the_best(tmp_path):
    from l2s.cli import main
    from tests._tiny_corpus import tiny_corpus

    small = tiny_corpus()
    valid = small.data / "valid.jsonl"
    res = CliRunner().invoke(main, ["lm", "tune", str(valid), "--train", str(small.data / "train.jsonl"),
                                    "--model", str(small.vsr), "--orders", "3,5", "--weights", "0,0.5",
                                    "--beam", "2", "--out", str(tmp_path / "tune.json"),
                                    "--save", str(tmp_path / "lm.json")])
    report = json.loads((tmp_path / "tune.json").read_text())
    settings = [(r["order"], r["weight"]) for r in report["results"]]
    assert settings == [(0, 0.0), (3, 0.5), (5, 0.5)]
    assert all(r["wer"] >= 0 and r["cer"] >= 0 for r in report["results"])
    best = min(report["results"], key=lambda r: (r["wer"], r["cer"]))
    assert report["best"] == best
    if best["order"]:  # an untrained reader: the language model may or may not win
        assert res.exit_code == 0, res.output
        assert load_lm(tmp_path / "lm.json").options.order == best["order"]
    else:
        assert res.exit_code == 2 and "nothing to save" in res.output
    for bad, message in (("x", "comma-separated"), ("-1", "weights numbers >= 0"), ("", "weights numbers >= 0")):
        res = CliRunner().invoke(main, ["lm", "tune", str(valid), "--train", str(valid), "--model", str(small.vsr),
                                        "--weights", bad])
        assert res.exit_code == 2 and message in res.output, (bad, res.output)
    res = CliRunner().invoke(main, ["lm", "tune", str(valid), "--train", str(valid), "--model", str(small.vsr),
                                    "--orders", "2.5"])
    assert res.exit_code == 2 and "integers >= 1" in res.output


def test_recipe_language_model_settings_are_checked_before_training():
    from l2s.errors import InputError
    from l2s.train.vsr import check_hparams

    model = {"arch": "auto-avsr", "preset": "tiny"}  # the recipe's model, checked first
    check_hparams({**model, "lm_order": 0, "lm_weight": 0.0})
    check_hparams({**model, "lm_order": 6, "lm_weight": 0.5, "lm_discount": 0.75})
    for bad in ({"lm_order": -1}, {"lm_order": 2.5}, {"lm_order": 6, "lm_weight": -1.0},
                {"lm_order": 6, "lm_discount": 1.5}):
        with pytest.raises(InputError, match="lm|order|weight|discount"):
            check_hparams({**model, **bad})


def test_the_distribution_cache_is_bounded_and_evicts_the_oldest():
    from l2s.models.vsr import ngram_lm

    vocab = ngram_lm._CACHE_FLOATS  # large vocabulary: the cache keeps its minimum of 64 contexts
    lm = NgramLM.estimate([[2, 3, 4]], vocab, vocab - 1, vocab - 1, options=NgramOptions(order=2))
    first = lm.distribution([2]).copy()
    for token in range(5, 205):
        lm.distribution([token])
    assert len(lm._cache) == 64 and (2,) not in lm._cache
    np.testing.assert_array_equal(lm.distribution([2]), first)  # recomputed the same
