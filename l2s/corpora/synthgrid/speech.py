"""Sentence audio: word banks per base voice, WORLD-transformed and joined per clip.

Every word of the grammar is synthesised once per base voice (an engine and
its voice), cut out of a grammar sentence that holds it in its slot (so it has
connected-speech form and slot prosody), and analysed with WORLD. A clip joins
its six words' parameters with short pauses, stretches each word by the
speaker's rate (with a little per-word jitter), scales F0 by the speaker's
factor, warps the envelope by the speaker's vocal-tract factor, and resynthesises
once at 16 kHz. Speed comes from the bank: a clip costs one WORLD synthesis.
Splicing costs intelligibility (see the corpus README for the measured cost). Phoneme and word
intervals follow every step exactly, so the alignment is the truth of the audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np

from l2s.config import SAMPLES_PER_VIDEO_FRAME, SAMPLE_RATE
from l2s.corpora.synthgrid import grammar
from l2s.corpora.synthgrid import voice as world
from l2s.corpora.synthgrid.speakers import Speaker
from l2s.corpora.synthgrid.tts import PhonemeInterval

# Both engines speak GRID sentences fast; slower speech is more intelligible (Whisper tiny.en WER
# of a Piper speaker fell from 42 % to 36 % at 1.3x), before each speaker's own rate.
_ENGINE_STRETCH = {"piper": 1.25, "espeak": 1.15}
_PAUSE_S = (0.0, 0.06)  # between words
_EDGE_S = (0.25, 0.45)  # before the first and after the last word


@dataclass(frozen=True)
class BankWord:
    """A word of a base voice: its phoneme intervals (s) and its WORLD parameters."""

    phonemes: Tuple[PhonemeInterval, ...]
    world: world.WorldParams


@dataclass(frozen=True)
class SentenceAudio:
    """A clip's speech.

    Attributes:
        wav: (N,) float32 at the contract rate, N a whole number of video frames.
        words: (word, start s, end s).
        phonemes: (unit phoneme, start s, end s).
    """

    wav: np.ndarray
    words: Tuple[Tuple[str, float, float], ...]
    phonemes: Tuple[PhonemeInterval, ...]


# voice key -> word -> BankWord; filled lazily, or in bulk before forking workers.
_BANKS: Dict[str, Dict[str, BankWord]] = {}


def make_engine(voice_key: str):
    engine, voice = voice_key.split(":", 1)
    if engine == "piper":
        from l2s.corpora.synthgrid.tts_piper import PiperEngine

        return PiperEngine(voice)
    if engine == "espeak":
        from l2s.corpora.synthgrid.tts_espeak import EspeakEngine

        return EspeakEngine(voice)
    raise ValueError(f"unknown engine {engine!r}")


def carrier_sentence(word: str) -> Tuple[str, ...]:
    """The grammar sentence a word is cut out of: sentence ``i`` of a Latin square over the slots.

    A word with index ``i`` in its slot sits in sentence ``i``, which takes word
    ``i mod len(slot)`` of every slot. The carrier depends on the word alone (not on
    which other words a corpus needs), so a word sounds the same in every corpus.
    """
    for slot in grammar.SLOTS:
        if word in slot:
            i = slot.index(word)
            return tuple(s[i % len(s)] for s in grammar.SLOTS)
    raise ValueError(f"{word!r} is not in the GRID grammar")


def build_bank(voice_key: str, words: Iterable[str]) -> Dict[str, BankWord]:
    """Synthesise and analyse ``words`` with one base voice, each cut out of a carrier sentence."""
    engine = make_engine(voice_key)
    wanted = set(words)
    bank: Dict[str, BankWord] = {}
    for sentence in sorted({carrier_sentence(w) for w in wanted}):
        try:
            audios = engine.synthesize_sentence(sentence)
        except RuntimeError:  # the engine split the sentence otherwise: fall back to isolated words
            audios = [engine.synthesize_word(w) for w in sentence]
        for word, audio in zip(sentence, audios):
            if word in wanted and word not in bank:
                bank[word] = BankWord(phonemes=audio.phonemes, world=world.analyse(audio.wav))
    return bank


def install_banks(banks: Dict[str, Dict[str, BankWord]]) -> None:
    """Make prebuilt banks available to :func:`bank_word` (e.g. before forking workers)."""
    for key, bank in banks.items():
        _BANKS.setdefault(key, {}).update(bank)


def bank_word(voice_key: str, word: str) -> BankWord:
    bank = _BANKS.setdefault(voice_key, {})
    if word not in bank:
        bank.update(build_bank(voice_key, [word]))
    return bank[word]


def speak(speaker: Speaker, words: Sequence[str], rng: np.random.Generator) -> SentenceAudio:
    """The speech of one clip: ``words`` said by ``speaker`` with per-clip prosody drawn from ``rng``."""
    fr = world.FRAME_RATE
    parts: List[world.WorldParams] = []
    word_spans: List[Tuple[str, float, float]] = []
    phonemes: List[PhonemeInterval] = []
    bins = None
    pos = int(round(rng.uniform(*_EDGE_S) * fr))  # leading silence, in WORLD frames
    lead = pos
    n = len(words)
    for k, word in enumerate(words):
        entry = bank_word(speaker.voice_key, word)
        bins = entry.world.sp.shape[1]
        factor = _ENGINE_STRETCH[speaker.engine] / speaker.rate * float(np.exp(rng.normal(0, 0.04)))
        p = world.stretch(entry.world, factor)
        # The carrier sentence gave each word the prosody of its slot; add a little per-word jitter.
        contour = speaker.f0_scale * float(np.exp(rng.normal(0, 0.03)))
        p = world.scale_f0(p, contour)
        t0 = pos / fr
        parts.append(p)
        word_spans.append((word, t0, t0 + p.num_frames / fr))
        phonemes.extend((u, t0 + s * factor, t0 + e * factor) for u, s, e in entry.phonemes)
        pos += p.num_frames
        if k < n - 1:
            gap = int(round(rng.uniform(*_PAUSE_S) * fr))
            parts.append(world.silence(gap, bins))
            pos += gap
    tail = int(round(rng.uniform(*_EDGE_S) * fr))
    params = world.concatenate([world.silence(lead, bins)] + parts + [world.silence(tail, bins)])
    params = world.warp_frequency(params, speaker.warp)
    wav = world.normalize_loudness(world.synthesize(params))
    frames = -(-len(wav) // SAMPLES_PER_VIDEO_FRAME)
    wav = np.pad(wav, (0, frames * SAMPLES_PER_VIDEO_FRAME - len(wav)))
    end = len(wav) / SAMPLE_RATE
    clamp = lambda t: float(min(max(t, 0.0), end))  # noqa: E731
    return SentenceAudio(
        wav=wav,
        words=tuple((w, clamp(s), clamp(e)) for w, s, e in word_spans),
        phonemes=tuple((u, clamp(s), clamp(e)) for u, s, e in phonemes),
    )
