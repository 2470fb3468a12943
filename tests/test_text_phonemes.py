"""Phoneme units, the inventory, and the offline espeak-ng G2P."""

from __future__ import annotations

import pytest

from l2s.errors import InputError, ModelError
from l2s.text.phonemes import (DEFAULT_INVENTORY, G2P, SIL_ID, SPECIALS, UNK, UNK_ID, PhonemeInventory,
                               split_units)


def test_units_drop_marks_split_diphthongs_and_keep_affricates():
    assert split_units("ˈaʊ") == ["a", "ʊ"]
    assert split_units("tʃ") == ["tʃ"] and split_units("dʒiː") == ["dʒ", "i"]
    assert split_units("ɔːɹ") == ["ɔ", "ɹ"] and split_units(" ") == []


def test_inventory_ids_aliases_and_round_trip(tmp_path):
    inv = DEFAULT_INVENTORY
    assert inv.symbols[:3] == SPECIALS and inv.id("<sil>") == SIL_ID
    assert inv.id("g") == inv.id("ɡ") != UNK_ID  # ASCII g is IPA ɡ
    assert inv.id("☃") == UNK_ID
    assert PhonemeInventory.load(inv.save(tmp_path / "phonemes.txt")) == inv
    with pytest.raises(ModelError):
        PhonemeInventory(("a", "b"))


def test_g2p_gives_units_per_word_in_context():
    g2p = G2P("en-us")
    units = g2p(["bin", "blue", "at", "n", "two", "now"])
    assert units[0] == ("b", "ɪ", "n") and units[1] == ("b", "l", "u")
    assert units[5] == ("n", "a", "ʊ")  # a diphthong is two units
    assert all(DEFAULT_INVENTORY.id(u) != UNK_ID for word in units for u in word)
    # espeak-ng reads "42" as two words: the words are then phonemised one by one
    assert len(g2p(["room", "42"])) == 2
    assert g2p([]) == []


def test_g2p_speaks_other_languages_and_refuses_unknown_ones():
    assert G2P("fr-fr")(["bonjour"])[0][0] == "b"
    with pytest.raises(InputError, match="no such voice"):
        G2P("xx-nowhere")


def test_every_word_gets_a_unit():
    assert G2P()(["--"]) == [(UNK,)]
