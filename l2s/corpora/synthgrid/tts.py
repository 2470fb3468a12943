"""What both speech engines return: one word's audio with its phoneme intervals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np
from scipy.signal import resample_poly

from l2s.config import SAMPLE_RATE
from l2s.corpora.synthgrid.phonemes import split_units

#: (unit phoneme, start s, end s) relative to the start of the word's audio
PhonemeInterval = Tuple[str, float, float]

# How each engine should read a grammar word: a lone letter is read as its name,
# which both engines already do; this table is the place for any respelling.
SPOKEN_FORMS = {"a": "A"}


@dataclass(frozen=True)
class WordAudio:
    """One synthesised word, trimmed to its phonemes.

    Attributes:
        wav: (N,) float32 at the contract sample rate.
        phonemes: unit phonemes with start/end seconds inside ``wav``, in order, covering it.
    """

    wav: np.ndarray
    phonemes: Tuple[PhonemeInterval, ...]

    @property
    def duration(self) -> float:
        return len(self.wav) / SAMPLE_RATE


def to_contract_rate(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """(N,) float -> (M,) float32 at the contract rate (polyphase resampling)."""
    if sample_rate == SAMPLE_RATE:
        return wav.astype(np.float32)
    g = np.gcd(sample_rate, SAMPLE_RATE)
    return resample_poly(wav.astype(np.float64), SAMPLE_RATE // g, sample_rate // g).astype(np.float32)


def segment_units(phoneme: str, start: int, end: int) -> List[Tuple[str, int, int]]:
    """The units of one engine phoneme and their sample intervals (none for silence or an empty interval).

    A diphthong's halves share its interval equally (no finer timing is available).
    """
    parts = split_units(phoneme)
    if not parts or end <= start:
        return []
    edges = np.linspace(start, end, len(parts) + 1)
    return [(u, int(edges[i]), int(edges[i + 1])) for i, u in enumerate(parts)]


def word_from_segments(wav: np.ndarray, sample_rate: int, segments: Sequence[Tuple[str, int, int]],
                       margin_s: float = 0.015) -> WordAudio:
    """Trim an engine's output to its spoken phonemes and convert to the contract rate.

    Args:
        wav: (N,) engine audio at ``sample_rate``.
        sample_rate: the engine's rate.
        segments: (engine phoneme string, start sample, end sample); silence symbols allowed.
        margin_s: audio kept either side of the first and last spoken phoneme.
    """
    units = [unit for segment in segments for unit in segment_units(*segment)]
    if not units:
        raise RuntimeError("the engine returned no spoken phoneme")
    # Alignments can start late or end early (Piper's onset often falls inside its
    # start-of-sentence symbol): the speech itself, by energy, bounds the word too.
    onset, offset = speech_bounds(wav, sample_rate)
    if onset < units[0][1]:
        units[0] = (units[0][0], onset, units[0][2])
    if offset > units[-1][2]:
        units[-1] = (units[-1][0], units[-1][1], offset)
    margin = int(round(margin_s * sample_rate))
    first = max(0, units[0][1] - margin)
    last = min(len(wav), units[-1][2] + margin)
    audio = to_contract_rate(wav[first:last], sample_rate)
    scale = 1.0 / sample_rate
    dur = len(audio) / SAMPLE_RATE
    intervals = [(u, max(0.0, (s - first) * scale), min(dur, (e - first) * scale)) for u, s, e in units]
    return WordAudio(wav=audio, phonemes=tuple(intervals))


def speech_bounds(wav: np.ndarray, sample_rate: int, floor_db: float = 45.0) -> Tuple[int, int]:
    """First and last sample of the 5 ms hops within ``floor_db`` of the loudest hop."""
    hop = sample_rate // 200
    n = len(wav) // hop
    if n == 0:
        return 0, len(wav)
    power = np.mean(wav[: n * hop].reshape(n, hop).astype(np.float64) ** 2, 1)
    loud = np.flatnonzero(power > power.max() * 10 ** (-floor_db / 10))
    return int(loud[0] * hop), int(min(len(wav), (loud[-1] + 1) * hop))


def split_sentence(wav: np.ndarray, sample_rate: int, segments: Sequence[Tuple[str, int, int]],
                   boundaries: Sequence[int]) -> List[WordAudio]:
    """Cut a synthesised sentence into its words.

    Args:
        wav: (N,) the sentence at ``sample_rate``.
        segments: (phoneme string, start, end) samples of the whole sentence.
        boundaries: W + 1 cut points in samples, first 0 and last N.

    Returns:
        W words, each trimmed like :func:`word_from_segments`.
    """
    words = []
    for b0, b1 in zip(boundaries[:-1], boundaries[1:]):
        segs = [(p, max(s, b0) - b0, min(e, b1) - b0) for p, s, e in segments if b0 <= (s + e) / 2 < b1]
        words.append(word_from_segments(wav[b0:b1], sample_rate, segs))
    return words
