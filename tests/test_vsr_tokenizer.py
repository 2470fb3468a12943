"""Tokenizers: Auto-AVSR's SentencePiece + units mapping (tokens.json examples) and the character set."""

from __future__ import annotations

import json

import pytest

from l2s.models.vsr import VSR_TINY
from l2s.errors import ModelError
from l2s.text import CharTokenizer, SentencePieceTokenizer, load_tokenizer, tokenizer_files


@pytest.fixture(scope="module")
def spm_setup(tmp_path_factory):
    from tests.conftest import fixture_dir

    root = fixture_dir("auto_avsr")
    tokens = json.loads((root / "tokens.json").read_text())
    units = tmp_path_factory.mktemp("units") / "units.txt"
    units.write_text("".join(f"{t} {i}\n" for i, t in enumerate(tokens["token_list"][1:-1], start=1)),
                     encoding="utf-8")
    return root / "unigram5000.model", units, tokens


def test_sentencepiece_matches_auto_avsr_text_transform(spm_setup):
    model, units, tokens = spm_setup
    tok = SentencePieceTokenizer(model, units, upper_case_model=False)
    assert tok.token_list == tokens["token_list"]
    assert (tok.vocab_size, tok.blank_id, tok.unk_id, tok.sos_id, tok.eos_id) == (
        tokens["vocab_size_odim"], tokens["blank_id"], tokens["unk_id"], tokens["sos_id"], tokens["eos_id"])
    for example in tokens["examples"]:
        assert tok.pieces(example["text"]) == example["pieces"]
        assert tok.encode(example["text"]) == example["token_ids"]
        assert tok.decode(example["token_ids"] + [tok.eos_id]) == example["post_process"]


def test_sentencepiece_speaks_the_lower_case_contract(spm_setup):
    model, units, tokens = spm_setup
    tok = SentencePieceTokenizer(model, units)
    example = tokens["examples"][2]  # "I DON'T KNOW WHAT YOU'RE TALKING ABOUT"
    assert tok.encode(example["text"].lower()) == example["token_ids"]
    assert tok.decode(example["token_ids"]) == example["text"].lower()
    files = tokenizer_files(tok)
    again = load_tokenizer("sentencepiece", files=files)
    assert again is not None and again.token_list == tok.token_list


def test_bad_units_file(tmp_path, spm_setup):
    model, _, _ = spm_setup
    bad = tmp_path / "units.txt"
    bad.write_text("<unk> 1\nA 3\n")
    with pytest.raises(ModelError, match="expected 'TOKEN 2'"):
        SentencePieceTokenizer(model, bad)


def test_char_tokenizer():
    tok = CharTokenizer()
    assert tok.vocab_size == VSR_TINY.vocab_size
    ids = tok.encode("Bin  BLUE at f two now")
    assert tok.blank_id not in ids and tok.eos_id not in ids and tok.unk_id not in ids
    assert tok.decode(ids) == "bin blue at f two now"
    assert tok.decode([tok.blank_id] + ids + [tok.eos_id]) == "bin blue at f two now"
    assert tok.encode("a1b") == [tok.encode("a")[0], tok.unk_id, tok.encode("b")[0]]
    assert load_tokenizer("char").token_list == tok.token_list
    assert load_tokenizer("sentencepiece", model_dir="/nonexistent") is None
    with pytest.raises(ModelError):
        load_tokenizer("bpe")
