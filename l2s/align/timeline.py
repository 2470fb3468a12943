"""The lip-read text on the timeline: :class:`Alignment`, and its rendering per mel frame.

An :class:`Alignment` holds the words of a clip and their phonemes, each with a start, an end (seconds
from the first video frame) and a confidence. :func:`render_frames` turns it into the condition a mel
generator reads: one phoneme id, the position inside that phoneme and the word-boundary flags per mel
frame, at the signal contract's mel rate (100 frames per second; mel frame ``j`` is centred on
``j / 100`` s, as the centred STFT of :mod:`l2s.features.mel` places it, so a clip of ``T`` video frames
has ``4 T`` of them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from l2s.config import FPS, MEL_FRAME_RATE
from l2s.errors import InputError
from l2s.text.phonemes import DEFAULT_INVENTORY, DEFAULT_LANGUAGE, SIL_ID, PhonemeInventory

#: a pause at least this long starts a new subtitle segment
SEGMENT_PAUSE_S = 0.5
#: and a segment holds at most this many words
SEGMENT_MAX_WORDS = 7


@dataclass(frozen=True)
class WordSpan:
    """One word on the timeline.

    Attributes:
        word: its text.
        start: seconds from the start of the clip.
        end: seconds (exclusive).
        confidence: the mean CTC posterior of its tokens over their frames.
    """

    word: str
    start: float
    end: float
    confidence: float


@dataclass(frozen=True)
class PhonemeSpan:
    """One phoneme unit (see :mod:`l2s.text.phonemes`) on the timeline.

    Attributes:
        phoneme: the unit.
        start: seconds from the start of the clip.
        end: seconds (exclusive).
        confidence: its word's confidence.
        word: the index of its word in :attr:`Alignment.words`.
    """

    phoneme: str
    start: float
    end: float
    confidence: float
    word: int


@dataclass(frozen=True)
class Segment:
    """A run of words between pauses (a subtitle cue).

    Attributes:
        start, end: seconds.
        text: its words joined by spaces.
        first_word: index of its first word; ``last_word``: one past its last.
        confidence: the mean of its words' confidences.
    """

    start: float
    end: float
    text: str
    first_word: int
    last_word: int
    confidence: float


@dataclass(frozen=True)
class Alignment:
    """Words and phonemes of one clip on its timeline.

    Attributes:
        text: the aligned text (words joined by single spaces).
        words: the words, in order, not overlapping.
        phonemes: every word's phonemes, in order, tiling each word's span.
        duration: seconds of the clip (``num_frames / frame_rate``).
        frame_rate: the rate the words were aligned at (the video's 25 fps): word edges fall on its frames.
        language: the G2P language of the phonemes.
    """

    text: str
    words: Tuple[WordSpan, ...]
    phonemes: Tuple[PhonemeSpan, ...]
    duration: float
    frame_rate: float = float(FPS)
    language: str = DEFAULT_LANGUAGE

    @property
    def num_frames(self) -> int:
        """Video frames of the clip."""
        return int(round(self.duration * self.frame_rate))

    def word_frames(self) -> Tuple[Tuple[int, int], ...]:
        """``(start, end)`` of each word in frames at :attr:`frame_rate` (its video frames ``[start, end)``)."""
        return tuple((int(round(w.start * self.frame_rate)), int(round(w.end * self.frame_rate))) for w in self.words)

    def word_phonemes(self, index: int) -> Tuple[PhonemeSpan, ...]:
        """The phonemes of word ``index``."""
        return tuple(p for p in self.phonemes if p.word == index)

    def segments(self, max_words: int = SEGMENT_MAX_WORDS, pause: float = SEGMENT_PAUSE_S) -> Tuple[Segment, ...]:
        """Subtitle segments: a new one at each pause of at least ``pause`` seconds, and after ``max_words``."""
        groups: List[List[int]] = []
        for i, word in enumerate(self.words):
            if not groups or len(groups[-1]) >= max_words or word.start - self.words[i - 1].end >= pause:
                groups.append([])
            groups[-1].append(i)
        return tuple(Segment(start=self.words[g[0]].start, end=self.words[g[-1]].end,
                             text=" ".join(self.words[i].word for i in g), first_word=g[0], last_word=g[-1] + 1,
                             confidence=sum(self.words[i].confidence for i in g) / len(g)) for g in groups)

    def to_dict(self) -> Dict[str, Any]:
        """The JSON output: ``{"text", "language", "duration", "frame_rate", "segments", "words", "phonemes"}``
        (seconds rounded to the millisecond)."""
        def r(x: float) -> float:
            return round(float(x), 3)

        return {
            "text": self.text,
            "language": self.language,
            "duration": r(self.duration),
            "frame_rate": self.frame_rate,
            "segments": [{"id": k, "start": r(s.start), "end": r(s.end), "text": s.text,
                          "confidence": round(s.confidence, 4), "words": [s.first_word, s.last_word]}
                         for k, s in enumerate(self.segments())],
            "words": [{"word": w.word, "start": r(w.start), "end": r(w.end), "confidence": round(w.confidence, 4)}
                      for w in self.words],
            "phonemes": [{"phoneme": p.phoneme, "start": r(p.start), "end": r(p.end),
                          "confidence": round(p.confidence, 4), "word": p.word} for p in self.phonemes],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Alignment":
        """Read :meth:`to_dict`'s output back (times as rounded there)."""
        try:
            words = tuple(WordSpan(str(w["word"]), float(w["start"]), float(w["end"]),
                                   float(w.get("confidence", 1.0))) for w in data["words"])
            phonemes = tuple(PhonemeSpan(str(p["phoneme"]), float(p["start"]), float(p["end"]),
                                         float(p.get("confidence", 1.0)), int(p["word"])) for p in data["phonemes"])
            return cls(text=str(data["text"]), words=words, phonemes=phonemes, duration=float(data["duration"]),
                       frame_rate=float(data.get("frame_rate", FPS)),
                       language=str(data.get("language", DEFAULT_LANGUAGE)))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not an l2s alignment ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class PhonemeFrames:
    """An :class:`Alignment` per mel frame (all ``(T_m,)``).

    Attributes:
        phoneme_ids: the inventory id of the phoneme sounding at each frame; ``<sil>`` (1) between words.
        position: where the frame lies inside its phoneme, from 0 at its first frame towards 1 (0 in silence).
        word_start: True on the first frame of each word.
        word_end: True on the last frame of each word.
        confidence: the confidence of the frame's word (0 in silence).
    """

    phoneme_ids: torch.Tensor
    position: torch.Tensor
    word_start: torch.Tensor
    word_end: torch.Tensor
    confidence: torch.Tensor

    @property
    def num_frames(self) -> int:
        return int(self.phoneme_ids.shape[0])


def _frame(seconds: float, rate: float) -> int:
    """The first frame whose centre (``j / rate``) is at or after ``seconds``."""
    return int(math.ceil(seconds * rate - 1e-6))


def render_frames(alignment: Alignment, inventory: PhonemeInventory = DEFAULT_INVENTORY,
                  num_frames: Optional[int] = None, frame_rate: float = MEL_FRAME_RATE) -> PhonemeFrames:
    """Phoneme ids, position-in-phoneme and word-boundary flags per output frame.

    A frame belongs to the phoneme whose span holds its centre. Inside a word with at least as many
    frames as phonemes, every phoneme keeps at least one frame (a boundary that rounding would merge
    is moved by a frame), so no phoneme of the text is lost at 100 Hz.

    Args:
        alignment: the clip's alignment.
        inventory: phoneme unit -> id.
        num_frames: output length (default: the clip's duration at ``frame_rate``; 4 per video frame at
            the contract rates).
        frame_rate: output frames per second (the contract's mel rate, 100).

    Returns:
        :class:`PhonemeFrames` of ``num_frames`` frames.
    """
    n = int(round(alignment.duration * frame_rate)) if num_frames is None else int(num_frames)
    ids = torch.full((n,), SIL_ID, dtype=torch.long)
    position = torch.zeros(n)
    start_flag = torch.zeros(n, dtype=torch.bool)
    end_flag = torch.zeros(n, dtype=torch.bool)
    confidence = torch.zeros(n)
    by_word: Dict[int, List[PhonemeSpan]] = {}
    for p in alignment.phonemes:
        by_word.setdefault(p.word, []).append(p)
    for w, word in enumerate(alignment.words):
        lo, hi = max(0, _frame(word.start, frame_rate)), min(n, _frame(word.end, frame_rate))
        if hi <= lo:
            continue
        phones = by_word.get(w, [])
        edges = [lo] + [_frame(p.start, frame_rate) for p in phones[1:]] + [hi]
        if len(phones) <= hi - lo:
            for k in range(1, len(phones)):  # at least one frame each, in order
                edges[k] = min(max(edges[k], edges[k - 1] + 1), hi - (len(phones) - k))
        for k, p in enumerate(phones):
            a, b = max(lo, edges[k]), min(hi, edges[k + 1])
            if b <= a:
                continue
            ids[a:b] = inventory.id(p.phoneme)
            position[a:b] = torch.arange(b - a, dtype=torch.float32) / (b - a)
        start_flag[lo] = True
        end_flag[hi - 1] = True
        confidence[lo:hi] = word.confidence
    return PhonemeFrames(phoneme_ids=ids, position=position, word_start=start_flag, word_end=end_flag,
                         confidence=confidence)


def merge_chunks(parts: Sequence[Tuple[Alignment, float, float, float]], duration: float) -> Alignment:
    """One alignment of a long clip from its chunks' alignments.

    Args:
        parts: per chunk ``(alignment, offset, core_start, core_end)``: its alignment (times from the chunk's
            first frame), the chunk's start and the span it owns in the whole clip, in seconds. A word is
            kept by the chunk whose owned span holds its middle.
        duration: seconds of the whole clip.
    """
    words: List[WordSpan] = []
    phonemes: List[PhonemeSpan] = []
    language, rate = DEFAULT_LANGUAGE, float(FPS)
    for alignment, offset, lo, hi in parts:
        language, rate = alignment.language, alignment.frame_rate
        for k, w in enumerate(alignment.words):
            if not lo <= offset + (w.start + w.end) / 2 < hi:
                continue
            words.append(replace(w, start=w.start + offset, end=w.end + offset))
            phonemes.extend(replace(p, start=p.start + offset, end=p.end + offset, word=len(words) - 1)
                            for p in alignment.phonemes if p.word == k)
    return Alignment(text=" ".join(w.word for w in words), words=tuple(words), phonemes=tuple(phonemes),
                     duration=duration, frame_rate=rate, language=language)
