"""Word and character error rates (jiwer) after Whisper's English text normaliser on both sides.

The normaliser (lower case, punctuation, numbers and British/American spellings
unified) is the one used in the Whisper paper, so a WER here is comparable with
Whisper-based WERs elsewhere in the literature.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from l2s.metrics.base import Score


@lru_cache(maxsize=1)
def _normalizer():
    from whisper.normalizers import EnglishTextNormalizer

    return EnglishTextNormalizer()


def normalize_text(text: str) -> str:
    """Whisper's ``EnglishTextNormalizer`` (``"Mr. Smith's 2 dogs!"`` -> ``"mister smith's 2 dogs"``)."""
    return " ".join(_normalizer()(text).split())


@dataclass(frozen=True)
class ErrorCounts:
    """Edit operations of one (or many) transcripts against the reference(s)."""

    substitutions: int
    deletions: int
    insertions: int
    ref_words: int
    char_errors: int
    ref_chars: int

    @property
    def word_errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        return self.word_errors / max(self.ref_words, 1)

    @property
    def cer(self) -> float:
        return self.char_errors / max(self.ref_chars, 1)

    def __add__(self, other: "ErrorCounts") -> "ErrorCounts":
        return ErrorCounts(*(a + b for a, b in zip(self._tuple(), other._tuple())))

    def _tuple(self):
        return (self.substitutions, self.deletions, self.insertions, self.ref_words, self.char_errors, self.ref_chars)


def error_counts(reference: str, hypothesis: str, normalize: bool = True) -> ErrorCounts:
    """Word and character edit counts of ``hypothesis`` against ``reference``.

    An empty (normalised) hypothesis counts every reference word as deleted; an empty
    reference raises ``ValueError`` since no rate can be defined.
    """
    import jiwer

    ref = normalize_text(reference) if normalize else " ".join(reference.split())
    hyp = normalize_text(hypothesis) if normalize else " ".join(hypothesis.split())
    if not ref:
        raise ValueError("the reference text is empty after normalisation")
    if not hyp:
        n = len(ref.split())
        return ErrorCounts(0, n, 0, n, len(ref), len(ref))
    words = jiwer.process_words(ref, hyp)
    chars = jiwer.process_characters(ref, hyp)
    return ErrorCounts(
        substitutions=words.substitutions, deletions=words.deletions, insertions=words.insertions,
        ref_words=words.hits + words.substitutions + words.deletions,
        char_errors=chars.substitutions + chars.deletions + chars.insertions,
        ref_chars=chars.hits + chars.substitutions + chars.deletions,
    )


def corpus_counts(references: Sequence[str], hypotheses: Sequence[str], normalize: bool = True) -> ErrorCounts:
    """Summed counts over utterances: the corpus WER is errors over all reference words, not a mean of WERs
    (``normalize=False`` compares the words as they are, as the VSR recipes' WER does)."""
    total = ErrorCounts(0, 0, 0, 0, 0, 0)
    for ref, hyp in zip(references, hypotheses, strict=True):
        total = total + error_counts(ref, hyp, normalize)
    return total


def wer_cer(reference: str, hypothesis: str) -> tuple:
    """``(Score("wer"), Score("cer"))`` of one transcript; missing with a reason for an empty reference."""
    try:
        c = error_counts(reference, hypothesis)
    except ValueError as exc:
        return Score.missing("wer", str(exc)), Score.missing("cer", str(exc))
    return Score.of("wer", c.wer), Score.of("cer", c.cer)
