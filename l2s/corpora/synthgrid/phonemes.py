"""Phoneme -> viseme table: what the lips can show of a phoneme.

Both engines report espeak-ng IPA (Piper phonemises with espeak-ng; the espeak
engine asks for IPA phoneme events). A phoneme string such as ``ˈaʊ`` or ``tʃ``
is split into units (stress and length marks dropped, diphthongs into their two
vowels, affricates kept whole) and each unit maps to one of 13 viseme classes.
Phonemes of one class share one mouth target, so they render identically: the
corpus keeps the ambiguity of real lip reading (p/b/m, t/d/n/s/z/l, k/g/ŋ/h...).

=====  ===============  ==========================================  =================================
 id    class            phonemes (IPA)                              mouth
=====  ===============  ==========================================  =================================
 0     sil              pause, silence                              relaxed, lips lightly together
 1     bilabial         p b m                                       lips closed (dominant)
 2     labiodental      f v                                         lower lip to upper teeth
 3     dental           θ ð                                         narrow opening, tongue tip shows
 4     alveolar         t d n s z l ɾ ɫ                             narrow opening, teeth show
 5     postalveolar     ʃ ʒ tʃ dʒ                                   protruded, teeth show
 6     velar            k g ɡ ŋ h x ʔ                               medium opening, takes context
 7     round-approx     w ʍ ɹ r                                     small rounded opening
 8     spread           i ɪ e j ᵻ y-glide                           spread lips, small opening
 9     mid              ɛ ə ʌ ɜ ɚ ɝ ɐ ɘ                             neutral, medium opening
 10    open             a æ ɑ ɶ                                     wide jaw opening
 11    round-close      u ʊ ʉ ɵ y ʏ                                 rounded, small opening
 12    round-open       o ɔ ɒ                                       rounded, medium opening
=====  ===============  ==========================================  =================================
"""

from __future__ import annotations

from typing import Dict, Tuple

from l2s.text.phonemes import split_units  # noqa: F401  (the corpus writes its phonemes in these units)

VISEMES: Tuple[str, ...] = (
    "sil", "bilabial", "labiodental", "dental", "alveolar", "postalveolar", "velar",
    "round-approx", "spread", "mid", "open", "round-close", "round-open",
)
SIL = 0

_CLASS_PHONEMES: Dict[str, str] = {
    "bilabial": "p b m",
    "labiodental": "f v",
    "dental": "θ ð",
    "alveolar": "t d n s z l ɾ ɫ",
    "postalveolar": "ʃ ʒ tʃ dʒ",
    "velar": "k g ɡ ŋ h x ʔ ç",
    "round-approx": "w ʍ ɹ r",
    "spread": "i ɪ e j ᵻ ɨ",
    "mid": "ɛ ə ʌ ɜ ɚ ɝ ɐ ɘ",
    "open": "a æ ɑ ɶ",
    "round-close": "u ʊ ʉ ɵ y ʏ",
    "round-open": "o ɔ ɒ",
}

#: unit phoneme -> viseme id
PHONEME_TO_VISEME: Dict[str, int] = {
    p: VISEMES.index(cls) for cls, phones in _CLASS_PHONEMES.items() for p in phones.split()
}


def viseme_of(unit: str) -> int:
    """Viseme id of one unit; an unknown symbol is treated as a neutral (``mid``) vowel."""
    return PHONEME_TO_VISEME.get(unit, VISEMES.index("mid"))


def is_silence(phoneme: str) -> bool:
    return not split_units(phoneme)
