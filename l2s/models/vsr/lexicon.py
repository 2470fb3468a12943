"""Words from phoneme posteriors: a lexicon, a word n-gram LM and a lexicon-constrained CTC beam search.

The lip reader's phoneme CTC head (VALLR: Thomas et al. 2025, "VALLR: Visual ASR Language Model for
Lip Reading", which reads phonemes first and words second) gives ``(T, P)`` log-probabilities over
:data:`l2s.text.phonemes.DEFAULT_INVENTORY`, trained on the G2P of each transcript with the words'
units concatenated. This module turns them into words:

* :class:`Lexicon`: words and their pronunciations (phoneme-id tuples). A word may have several (its
  G2P alone and, from the training text, its G2P in context, which is what the head was trained on:
  ``at`` -> ``æ t`` and ``æ ɾ``); two words may share one (homophones: ``to``/``two``/``too``). It
  is stored as ``lexicon.txt``, one ``word<TAB>unit unit ...`` line per pronunciation, so a user can
  read it and add words.
* :class:`WordLM`: :class:`~l2s.models.vsr.ngram_lm.NgramLM` (interpolated Kneser-Ney) over word ids.
* :func:`lexicon_beam_search`: the lexicon-constrained CTC prefix beam search of flashlight's lexicon
  decoder (Pratap et al. 2019, "wav2letter++"; torchaudio's ``ctc_decoder`` with a lexicon), written
  anew in Python. A hypothesis is (closed words, node of the pronunciation trie) with the CTC prefix
  probabilities of its phoneme string split into "last frame blank" and "last frame a unit". Per frame
  it may stay (blank, or the node's unit repeated), step to a child node, or, at a node where words
  end, close one of them (each homophone its own hypothesis; ``lm_weight`` times the word LM's log-prob
  plus ``word_bonus``) and start the next word at a child of the root. A unit equal to the previous
  one starts a new unit only after a blank, inside a word and across a word boundary alike, as in CTC.
  Hypotheses are ranked with an LM look-ahead (the best LM log-prob of any word below the node, given
  the closed words), so that a hypothesis inside a word competes fairly with one that has just paid
  for its word. After the last frame only hypotheses at a word end count: each closes its word and
  adds the LM's end-of-sentence log-prob.
  ``<sil>`` frames may fall between words only: a ``<sil>`` frame at a word end closes the word and
  moves the hypothesis to the root, where further ``<sil>`` and blank frames are skipped and any unit
  (even the one that ended the word) starts the next word. A hypothesis at the root counts as finished.
* :func:`phoneme_log_likelihood` and :func:`rescore_nbest`: the joint use of the head, re-ranking the
  character beam search's n-best by the CTC log-likelihood of each text's phonemes.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from l2s.errors import InputError, ModelError
from l2s.io.atomic import atomic_write_text
from l2s.models.vsr.ngram_lm import NgramLM, NgramOptions
from l2s.text.phonemes import BLANK_ID, DEFAULT_INVENTORY, SIL_ID, UNK, G2P, PhonemeInventory

#: File names beside a VSR checkpoint.
LEXICON_FILE = "lexicon.txt"
WORD_LM_FILE = "word_lm.json"
_WORD_LM_FORMAT = "l2s-word-ngram-v1"
#: Reserved word-LM entries (after the words): an unknown word, sentence start, sentence end.
WORD_UNK, WORD_SOS, WORD_EOS = "<unk>", "<s>", "</s>"
_NEG = float("-inf")
#: Word LM log-prob floor (a word the model gives no mass).
_LM_FLOOR = -1e4

Pronunciation = Tuple[int, ...]
#: A G2P: words -> units per word (:class:`l2s.text.phonemes.G2P`).
G2PFn = Callable[[Sequence[str]], List[Tuple[str, ...]]]


def text_words(text: str) -> List[str]:
    """The words of a transcript as the lexicon keys them (lower case, split on white space)."""
    return text.lower().split()


@dataclass(frozen=True)
class Lexicon:
    """Words and their pronunciations.

    Attributes:
        entries: ``(word, phoneme ids)`` pairs; a word may come several times (its first pronunciation is its
            main one), a pronunciation too (homophones).
        inventory: the phoneme table the ids index.
    """

    entries: Tuple[Tuple[str, Pronunciation], ...]
    inventory: PhonemeInventory = DEFAULT_INVENTORY
    _by_word: Dict[str, Tuple[Pronunciation, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_word: Dict[str, List[Pronunciation]] = {}
        seen = set()
        for word, ids in self.entries:
            if not word or any(c.isspace() for c in word):
                raise ModelError(f"lexicon word {word!r}: empty or with white space")
            if not ids or any(not SIL_ID < i < len(self.inventory) for i in ids):
                raise ModelError(f"lexicon word {word!r}: pronunciation {ids} is empty or holds a special id")
            if (word, ids) in seen:
                raise ModelError(f"lexicon word {word!r} lists one pronunciation twice")
            seen.add((word, ids))
            by_word.setdefault(word, []).append(tuple(ids))
        if not by_word:
            raise ModelError("an empty lexicon")
        object.__setattr__(self, "_by_word", {w: tuple(p) for w, p in by_word.items()})

    @property
    def words(self) -> Tuple[str, ...]:
        """The distinct words, in first-entry order (a word's index in the search)."""
        return tuple(self._by_word)

    def __len__(self) -> int:
        return len(self._by_word)

    def __contains__(self, word: str) -> bool:
        return word in self._by_word

    @classmethod
    def from_texts(cls, texts: Iterable[str], g2p: Optional[G2PFn] = None,
                   inventory: PhonemeInventory = DEFAULT_INVENTORY, in_context: bool = True) -> "Lexicon":
        """The distinct words of ``texts`` (:func:`text_words`), each pronounced by G2P of the word alone and,
        with ``in_context``, also as G2P pronounces it inside each text (the phoneme head's targets).

        Raises:
            ModelError: when the texts hold no word.
        """
        g2p = g2p or G2P()
        pronunciations: Dict[str, List[Pronunciation]] = {}
        for text in texts:
            words = text_words(text)
            for word in words:
                if word not in pronunciations:
                    pronunciations[word] = [tuple(inventory.ids(g2p([word])[0]))]
            if in_context and words:
                for word, units in zip(words, g2p(words)):
                    ids = tuple(inventory.ids(units))
                    if ids not in pronunciations[word]:
                        pronunciations[word].append(ids)
        return cls(tuple((w, p) for w, ps in pronunciations.items() for p in ps), inventory)

    def pronunciations(self, word: str, g2p: Optional[G2PFn] = None) -> Tuple[Pronunciation, ...]:
        """A word's pronunciations, main one first; outside the lexicon, ``g2p``'s of the word alone.

        Raises:
            InputError: the word is not in the lexicon and no G2P is given.
        """
        known = self._by_word.get(word)
        if known is not None:
            return known
        if g2p is None:
            raise InputError(f"word {word!r} is not in the lexicon (and no G2P was given to pronounce it)")
        return (tuple(self.inventory.ids(g2p([word])[0])),)

    def ids(self, word: str, g2p: Optional[G2PFn] = None) -> Pronunciation:
        """A word's main pronunciation (see :meth:`pronunciations`)."""
        return self.pronunciations(word, g2p)[0]

    def save(self, path: Union[str, Path]) -> Path:
        """Write ``lexicon.txt``: one ``word<TAB>unit unit ...`` line per entry, UTF-8 (temp file, then rename)."""
        lines = [f"{w}\t{' '.join(self.inventory.symbols[i] for i in ids)}\n" for w, ids in self.entries]
        atomic_write_text(path, "".join(lines))
        return Path(path)

    @classmethod
    def load(cls, path: Union[str, Path], inventory: PhonemeInventory = DEFAULT_INVENTORY) -> "Lexicon":
        """Read a file written by :meth:`save` (or by hand: blank lines are skipped, a repeated line is kept once).

        Raises:
            ModelError: the file is missing, unreadable or malformed (the message names the line).
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelError(f"{path}: cannot read the lexicon ({exc})") from None
        entries: Dict[Tuple[str, Pronunciation], None] = {}
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            word, sep, units = line.partition("\t")
            if not sep or not word.strip() or not units.split():
                raise ModelError(f"{path}:{n}: expected 'word<TAB>unit unit ...', got {line!r}")
            ids = tuple(inventory.id(u) for u in units.split())
            bad = [u for u, i in zip(units.split(), ids) if i <= SIL_ID or (i == inventory.id(UNK) and u != UNK)]
            if bad:
                raise ModelError(f"{path}:{n}: {bad[0]!r} is not a phoneme of the inventory")
            entries[(word.strip(), ids)] = None
        try:
            return cls(tuple(entries), inventory)
        except ModelError as exc:
            raise ModelError(f"{path}: {exc}") from None

    @cached_property
    def trie(self) -> "_Trie":
        """The pronunciations as a prefix tree (built once, on first use)."""
        return _Trie(self)


class _Trie:
    """Prefix tree of a lexicon's pronunciations, as flat lists indexed by node (node 0 is the root).

    Attributes:
        unit: each node's phoneme id (-1 at the root).
        children: each node's ``{phoneme id: child node}``.
        ends: each node's words (lexicon word indices) whose pronunciation ends there.
        below: each node's word indices in its subtree, ``(n,)`` int64 (for the LM look-ahead).
    """

    def __init__(self, lexicon: Lexicon) -> None:
        index = {w: i for i, w in enumerate(lexicon.words)}
        self.unit: List[int] = [-1]
        self.children: List[Dict[int, int]] = [{}]
        ends: List[List[int]] = [[]]
        below: List[set] = [set()]
        for word, ids in lexicon.entries:
            node = 0
            below[0].add(index[word])
            for unit in ids:
                child = self.children[node].get(unit)
                if child is None:
                    child = self.children[node][unit] = len(self.unit)
                    self.unit.append(unit)
                    self.children.append({})
                    ends.append([])
                    below.append(set())
                node = child
                below[node].add(index[word])
            if index[word] not in ends[node]:
                ends[node].append(index[word])
        self.ends: List[Tuple[int, ...]] = [tuple(e) for e in ends]
        self.below: List[np.ndarray] = [np.array(sorted(b), dtype=np.int64) for b in below]


class WordLM:
    """A word n-gram language model: :class:`NgramLM` over word ids.

    The ids are the words' indices, then ``<unk>`` (any word outside the list), ``<s>`` and ``</s>``.

    Args:
        words: the vocabulary (distinct, none of the reserved names).
        lm: the model over ``len(words) + 3`` ids.
    """

    def __init__(self, words: Sequence[str], lm: NgramLM) -> None:
        self.words = tuple(words)
        if len(set(self.words)) != len(self.words) or {WORD_UNK, WORD_SOS, WORD_EOS} & set(self.words):
            raise ModelError("a word LM vocabulary lists a word twice or a reserved name")
        n = len(self.words)
        if (lm.vocab_size, lm.sos, lm.eos) != (n + 3, n + 1, n + 2):
            raise ModelError(f"word LM counts do not fit its {n} words")
        self.lm = lm
        self.unk_id, self.sos_id, self.eos_id = n, n + 1, n + 2
        self._index = {w: i for i, w in enumerate(self.words)}

    @property
    def order(self) -> int:
        return self.lm.options.order

    @classmethod
    def from_texts(cls, texts: Iterable[str], options: NgramOptions = NgramOptions(order=3)) -> "WordLM":
        """Estimate the model from transcripts (:func:`text_words`); the vocabulary is their words.

        Raises:
            ModelError: when no text is given.
        """
        sentences = [text_words(t) for t in texts]
        words = list(dict.fromkeys(w for s in sentences for w in s))
        index = {w: i for i, w in enumerate(words)}
        n = len(words)
        lm = NgramLM.estimate(([index[w] for w in s] for s in sentences), n + 3, n + 1, n + 2, (), options)
        return cls(words, lm)

    def id(self, word: str) -> int:
        """A word's id (``<unk>``'s outside the vocabulary)."""
        return self._index.get(word, self.unk_id)

    def log_distribution(self, history: Sequence[int]) -> np.ndarray:
        """``log P(. | history)`` over the ids, ``(len(words) + 3,)``, floored at a large negative number."""
        with np.errstate(divide="ignore"):
            return np.maximum(np.log(self.lm.distribution(history)), _LM_FLOOR)

    def _logprob_id(self, history: Sequence[int], word_id: int) -> float:
        return float(self.log_distribution(history)[word_id])

    def logprob(self, history: Sequence[str], word: str) -> float:
        """``log P(word | history)`` (natural log; only the last ``order - 1`` words of the history matter)."""
        return self._logprob_id([self.id(w) for w in history], self.id(word))

    def end_logprob(self, history: Sequence[str]) -> float:
        """``log P(</s> | history)``: the sentence ends here."""
        return self._logprob_id([self.id(w) for w in history], self.eos_id)

    def sentence_logprob(self, words: Sequence[str]) -> float:
        """``log P(words </s>)``."""
        ids = [self.id(w) for w in words]
        return sum(self._logprob_id(ids[:i], t) for i, t in enumerate(ids + [self.eos_id]))

    def save(self, path: Union[str, Path]) -> Path:
        """Write ``word_lm.json`` (temp file, then rename)."""
        data = {"format": _WORD_LM_FORMAT, "words": list(self.words), "lm": self.lm.to_dict()}
        atomic_write_text(path, json.dumps(data, ensure_ascii=False, separators=(",", ":")))
        return Path(path)

    @classmethod
    def load(cls, path: Union[str, Path]) -> "WordLM":
        """Read a file written by :meth:`save`.

        Raises:
            ModelError: when the file is missing or not one.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path}: cannot read the word language model ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != _WORD_LM_FORMAT:
            raise ModelError(f"{path}: not an l2s word language model")
        words = data.get("words")
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ModelError(f"{path}: bad word language model (no word list)")
        try:
            return cls(words, NgramLM.from_dict(data.get("lm") or {}))
        except ModelError as exc:
            raise ModelError(f"{path}: {exc}") from None


@dataclass(frozen=True)
class LexiconSearchOptions:
    """Lexicon beam search settings.

    Attributes:
        beam_size: hypotheses kept per frame.
        lm_weight: weight of the word LM's log-probs (used only when a model is given).
        word_bonus: score added per word (offsets the LM's and the acoustics' preference for fewer words).
        token_prune: a frame's units more than this many nats below its best unit are not entered.
        lm_lookahead: rank hypotheses inside a word with the best LM log-prob of any word below their node.
    """

    beam_size: int = 10
    lm_weight: float = 0.5
    word_bonus: float = 0.0
    token_prune: float = 12.0
    lm_lookahead: bool = True

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ValueError(f"beam size must be >= 1, got {self.beam_size}")
        if self.lm_weight < 0 or self.token_prune <= 0:
            raise ValueError("lm_weight must be >= 0 and token_prune > 0")


@dataclass(frozen=True)
class LexiconHypothesis:
    """A finished hypothesis of :func:`lexicon_beam_search`.

    Attributes:
        words: the words read.
        score: ``acoustic + lm_weight * lm + word_bonus * len(words)``.
        acoustic: CTC log-probability of the words' phonemes, summed over their alignments and pronunciations
            (those the beam kept).
        lm: word LM log-prob of the words and the sentence end (0 without a model).
    """

    words: Tuple[str, ...]
    score: float
    acoustic: float
    lm: float

    @property
    def text(self) -> str:
        return " ".join(self.words)


def _lse(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) for floats (-inf allowed)."""
    if a < b:
        a, b = b, a
    if b == _NEG:
        return a
    return a + math.log1p(math.exp(b - a))


class _LMScores:
    """The word LM as the search asks it: per context (last ``order - 1`` LM ids), log-probs of the lexicon's
    words and of the sentence end, and the look-ahead of each trie node; all cached for one search."""

    def __init__(self, lm: Optional[WordLM], lexicon: Lexicon, trie: _Trie) -> None:
        self.lm, self.trie = lm, trie
        self.keep = lm.order - 1 if lm else 0
        self.ids = np.array([lm.id(w) for w in lexicon.words], dtype=np.int64) if lm else None
        self._logp: Dict[Tuple[int, ...], np.ndarray] = {}
        self._ahead: Dict[Tuple[Tuple[int, ...], int], float] = {}

    def context(self, words: Tuple[int, ...]) -> Tuple[int, ...]:
        if not self.keep:
            return ()
        return tuple(int(self.ids[w]) for w in words[-self.keep:])

    def _dist(self, context: Tuple[int, ...]) -> np.ndarray:
        logp = self._logp.get(context)
        if logp is None:
            logp = self._logp[context] = self.lm.log_distribution(context)
        return logp

    def word(self, context: Tuple[int, ...], word: int) -> float:
        return float(self._dist(context)[self.ids[word]]) if self.lm else 0.0

    def end(self, context: Tuple[int, ...]) -> float:
        return float(self._dist(context)[self.lm.eos_id]) if self.lm else 0.0

    def ahead(self, context: Tuple[int, ...], node: int) -> float:
        if not self.lm or node == 0:
            return 0.0
        key = (context, node)
        value = self._ahead.get(key)
        if value is None:
            value = self._ahead[key] = float(self._dist(context)[self.ids[self.trie.below[node]]].max())
        return value


def lexicon_beam_search(log_probs: torch.Tensor, lexicon: Lexicon, lm: Optional[WordLM] = None,
                        options: LexiconSearchOptions = LexiconSearchOptions()) -> List[LexiconHypothesis]:
    """Read words from phoneme CTC log-probabilities, constrained to the lexicon (see the module docstring).

    Args:
        log_probs: ``(T, P)`` log-probabilities over ``lexicon.inventory`` (blank 0, ``<sil>`` 1).
        lexicon: the words that may be read.
        lm: an optional word LM.
        options: beam size, weights, pruning.

    Returns:
        The distinct word sequences that end at a word boundary, best first (empty when the beam kept none).
    """
    if log_probs.dim() != 2 or log_probs.shape[1] != len(lexicon.inventory):
        raise InputError(f"phoneme log-probs must be (T, {len(lexicon.inventory)}), got {tuple(log_probs.shape)}")
    frames = log_probs.detach().to("cpu", torch.float64).numpy()
    trie = lexicon.trie
    scores = _LMScores(lm, lexicon, trie)
    weight = options.lm_weight if lm is not None else 0.0
    bonus = options.word_bonus
    units, children, ends = trie.unit, trie.children, trie.ends
    root_children = list(children[0].items())
    # beam: (closed word indices, node) -> [log P(prefix, last frame blank), log P(... last frame a unit),
    # LM log-prob of the closed words]
    # (the root holds the start and hypotheses after a pause)
    beam: Dict[Tuple[Tuple[int, ...], int], List[float]] = {((), 0): [0.0, _NEG, 0.0]}
    for frame in frames:
        lp = frame.tolist()
        floor = max(lp) - options.token_prune
        lp_blank, lp_sil = lp[BLANK_ID], lp[SIL_ID]
        lp_pause = _lse(lp_blank, lp_sil)
        nxt: Dict[Tuple[Tuple[int, ...], int], List[float]] = {}
        for (words, node), (p_b, p_nb, lm_closed) in beam.items():
            p = _lse(p_b, p_nb)
            if p == _NEG:
                continue
            last = units[node]
            # stay: a blank (or a pause, between words), or the node's unit repeated
            stay = nxt.setdefault((words, node), [_NEG, _NEG, lm_closed])
            stay[0] = _lse(stay[0], p + (lp_pause if node == 0 else lp_blank))
            if node:
                stay[1] = _lse(stay[1], p_nb + lp[last])
            # step down the trie within the word
            for unit, child in children[node].items():
                mass = (p_b if unit == last else p) + lp[unit]
                if lp[unit] < floor or mass == _NEG:
                    continue
                entry = nxt.setdefault((words, child), [_NEG, _NEG, lm_closed])
                entry[1] = _lse(entry[1], mass)
            # close a word ending here and start the next one
            if ends[node]:
                context = scores.context(words)
                for word in ends[node]:
                    closed = words + (word,)
                    lm_word = lm_closed + scores.word(context, word)
                    # a pause closes the word: on to the root, where any unit may start the next one
                    entry = nxt.setdefault((closed, 0), [_NEG, _NEG, lm_word])
                    entry[0] = _lse(entry[0], p + lp_sil)
                    for unit, child in root_children:
                        mass = (p_b if unit == last else p) + lp[unit]
                        if lp[unit] < floor or mass == _NEG:
                            continue
                        entry = nxt.setdefault((closed, child), [_NEG, _NEG, lm_word])
                        entry[1] = _lse(entry[1], mass)

        def rank(item) -> float:
            (words, node), (p_b, p_nb, lm_closed) = item
            ahead = scores.ahead(scores.context(words), node) if options.lm_lookahead else 0.0
            return _lse(p_b, p_nb) + weight * (lm_closed + ahead) + bonus * (len(words) + (node != 0))

        beam = dict(sorted(nxt.items(), key=rank, reverse=True)[:options.beam_size])
    return _finish(beam, lexicon, scores, weight, bonus)


def _finish(beam, lexicon: Lexicon, scores: _LMScores, weight: float, bonus: float) -> List[LexiconHypothesis]:
    """Close the word of every hypothesis at a word end (the empty one at the root stands as it is), add the
    sentence end, and merge hypotheses that read the same words."""
    finals: Dict[Tuple[int, ...], List[float]] = {}
    ends = scores.trie.ends
    for (words, node), (p_b, p_nb, lm_closed) in beam.items():
        p = _lse(p_b, p_nb)
        if p == _NEG:
            continue
        if node == 0:
            closed = [(words, lm_closed)]
        else:
            context = scores.context(words)
            closed = [(words + (w,), lm_closed + scores.word(context, w)) for w in ends[node]]
        for seq, lm_seq in closed:
            entry = finals.setdefault(seq, [_NEG, lm_seq + scores.end(scores.context(seq))])
            entry[0] = _lse(entry[0], p)
    out = [LexiconHypothesis(tuple(lexicon.words[w] for w in seq), ac + weight * lm + bonus * len(seq), ac, lm)
           for seq, (ac, lm) in finals.items()]
    return sorted(out, key=lambda h: h.score, reverse=True)


def phoneme_log_likelihood(log_probs: torch.Tensor, phoneme_ids: Sequence[int]) -> float:
    """CTC log-likelihood ``log P(phoneme_ids | log_probs)`` (blank 0), summed over alignments.

    Args:
        log_probs: ``(T, P)`` log-probabilities.
        phoneme_ids: the unit sequence (no blanks).

    Returns:
        The log-likelihood, ``-inf`` when the sequence cannot fit in ``T`` frames.
    """
    lp = log_probs.detach().to("cpu", torch.float64)[:, None, :]
    targets = torch.tensor([list(phoneme_ids)], dtype=torch.long)
    loss = torch.nn.functional.ctc_loss(lp, targets, torch.tensor([lp.shape[0]]), torch.tensor([len(phoneme_ids)]),
                                        blank=BLANK_ID, reduction="sum", zero_infinity=False)
    return -float(loss)


@dataclass(frozen=True)
class RescoreOptions:
    """How :func:`rescore_nbest` combines the scores.

    Attributes:
        phoneme_weight: weight of the phoneme CTC log-likelihood.
        lm_weight: weight of the word LM's sentence log-prob (used only when a model is given).
        max_pronunciations: pronunciation sequences summed per text (words with several pronunciations
            multiply them; the main ones come first).
    """

    phoneme_weight: float = 0.3
    lm_weight: float = 0.0
    max_pronunciations: int = 16


@dataclass(frozen=True)
class RescoredHypothesis:
    """One re-ranked hypothesis: ``score = base + phoneme_weight * phoneme + lm_weight * lm``."""

    text: str
    score: float
    base: float
    phoneme: float
    lm: float


def rescore_nbest(nbest: Sequence[Tuple[str, float]], log_probs: torch.Tensor, lexicon: Lexicon,
                  lm: Optional[WordLM] = None, options: RescoreOptions = RescoreOptions(),
                  g2p: Optional[G2PFn] = None) -> List[RescoredHypothesis]:
    """Re-rank (text, score) hypotheses (the character beam search's n-best) with the phoneme head.

    Each text's phoneme score is the CTC log-likelihood of its pronunciations (lexicon, else ``g2p``),
    summed over up to ``options.max_pronunciations`` variant sequences.

    Args:
        nbest: ``(text, score)`` pairs.
        log_probs: ``(T, P)`` phoneme log-probabilities of the same clip.
        lexicon: pronunciations.
        lm: an optional word LM.
        options: weights.
        g2p: pronounces words outside the lexicon.

    Returns:
        The hypotheses, best combined score first.

    Raises:
        InputError: a word is outside the lexicon and no G2P is given.
    """
    out = []
    for text, base in nbest:
        words = text_words(text)
        variants = [lexicon.pronunciations(w, g2p) for w in words]
        phoneme = _NEG
        for choice in itertools.islice(itertools.product(*variants), options.max_pronunciations):
            phoneme = _lse(phoneme, phoneme_log_likelihood(log_probs, [u for p in choice for u in p]))
        lm_score = lm.sentence_logprob(words) if lm is not None else 0.0
        score = float(base)
        if options.phoneme_weight:  # (0 * -inf would be nan)
            score += options.phoneme_weight * phoneme
        if lm is not None:
            score += options.lm_weight * lm_score
        out.append(RescoredHypothesis(text, score, float(base), phoneme, lm_score))
    return sorted(out, key=lambda h: h.score, reverse=True)
