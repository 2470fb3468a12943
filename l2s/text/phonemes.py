"""Phonemes: the one inventory l2s uses, and an offline grapheme-to-phoneme converter (G2P).

G2P is ``phonemizer`` on its espeak-ng backend, with the espeak-ng library and voice data of the
``espeakng-loader`` wheel: no system package and no download at run time, and espeak-ng's voices
cover about a hundred languages. Its IPA output is cut into *units*: stress, length and tie marks
dropped, diphthongs split into their two vowels, the affricates ``tʃ`` and ``dʒ`` kept whole. The
SynthGRID corpus writes its ``align.json`` phonemes in the same units (it imports
:func:`split_units`), so its phoneme intervals are training targets without a mapping table.

The :class:`PhonemeInventory` numbers the units. Ids 0-2 are special: ``<blank>`` (padding, and the
blank of a phoneme CTC head), ``<sil>`` (no word: pauses), ``<unk>`` (a unit outside the table). The
default table holds the IPA consonants and vowels espeak-ng writes; a model stores the table it was
trained with (:meth:`PhonemeInventory.save`), so an id always means the same phoneme for it.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Mapping, Sequence, Tuple, Union

from l2s.errors import DependencyError, InputError, ModelError

BLANK = "<blank>"
SIL = "<sil>"
UNK = "<unk>"
SPECIALS = (BLANK, SIL, UNK)
BLANK_ID, SIL_ID, UNK_ID = range(len(SPECIALS))
INVENTORY_FILE = "phonemes.txt"
DEFAULT_LANGUAGE = "en-us"

#: units of more than one letter (everything else is one letter)
AFFRICATES = ("tʃ", "dʒ")
# Marks with no articulation of their own: stress, length, tie bars, syllabicity, nasalisation,
# palatalisation (which Piper writes after some /i/) and the apostrophe.
_DROP = set("ˈˌːˑ͡‿̩̯̃'ʲ")
_SILENCE = set(" _^$.,!?;:—-")

#: IPA consonants then vowels (espeak-ng's symbols among them); ``g`` is an alias of ``ɡ``
CONSONANTS = ("p b t d ʈ ɖ c ɟ k ɡ q ɢ ʔ m ɱ n ɳ ɲ ŋ ɴ ʙ r ʀ ⱱ ɾ ɽ ɸ β f v θ ð s z ʃ ʒ ʂ ʐ ɕ ʑ ç ʝ x ɣ χ ʁ "
              "ħ ʕ h ɦ ɬ ɮ ʋ ɹ ɻ j ɰ l ɭ ʎ ʟ ɫ w ʍ ɥ tʃ dʒ")
VOWELS = "i y ɨ ʉ ɯ u ɪ ʏ ʊ e ø ɘ ɵ ɤ o ə ɛ œ ɜ ɞ ʌ ɔ æ ɐ a ɶ ɑ ɒ ɚ ɝ ᵻ"
ALIASES: Mapping[str, str] = {"g": "ɡ"}


def split_units(phoneme: str) -> List[str]:
    """Units of one espeak-ng phoneme string: ``'ˈaʊ'`` -> ``['a', 'ʊ']``, ``'tʃ'`` -> ``['tʃ']``.

    Silence symbols give ``[]``; letters outside the inventory are kept (they look up as ``<unk>``).
    """
    s = "".join(c for c in unicodedata.normalize("NFD", phoneme) if c not in _DROP)
    units: List[str] = []
    i = 0
    while i < len(s):
        for m in AFFRICATES:
            if s.startswith(m, i):
                units.append(m)
                i += len(m)
                break
        else:
            if s[i] not in _SILENCE and not unicodedata.combining(s[i]):
                units.append(s[i])
            i += 1
    return units


@dataclass(frozen=True)
class PhonemeInventory:
    """Phoneme units <-> ids.

    Attributes:
        symbols: the units in id order, starting with :data:`SPECIALS`.
    """

    symbols: Tuple[str, ...] = SPECIALS + tuple(CONSONANTS.split()) + tuple(VOWELS.split())
    _index: Dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if tuple(self.symbols[:len(SPECIALS)]) != SPECIALS:
            raise ModelError(f"a phoneme inventory must start with {', '.join(SPECIALS)}")
        if len(set(self.symbols)) != len(self.symbols):
            raise ModelError("a phoneme inventory lists a symbol twice")
        object.__setattr__(self, "_index", {s: i for i, s in enumerate(self.symbols)})

    def __len__(self) -> int:
        return len(self.symbols)

    def id(self, unit: str) -> int:
        """The id of one unit (``<unk>`` for a unit outside the table)."""
        return self._index.get(ALIASES.get(unit, unit), UNK_ID)

    def ids(self, units: Sequence[str]) -> List[int]:
        return [self.id(u) for u in units]

    def save(self, path: Union[str, Path]) -> Path:
        """One symbol per line (``phonemes.txt``), to store beside a model's weights."""
        path = Path(path)
        path.write_text("".join(s + "\n" for s in self.symbols), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Union[str, Path]) -> "PhonemeInventory":
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"{path}: no phoneme inventory")
        return cls(tuple(line for line in path.read_text(encoding="utf-8").splitlines() if line))


DEFAULT_INVENTORY = PhonemeInventory()


@lru_cache(maxsize=None)
def _backend(language: str):
    """A phonemizer espeak-ng backend on the wheel's library and data (made once per language)."""
    try:
        import espeakng_loader
        from phonemizer.backend import EspeakBackend
        from phonemizer.backend.espeak.wrapper import EspeakWrapper
    except ImportError as exc:  # pragma: no cover - core dependencies
        raise DependencyError("phonemes need `phonemizer` and `espeakng-loader`") from exc
    EspeakWrapper.set_library(espeakng_loader.get_library_path())
    EspeakWrapper.set_data_path(espeakng_loader.get_data_path())
    if language not in EspeakBackend.supported_languages():
        raise InputError(f"language {language!r}: espeak-ng has no such voice (e.g. en-us, en-gb, fr-fr, de, es)")
    quiet = logging.getLogger("l2s.phonemizer")
    quiet.setLevel(logging.ERROR)  # phonemizer warns on every word-count mismatch, which we handle
    return EspeakBackend(language, preserve_punctuation=False, with_stress=False, logger=quiet)


class G2P:
    """Words -> phoneme units, offline, with espeak-ng.

    Args:
        language: an espeak-ng voice (``en-us``, ``en-gb``, ``fr-fr``, ``de``...).
    """

    def __init__(self, language: str = DEFAULT_LANGUAGE) -> None:
        self.language = language
        self._backend = _backend(language)

    def __call__(self, words: Sequence[str]) -> List[Tuple[str, ...]]:
        """The units of each word, in context (a whole sentence is phonemised at once, so that
        connected speech such as a flapped /t/ shows). A word espeak-ng gives nothing for (a lone
        symbol, say) gets ``(<unk>,)``, so every word has at least one unit.
        """
        from phonemizer.separator import Separator

        words = [w for w in words]
        if not words:
            return []
        sep = Separator(phone=" ", word="|", syllable="")
        out = self._backend.phonemize([" ".join(words)], separator=sep, strip=True)[0].split("|")
        if len(out) != len(words):
            # espeak-ng split or joined words (numbers, abbreviations): phonemise each word alone
            out = self._backend.phonemize(list(words), separator=sep, strip=True)
            out = [o.replace("|", " ") for o in out]
        return [tuple(u for phone in o.split() for u in split_units(phone)) or (UNK,) for o in out]
