"""The GRID sentence grammar (Cooke et al., 2006) and disjoint sentence pools.

A GRID sentence is six words, one from each slot: command, colour, preposition,
letter (a-z without w), digit, adverb; 4 * 4 * 4 * 25 * 10 * 4 = 64,000 sentences.
Each sentence has a six-character code made of the first character of every
word (digits as numerals), e.g. ``bin blue at f two now`` -> ``bbaf2n``.
"""

from __future__ import annotations

import hashlib
from typing import List, Sequence, Tuple

import numpy as np

COMMANDS = ("bin", "lay", "place", "set")
COLOURS = ("blue", "green", "red", "white")
PREPOSITIONS = ("at", "by", "in", "with")
LETTERS = tuple(c for c in "abcdefghijklmnopqrstuvwxyz" if c != "w")
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ADVERBS = ("again", "now", "please", "soon")
SLOTS: Tuple[Tuple[str, ...], ...] = (COMMANDS, COLOURS, PREPOSITIONS, LETTERS, DIGITS, ADVERBS)
NUM_SENTENCES = int(np.prod([len(s) for s in SLOTS]))

#: Every word of the grammar once, in slot order (the word bank of a voice).
VOCABULARY: Tuple[str, ...] = tuple(dict.fromkeys(w for slot in SLOTS for w in slot))

#: Sentence partitions: a sentence belongs to exactly one, by a hash of its text,
#: so that valid and test sentences never occur in train whatever the corpus size.
PARTITIONS = ("train", "valid", "test")
_PARTITION_SHARES = (0.8, 0.1, 0.1)


def sentence_from_index(index: int) -> Tuple[str, ...]:
    """The ``index``-th sentence (0 <= index < 64,000) in mixed-radix slot order."""
    words = []
    for slot in reversed(SLOTS):
        index, r = divmod(index, len(slot))
        words.append(slot[r])
    return tuple(reversed(words))


def sentence_code(words: Sequence[str]) -> str:
    """GRID's six-character code of a sentence: first character of each word, digits as numerals."""
    return "".join(str(DIGITS.index(w)) if i == 4 else w[0] for i, w in enumerate(words))


def sentence_partition(words: Sequence[str]) -> str:
    """``train``, ``valid`` or ``test``: a fixed hash partition of the 64,000 sentences."""
    h = int.from_bytes(hashlib.sha1(" ".join(words).encode()).digest()[:4], "little") / 2 ** 32
    edges = np.cumsum(_PARTITION_SHARES)
    return PARTITIONS[int(np.searchsorted(edges, h, side="right"))]


def sample_sentences(rng: np.random.Generator, n: int, partition: str) -> List[Tuple[str, ...]]:
    """``n`` distinct sentences of one partition, drawn with ``rng``.

    Raises:
        ValueError: when the partition holds fewer than ``n`` sentences.
    """
    out: List[Tuple[str, ...]] = []
    seen = set()
    for index in rng.permutation(NUM_SENTENCES):
        words = sentence_from_index(int(index))
        if words not in seen and sentence_partition(words) == partition:
            seen.add(words)
            out.append(words)
            if len(out) == n:
                return out
    raise ValueError(f"only {len(out)} sentences in partition {partition!r}, asked for {n}")
