"""Text from the lip reader's features, by one of four decoders.

* ``greedy``: the CTC head's best path;
* ``joint``: Auto-AVSR's joint CTC/attention beam search over characters (with the token n-gram LM when the
  model carries one or ``lm_weight`` says so);
* ``lexicon``: the phoneme CTC head read into words of a lexicon with a word n-gram LM
  (:func:`~l2s.models.vsr.lexicon.lexicon_beam_search`; VALLR's phonemes-then-words), falling back to
  ``joint`` when no hypothesis ends on a word;
* ``rescore``: the ``joint`` search's n-best re-ranked by the phoneme head's CTC likelihood of each text's
  pronunciation and the word LM (:func:`~l2s.models.vsr.lexicon.rescore_nbest`).

The last two need a model with a phoneme head and a lexicon: the model's own (``lexicon.txt`` and
``word_lm.json`` in its directory, written by the trainer from the training transcripts) or one given.
VALLR reconstructs words with a fine-tuned language model instead of a lexicon; such a reconstructor plugs
in as a :data:`WordReconstructor` (phoneme log-probabilities in, text out) passed to :func:`read`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch

from l2s.errors import InputError
from l2s.models.vsr.lexicon import (Lexicon, LexiconSearchOptions, RescoreOptions, WordLM, lexicon_beam_search,
                                    rescore_nbest)
from l2s.text.phonemes import G2P

DECODERS = ("greedy", "joint", "lexicon", "rescore")

#: ``(T, P)`` phoneme log-probabilities -> text: a pluggable word reconstructor (e.g. a small text model)
WordReconstructor = Callable[[torch.Tensor], str]


@dataclass(frozen=True)
class ReadOptions:
    """How :func:`read` decodes.

    Attributes:
        decoder: one of :data:`DECODERS`.
        beam_size: beam width of the search (character or lexicon).
        lm_weight: the token LM's weight in the ``joint`` search (None: the model's recommended one; 0: off).
        word_lm_weight: the word LM's weight (``lexicon``, ``rescore``).
        word_bonus: score per word in the ``lexicon`` search.
        phoneme_weight: weight of the phoneme likelihood in ``rescore``.
    """

    decoder: str = "joint"
    beam_size: int = 10
    lm_weight: Optional[float] = None
    word_lm_weight: float = 0.5
    word_bonus: float = 0.0
    phoneme_weight: float = 0.3

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise InputError(f"decoder {self.decoder!r}: choose one of {', '.join(DECODERS)}")
        if self.beam_size < 1 and self.decoder != "greedy":
            raise InputError(f"the {self.decoder} decoder needs a beam of at least 1, got {self.beam_size}")
        if self.word_lm_weight < 0 or self.phoneme_weight < 0 or (self.lm_weight or 0) < 0:
            raise InputError("decoder weights must be >= 0")


def lexicon_of(model, lexicon: Optional[Lexicon] = None,
               word_lm: Optional[WordLM] = None) -> Tuple[Lexicon, Optional[WordLM]]:
    """The lexicon and word LM the ``lexicon`` and ``rescore`` decoders read ``model``'s phoneme head with: the
    given ones, else the model's own.

    Raises:
        InputError: the model has no phoneme head, or there is no lexicon.
    """
    if model.phoneme_ctc is None:
        raise InputError("the lexicon and rescore decoders need a lip reader with a phoneme CTC head "
                         "(train one with phoneme_ctc_weight > 0)")
    lexicon = lexicon if lexicon is not None else model.lexicon
    if lexicon is None:
        raise InputError("the lexicon and rescore decoders need a lexicon: the model has none (lexicon.txt); "
                         "build one from the training transcripts (l2s score-reader --lexicon-texts)")
    return lexicon, word_lm if word_lm is not None else model.word_lm


@torch.no_grad()
def read(model, features: torch.Tensor, options: ReadOptions = ReadOptions(), lexicon: Optional[Lexicon] = None,
         word_lm: Optional[WordLM] = None, reconstructor: Optional[WordReconstructor] = None,
         g2p=None) -> str:
    """The text of one utterance's encoder output ``(T, D)`` (``model``: a
    :class:`~l2s.models.vsr.model.VSRModel`).

    Args:
        lexicon, word_lm: override the model's own (``lexicon``/``rescore``).
        reconstructor: replaces the lexicon search of the ``lexicon`` decoder.
        g2p: pronounces words of the n-best outside the lexicon (``rescore``; default: espeak-ng's English).
    """
    if options.decoder == "greedy":
        return model.decode_features(features, None).text
    joint = model.beam_options(options.beam_size, options.lm_weight)
    if options.decoder == "joint":
        return model.decode_features(features, joint).text
    log_probs = model.phoneme_log_probs(features.unsqueeze(0))[0]
    if options.decoder == "lexicon" and reconstructor is not None:
        return reconstructor(log_probs)
    lexicon, word_lm = lexicon_of(model, lexicon, word_lm)
    if options.decoder == "lexicon":
        found = lexicon_beam_search(log_probs, lexicon, word_lm, LexiconSearchOptions(
            beam_size=options.beam_size, lm_weight=options.word_lm_weight, word_bonus=options.word_bonus))
        return found[0].text if found else model.decode_features(features, joint).text
    texts = [(model.tokenizer.decode(h.token_ids), h.score) for h in model.beam_hypotheses(features, joint)]
    ranked = rescore_nbest(texts, log_probs, lexicon, word_lm,
                           RescoreOptions(phoneme_weight=options.phoneme_weight, lm_weight=options.word_lm_weight),
                           g2p if g2p is not None else G2P())
    return ranked[0].text
