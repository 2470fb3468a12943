"""The Aligner: text -> words and phonemes on a clip's frames, for character and SentencePiece lip readers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from l2s.align import Aligner
from l2s.align.aligner import normalise_text, word_groups
from l2s.models.aligner.model import AlignerConfig, AlignerModel, load_aligner, save_aligner
from l2s.models.aligner.durations import DurationConfig
from l2s.models.aligner.timing import TimingConfig, frame_targets
from l2s.errors import InputError, ModelError
from l2s.models.vsr import VSR_TINY, build_vsr
from l2s.text.phonemes import DEFAULT_INVENTORY
from l2s.text.tokenizer import CharTokenizer
from tests.conftest import fixture_dir


def _check_spans(alignment, words):
    """Monotonic, non-overlapping word spans that cover the text; phonemes tile each word."""
    assert [w.word for w in alignment.words] == words
    for a, b in zip(alignment.words, alignment.words[1:]):
        assert a.start < a.end <= b.start < b.end
    assert 0 <= alignment.words[0].start and alignment.words[-1].end <= alignment.duration + 1e-9
    for k, w in enumerate(alignment.words):
        phones = alignment.word_phonemes(k)
        assert phones and phones[0].start == pytest.approx(w.start) and phones[-1].end == pytest.approx(w.end)
        assert all(p.end == pytest.approx(q.start) for p, q in zip(phones, phones[1:]))
        assert 0 < w.confidence <= 1


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    vsr = build_vsr(VSR_TINY, CharTokenizer()).eval()
    config = AlignerConfig(timing=TimingConfig(vocab_size=31, feature_dim=vsr.feature_dim, hidden=16),
                           durations=DurationConfig(num_phonemes=len(DEFAULT_INVENTORY), feature_dim=vsr.feature_dim))
    model = AlignerModel(config, DEFAULT_INVENTORY).eval()
    model.durations.mean_duration.uniform_(0.05, 0.15)
    return vsr, model


def test_words_from_pieces():
    assert word_groups(list("ab cd")) == [[0, 1], [3, 4]]
    assert word_groups(["▁THE", "▁FO", "X", "▁", "4", "2"]) == [[0], [1, 2], [3, 4, 5]]
    assert normalise_text("  Hello, World!  It's 42. ") == "hello world it's 42"


def test_align_places_words_and_phonemes(tiny):
    vsr, model = tiny
    features = torch.randn(40, vsr.feature_dim)
    for aligner in (Aligner(vsr), Aligner(vsr, model), Aligner(vsr, model, shares="mean")):
        alignment = aligner.align(features, "Bin blue, at F two now!")
        _check_spans(alignment, ["bin", "blue", "at", "f", "two", "now"])
        assert alignment.duration == 40 / 25 and alignment.language == "en-us"
        assert [p.phoneme for p in alignment.word_phonemes(1)] == ["b", "l", "u"]
    assert Aligner(vsr).align(features, "   ", allow_empty=True).words == ()
    with pytest.raises(InputError, match="no word"):
        Aligner(vsr).align(features, "")
    with pytest.raises(InputError, match="does not fit"):
        Aligner(vsr).align(features[:10], "bin blue at f two now")


def test_timing_head_targets_and_checkpoint(tiny, tmp_path):
    vsr, model = tiny
    target = frame_targets(12, [(2, 5, [5, 6]), (7, 10, [7])], blank=0, separator=2)
    assert target.tolist() == [0, 0, 5, 5, 6, 2, 2, 7, 7, 7, 0, 0]
    loaded = load_aligner(save_aligner(model, tmp_path / "aligner"))
    assert loaded.config == model.config and loaded.inventory == DEFAULT_INVENTORY
    assert torch.equal(loaded.durations.mean_duration, model.durations.mean_duration)
    features = torch.randn(30, vsr.feature_dim)
    a, b = Aligner(vsr, model).align(features, "set red"), Aligner(vsr, loaded).align(features, "set red")
    assert a == b
    other = build_vsr(VSR_TINY.__class__(**{**VSR_TINY.__dict__, "vocab_size": 40}))
    other.tokenizer = CharTokenizer()
    with pytest.raises(ModelError, match="not trained together"):
        Aligner(other, model)


def test_auto_avsr_fixture_model_aligns_its_reference_transcript(tmp_path):
    """The Auto-AVSR fixture model (SentencePiece pieces): monotonic, non-overlapping word spans over the text."""
    from click.testing import CliRunner
    from safetensors.torch import load_file

    from l2s.cli import main
    from l2s.models.vsr import load_vsr

    root = fixture_dir("auto_avsr")
    tokens = json.loads((root / "tokens.json").read_text())
    example = next(e for e in tokens["examples"] if e["text"].startswith("THE QUICK"))
    # the fixture model has 72 outputs: a units file of <unk>, the example's pieces and fillers
    pieces = list(dict.fromkeys(example["pieces"]))
    fill = [t for t in tokens["token_list"][2:] if t not in pieces][:70 - 1 - len(pieces)]
    units = ["<unk>", *pieces, *fill]
    (tmp_path / "units.txt").write_text("".join(f"{u} {i}\n" for i, u in enumerate(units, start=1)))
    out = tmp_path / "vsr-small"
    result = CliRunner().invoke(main, ["convert", "auto-avsr", str(root / "small.safetensors"), str(out), "--spm",
                                       str(root / "unigram5000.model"), "--units", str(tmp_path / "units.txt")])
    assert result.exit_code == 0, result.output
    model = load_vsr(out)
    assert model.tokenizer.vocab_size == 72 and model.tokenizer.pieces(example["text"]) == example["pieces"]
    video = load_file(str(root / "small.io.safetensors"))["input.video"][:1]
    with torch.no_grad():
        features = model.encode_video(video)[0]
    alignment = Aligner(model).align(features, example["text"])
    words = example["text"].lower().split()
    _check_spans(alignment, words)
    assert np.all(np.diff([w.start for w in alignment.words]) > 0)
