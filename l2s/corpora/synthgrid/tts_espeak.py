"""espeak-ng speech through its C library (ctypes), with phoneme events in IPA.

The library is the one bundled in ``piper-tts`` (``piper/espeakbridge.so`` links
espeak-ng statically and exports its C API, with its data folder beside it), so
no system package is needed; a system ``libespeak-ng`` is the fallback. Voices are
espeak-ng's English accents combined with its voice variants (``en-us+m3``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from l2s.corpora.synthgrid.tts import SPOKEN_FORMS, WordAudio, split_sentence, word_from_segments
from l2s.errors import DependencyError

#: accents x variants the speaker table draws from (all in espeak-ng's data)
ACCENTS = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland")
VARIANTS = ("m1", "m2", "m3", "m4", "m7", "f1", "f2", "f3", "f4", "f5")

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_PHONEME_IPA = 0x0002
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_PARAM_RATE = 1
_WORDS_PER_MINUTE = 150  # a little slower than espeak's 175: clearer isolated words


class _Event(ctypes.Structure):
    """``espeak_EVENT`` (speak_lib.h)."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


def _library_candidates() -> List[Tuple[str, Optional[str]]]:
    """(shared library, data folder or None for the library's default)."""
    out: List[Tuple[str, Optional[str]]] = []
    try:
        import piper

        root = Path(piper.__file__).parent
        if (root / "espeakbridge.so").exists() and (root / "espeak-ng-data").is_dir():
            out.append((str(root / "espeakbridge.so"), str(root / "espeak-ng-data")))
    except ImportError:
        pass
    system = ctypes.util.find_library("espeak-ng")
    if system:
        out.append((system, None))
    return out


@lru_cache(maxsize=1)
def _library() -> Tuple[ctypes.CDLL, Optional[str]]:
    for path, data in _library_candidates():
        try:
            lib = ctypes.CDLL(path)
            lib.espeak_Initialize  # noqa: B018 - the symbol must be exported
            return lib, data
        except (OSError, AttributeError):
            continue
    raise DependencyError("the espeak engine needs espeak-ng: install `piper-tts` (bundles it) "
                          "or the system library (apt-get install libespeak-ng1 espeak-ng-data)")


def available() -> bool:
    """True when an espeak-ng library can be loaded."""
    try:
        _library()
        return True
    except DependencyError:
        return False


class EspeakEngine:
    """Words spoken by one espeak-ng voice, e.g. ``en-gb-scotland+f2``."""

    name = "espeak"

    def __init__(self, voice: str) -> None:
        self.voice = voice
        self._lib, self._data = _library()
        self._chunks: List[np.ndarray] = []
        self._events: List[Tuple[str, int]] = []
        self._word_starts: List[int] = []
        # Keep a reference: espeak calls it back from C.
        self._callback = _CALLBACK(self._on_audio)

    def _on_audio(self, wav, num_samples, events) -> int:
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (num_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            if events[i].type == _EVENT_PHONEME:
                self._events.append((events[i].id.decode("utf-8", "replace"), events[i].sample))
            elif events[i].type == _EVENT_WORD:
                self._word_starts.append(events[i].sample)
            i += 1
        return 0

    def _prepare(self) -> int:
        # (Re)initialise on every call: Piper shares this library in-process and
        # initialises it without phoneme events.
        data = self._data.encode() if self._data else None
        rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, _INIT_PHONEME_EVENTS | _INIT_PHONEME_IPA)
        if rate <= 0:
            raise DependencyError("espeak-ng failed to initialise")
        self._lib.espeak_SetSynthCallback(self._callback)
        if self._lib.espeak_SetVoiceByName(self.voice.encode()) != 0:
            raise ValueError(f"unknown espeak-ng voice {self.voice!r}")
        self._lib.espeak_SetParameter(_PARAM_RATE, _WORDS_PER_MINUTE, 0)
        return rate

    def _speak(self, text: str) -> Tuple[np.ndarray, int, List[Tuple[str, int, int]]]:
        """(audio, rate, phoneme segments) of ``text``; word starts are left in ``self._word_starts``."""
        rate = self._prepare()
        self._chunks, self._events, self._word_starts = [], [], []
        data = text.encode()
        self._lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, _CHARS_UTF8, None, None)
        self._lib.espeak_Synchronize()
        if not self._chunks:
            raise RuntimeError(f"espeak-ng gave no audio for {text!r}")
        wav = np.concatenate(self._chunks).astype(np.float32) / 32768.0
        ev = self._events + [("", len(wav))]
        return wav, rate, [(p, s, ev[i + 1][1]) for i, (p, s) in enumerate(ev[:-1])]

    def synthesize_word(self, word: str) -> WordAudio:
        wav, rate, segments = self._speak(SPOKEN_FORMS.get(word, word))
        return word_from_segments(wav, rate, segments)

    def synthesize_sentence(self, words: Sequence[str]) -> List[WordAudio]:
        """Say ``words`` as one sentence and cut it into words where espeak-ng's word events start."""
        wav, rate, segments = self._speak(" ".join(SPOKEN_FORMS.get(w, w) for w in words))
        starts = self._word_starts
        if len(starts) != len(words):
            raise RuntimeError(f"espeak-ng split {' '.join(words)!r} into {len(starts)} words")
        return split_sentence(wav, rate, segments, [0] + starts[1:] + [len(wav)])
