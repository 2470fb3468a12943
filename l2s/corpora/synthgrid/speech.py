"""Sentence audio: whole Piper sentences with a tape-speed transform, or espeak-ng word banks through WORLD.

Piper speakers (most of them, and every held-out one) say each sentence whole,
then get a tape-speed transform: the audio is read at ``tape`` times its rate,
which scales F0 and formants together (a smaller or bigger vocal apparatus) and
costs no vocoder resynthesis. Piper's duration scale is set so that the result
has the speaker's speaking rate. Measured with Whisper tiny.en on 40 test
sentences: raw Piper 16 % WER, tape 0.95-1.2 14-18 %, WORLD resynthesis of the
same audio 22-30 % (the reason WORLD is not used for Piper).

espeak-ng speakers go through word banks and WORLD: every word of the grammar is
synthesised once per base voice, cut out of a grammar sentence that holds it in
its slot (so it has connected-speech form and slot prosody), and analysed with
WORLD. A clip joins its six words' parameters with short pauses, stretches each
word by the speaker's rate (with a little per-word jitter), scales F0 by the
speaker's factor, warps the envelope by the speaker's vocal-tract factor, and
resynthesises once at 16 kHz. Splicing and espeak's voices cost intelligibility
(see the corpus README), so espeak speakers are a minority of the seen speakers
only. Phoneme and word intervals follow every step exactly, so the alignment is
the truth of the audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np

from scipy.signal import resample_poly

from l2s.config import SAMPLES_PER_VIDEO_FRAME, SAMPLE_RATE
from l2s.corpora.synthgrid import grammar
from l2s.corpora.synthgrid import voice as world
from l2s.corpora.synthgrid.speakers import Speaker
from l2s.corpora.synthgrid.tts import PhonemeInterval

# espeak-ng speaks GRID sentences fast; slower speech is more intelligible, before each speaker's own rate.
_ESPEAK_STRETCH = 1.15
_PAUSE_S = (0.0, 0.06)  # between words
_EDGE_S = (0.25, 0.45)  # before the first and after the last word
_PIPER_EDGE_S = (0.1, 0.3)  # added to the silence Piper leaves at either end of a sentence
_PIPER_PAUSE_S = (0.04, 0.12)  # opened between the words of a Piper sentence
_FADE = SAMPLE_RATE // 200  # 5 ms fades at the cuts between words
_TAPE_GRID_HZ = 50  # tape rates are rounded to this grid, keeping the resampling ratio small


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
    """The engine behind a word bank: espeak-ng (Piper speakers say whole sentences and have no bank)."""
    engine, voice = voice_key.split(":", 1)
    if engine == "espeak":
        from l2s.corpora.synthgrid.tts_espeak import EspeakEngine

        return EspeakEngine(voice)
    raise ValueError(f"no word bank for engine {engine!r}: only espeak-ng speakers are spliced from banks")


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
    if speaker.engine == "piper":
        return _speak_whole(speaker, words, rng)
    return _speak_spliced(speaker, words, rng)


def _finish(wav: np.ndarray, words, phonemes) -> SentenceAudio:
    """Loudness-normalise, pad to whole video frames, clamp intervals to the audio."""
    wav = world.normalize_loudness(wav)
    frames = -(-len(wav) // SAMPLES_PER_VIDEO_FRAME)
    wav = np.pad(wav, (0, frames * SAMPLES_PER_VIDEO_FRAME - len(wav)))
    end = len(wav) / SAMPLE_RATE
    clamp = lambda t: float(min(max(t, 0.0), end))  # noqa: E731
    return SentenceAudio(
        wav=wav,
        words=tuple((w, clamp(s), clamp(e)) for w, s, e in words),
        phonemes=tuple((u, clamp(s), clamp(e)) for u, s, e in phonemes),
    )


def _speak_whole(speaker: Speaker, words: Sequence[str], rng: np.random.Generator) -> SentenceAudio:
    """Piper says the sentence whole; a tape-speed change by ``speaker.f0_scale`` (== ``warp``) makes the voice."""
    from l2s.corpora.synthgrid.tts_piper import PiperEngine

    tape = speaker.f0_scale * float(np.exp(rng.normal(0, 0.01)))
    length_scale = tape / speaker.rate * float(np.exp(rng.normal(0, 0.04)))
    utt = PiperEngine(speaker.voice).synthesize_utterance(words, length_scale)
    # Reading audio made at rate r as if it were at r * tape: resample from r * tape to the contract rate.
    src = int(round(utt.sample_rate * tape / _TAPE_GRID_HZ)) * _TAPE_GRID_HZ
    g = int(np.gcd(src, SAMPLE_RATE))
    wav = resample_poly(utt.wav.astype(np.float64), SAMPLE_RATE // g, src // g).astype(np.float32)
    k = utt.sample_rate / src  # time scale of the tape change
    # Cut at the word boundaries (the middles of Piper's separators) and open short pauses there,
    # faded over a few ms so that no cut clicks: GRID talkers leave such gaps between words.
    bounds = [0] + [int(round(e * k * SAMPLE_RATE)) for _, _, e in utt.words[:-1]] + [len(wav)]
    fade = np.linspace(1.0, 0.0, _FADE, dtype=np.float32)
    pieces = [np.zeros(int(round(rng.uniform(*_PIPER_EDGE_S) * SAMPLE_RATE)), np.float32)]
    shifts = []  # seconds each word moved by
    pos = len(pieces[0])
    for j, (b0, b1) in enumerate(zip(bounds[:-1], bounds[1:])):
        piece = wav[b0:b1].copy()
        if j > 0:
            piece[:_FADE] *= fade[::-1][:len(piece)]
        if j < len(bounds) - 2:
            piece[-_FADE:] *= fade[-len(piece):]
        shifts.append((pos - b0) / SAMPLE_RATE)
        pieces.append(piece)
        pos += len(piece)
        gap = int(round(rng.uniform(*_PIPER_PAUSE_S) * SAMPLE_RATE)) if j < len(bounds) - 2 else \
            int(round(rng.uniform(*_PIPER_EDGE_S) * SAMPLE_RATE))
        pieces.append(np.zeros(gap, np.float32))
        pos += gap
    word_of = np.searchsorted([e * k for _, _, e in utt.words[:-1]], [(s + e) / 2 * k for _, s, e in utt.phonemes])
    return _finish(np.concatenate(pieces),
                   [(w, shifts[j] + s * k, shifts[j] + e * k) for j, (w, s, e) in enumerate(utt.words)],
                   [(u, shifts[j] + s * k, shifts[j] + e * k) for j, (u, s, e) in zip(word_of, utt.phonemes)])


def _speak_spliced(speaker: Speaker, words: Sequence[str], rng: np.random.Generator) -> SentenceAudio:
    """espeak-ng: bank words joined with pauses, transformed with WORLD and resynthesised once."""
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
        factor = _ESPEAK_STRETCH / speaker.rate * float(np.exp(rng.normal(0, 0.04)))
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
    return _finish(world.synthesize(params), word_spans, phonemes)
