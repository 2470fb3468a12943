"""A token n-gram language model for the lip reader's beam search (shallow fusion).

Auto-AVSR decodes with an optional neural language model; on corpora whose text is small or
regular (GRID's six-slot grammar) a count model over the VSR's own tokens does the same job at no
training cost: it is estimated from the training transcripts in a second, and it knows which
character strings are words and which words follow which. The estimate is interpolated Kneser-Ney
(Chen & Goodman 1999, "An empirical study of smoothing techniques for language modeling"):

``P_k(w | h) = max(c_k(h, w) - D, 0) / c_k(h) + D * N1+(h .) / c_k(h) * P_{k-1}(w | h[1:])``

with raw counts at the highest order, continuation counts (how many distinct tokens precede
``h w``) below it, and a uniform distribution over the emittable tokens under the unigrams. An
unseen context backs off whole. Every sentence is padded with ``order - 1`` sos tokens on the
left and closed with eos, so the model also scores sentence ends.

The model implements :class:`l2s.models.vsr.decoding.LanguageModel`; it is stored as a JSON file of
its highest-order counts (``lm.json`` beside a VSR checkpoint, see :mod:`l2s.models.vsr`).
"""

from __future__ import annotations

import copy
import json
import math
from collections import Counter, OrderedDict, defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Sequence, Tuple, Union

import numpy as np
import torch

from l2s.errors import ModelError
from l2s.io.atomic import atomic_write_text
from l2s.models.vsr.decoding import LOG_ZERO
from l2s.text.tokenizer import Tokenizer

#: File name of a language model stored beside a VSR checkpoint.
LM_FILE = "lm.json"
_FORMAT = "l2s-token-ngram-v1"
#: Cached next-token distributions, in floats: about 32 MB whatever the vocabulary size.
_CACHE_FLOATS = 1 << 22


@dataclass(frozen=True)
class NgramOptions:
    """How the language model is estimated and used.

    Attributes:
        order: n (the context is ``order - 1`` tokens).
        discount: Kneser-Ney absolute discount D, in (0, 1).
        weight: the shallow-fusion weight recommended with the model (``BeamSearchOptions.lm_weight``),
            tuned on a validation split by whoever trained it.
    """

    order: int = 8
    discount: float = 0.75
    weight: float = 0.5

    def __post_init__(self) -> None:
        if self.order < 1:
            raise ValueError(f"n-gram order must be >= 1, got {self.order}")
        if not 0.0 < self.discount < 1.0:
            raise ValueError(f"Kneser-Ney discount must lie in (0, 1), got {self.discount}")
        if self.weight < 0:
            raise ValueError(f"LM weight must be >= 0, got {self.weight}")


Context = Tuple[int, ...]


class _Level:
    """Counts of one order, sparse: per context, the seen token ids, their counts and the counts' sum."""

    def __init__(self, counts: Mapping[Context, Mapping[int, int]]) -> None:
        self.table: Dict[Context, Tuple[np.ndarray, np.ndarray, float]] = {}
        for context, tokens in counts.items():
            ids = np.fromiter(tokens.keys(), dtype=np.int64, count=len(tokens))
            values = np.fromiter(tokens.values(), dtype=np.float64, count=len(tokens))
            self.table[context] = (ids, values, float(values.sum()))


class NgramLM:
    """Interpolated Kneser-Ney n-gram model over token ids.

    Args:
        counts: highest-order counts, ``{(h_1, ..., h_{n-1}, w): count}``.
        vocab_size: V, the VSR vocabulary size.
        sos: start (and end) id; Auto-AVSR's vocabularies share one id for both.
        eos: end id.
        never: ids the model gives (near) zero probability (the CTC blank).
        options: order, discount and recommended weight.
    """

    def __init__(self, counts: Mapping[Tuple[int, ...], int], vocab_size: int, sos: int, eos: int,
                 never: Sequence[int] = (0,), options: NgramOptions = NgramOptions()) -> None:
        self.options = options
        self.vocab_size, self.sos, self.eos = vocab_size, sos, eos
        self.never = tuple(never)
        self.counts = dict(counts)
        order = options.order
        for gram in self.counts:
            if len(gram) != order or not all(0 <= t < vocab_size for t in gram):
                raise ModelError(f"n-gram {gram} does not fit order {order} and vocabulary {vocab_size}")
        # levels[k]: counts of (k + 1)-grams keyed by their k-token context.
        per_order: List[Dict[Context, Counter]] = [defaultdict(Counter) for _ in range(order)]
        for gram, count in self.counts.items():
            per_order[-1][gram[:-1]][gram[-1]] += count
        for k in range(order - 1, 0, -1):
            # Continuation count of the (k)-gram g: distinct tokens seen before it in (k + 1)-grams.
            for context, tokens in per_order[k].items():
                for token in tokens:
                    per_order[k - 1][context[1:]][token] += 1
        self._levels = [_Level(level) for level in per_order]
        self._base = np.full(vocab_size, 1.0)
        self._base[list(self.never)] = 0.0
        if sos != eos:
            self._base[sos] = 0.0
        self._base /= self._base.sum()
        self._cache: "OrderedDict[Context, np.ndarray]" = OrderedDict()
        self._cache_size = max(64, _CACHE_FLOATS // vocab_size)

    @classmethod
    def estimate(cls, sentences: Iterable[Sequence[int]], vocab_size: int, sos: int, eos: int,
                 never: Sequence[int] = (0,), options: NgramOptions = NgramOptions()) -> "NgramLM":
        """Count the n-grams of token-id sentences (no sos/eos in them) and build the model.

        Raises:
            ModelError: when no sentence is given.
        """
        counts: Counter = Counter()
        pad = (sos,) * (options.order - 1)
        n = 0
        for sentence in sentences:
            seq = pad + tuple(int(t) for t in sentence) + (eos,)
            for i in range(options.order - 1, len(seq)):
                counts[seq[i - options.order + 1:i + 1]] += 1
            n += 1
        if n == 0:
            raise ModelError("no sentences to estimate a language model from")
        return cls(counts, vocab_size, sos, eos, never, options)

    @classmethod
    def from_texts(cls, texts: Iterable[str], tokenizer: Tokenizer,
                   options: NgramOptions = NgramOptions()) -> "NgramLM":
        """:meth:`estimate` over ``texts`` in ``tokenizer``'s ids (a VSR model's tokenizer: its sos/eos, the
        CTC blank never emitted)."""
        return cls.estimate((tokenizer.encode(t) for t in texts), tokenizer.vocab_size, tokenizer.sos_id,
                            tokenizer.eos_id, (tokenizer.blank_id,), options)

    def distribution(self, context: Sequence[int]) -> np.ndarray:
        """``P(. | context)`` over the vocabulary, ``(V,)``; the context is the last ``order - 1`` ids."""
        key = self._context(context)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = self._interpolate(key)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return cached

    def _context(self, history: Sequence[int]) -> Context:
        keep = self.options.order - 1
        history = tuple(int(t) for t in history)[-keep:] if keep else ()
        return (self.sos,) * (keep - len(history)) + history

    def _interpolate(self, context: Context) -> np.ndarray:
        probs = self._base
        discount = self.options.discount
        for k in range(len(context) + 1):  # lowest order first; level k reads the last k context tokens
            h = context[len(context) - k:]
            entry = self._levels[k].table.get(h)
            if entry is None:
                continue  # unseen context: the lower order stands
            ids, values, total = entry
            probs = probs * (discount * len(ids) / total)
            probs[ids] += np.maximum(values - discount, 0.0) / total
        return probs

    def score(self, ys: torch.Tensor) -> torch.Tensor:
        """``(N, L)`` prefixes (sos first) -> ``(N, V)`` next-token log-probabilities (the beam-search hook)."""
        rows = [self.distribution(prefix[1:]) for prefix in ys.tolist()]
        with np.errstate(divide="ignore"):
            logp = np.log(np.stack(rows))
        logp[~np.isfinite(logp)] = LOG_ZERO  # a token the model never emits (the CTC blank): finite
        return torch.from_numpy(logp).to(device=ys.device, dtype=torch.float32)

    def sentence_logprob(self, sentence: Sequence[int]) -> float:
        """Natural-log probability of a whole sentence (token ids, eos appended here)."""
        history: List[int] = []
        total = 0.0
        for token in list(sentence) + [self.eos]:
            total += math.log(max(self.distribution(history)[int(token)], 1e-300))
            history.append(int(token))
        return total

    def perplexity(self, sentences: Iterable[Sequence[int]]) -> float:
        """Per-token perplexity (eos counted as a token)."""
        logp, tokens = 0.0, 0
        for sentence in sentences:
            logp += self.sentence_logprob(sentence)
            tokens += len(sentence) + 1
        if tokens == 0:
            raise ValueError("no tokens to measure perplexity on")
        return math.exp(-logp / tokens)

    def to_dict(self) -> dict:
        return {"format": _FORMAT, "order": self.options.order, "discount": self.options.discount,
                "weight": self.options.weight, "vocab_size": self.vocab_size, "sos": self.sos,
                "eos": self.eos, "never": list(self.never),
                "counts": [[list(gram), count] for gram, count in sorted(self.counts.items())]}

    @classmethod
    def from_dict(cls, data: Mapping) -> "NgramLM":
        if data.get("format") != _FORMAT:
            raise ModelError(f"not an l2s n-gram language model (format {data.get('format')!r})")
        try:
            options = NgramOptions(order=int(data["order"]), discount=float(data["discount"]),
                                   weight=float(data["weight"]))
            counts = {tuple(int(t) for t in gram): int(count) for gram, count in data["counts"]}
            return cls(counts, int(data["vocab_size"]), int(data["sos"]), int(data["eos"]),
                       tuple(int(t) for t in data["never"]), options)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"bad n-gram language model ({exc})") from None

    def with_weight(self, weight: float) -> "NgramLM":
        """The same model with another recommended weight (the counts and the cache are shared, not rebuilt:
        the weight only scales the model's scores in the search)."""
        other = copy.copy(self)
        other.options = replace(self.options, weight=weight)
        return other


def save_lm(lm: NgramLM, path: Union[str, Path]) -> Path:
    """Write ``lm`` as JSON (temp file, then rename)."""
    atomic_write_text(path, json.dumps(lm.to_dict(), separators=(",", ":")))
    return Path(path)


def load_lm(path: Union[str, Path]) -> NgramLM:
    """Read a model written by :func:`save_lm`.

    Raises:
        ModelError: when the file is not one.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot read the language model ({exc})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: not an l2s n-gram language model")
    return NgramLM.from_dict(data)
