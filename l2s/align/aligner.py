"""Text -> :class:`~l2s.align.timeline.Alignment` on a silent clip: CTC forced alignment, G2P, durations.

::

    aligner = Aligner.from_pretrained("synthgrid-small")      # a pipeline (VSR + aligner) or a VSR dir
    features = aligner.vsr.encode(roi[None])[0]               # (T, D), or pass the ROI to align_roi
    alignment = aligner.align(features, "bin blue at f two now")

The text is tokenised by the lip reader's own tokenizer and placed on frame-level posteriors over its
tokens (:func:`l2s.align.ctc.viterbi`): those of the aligner's timing head (:mod:`l2s.models.aligner.timing`)
when it has one, else the lip reader's own CTC head. Tokens are grouped into words: a space token separates words of a
character tokenizer, a ``▁`` piece starts a word of a SentencePiece one. A word spans its tokens'
frames; each word is then cut into its phonemes (:class:`~l2s.text.phonemes.G2P`) by the shares of
the duration model (:mod:`l2s.models.aligner.durations`).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from l2s.models.aligner.model import AlignerModel, load_aligner
from l2s.align.ctc import TokenSpan, token_spans, viterbi
from l2s.models.aligner.durations import equal_shares, predict_shares
from l2s.align.timeline import Alignment, PhonemeSpan, WordSpan
from l2s.config import FPS
from l2s.errors import InputError, ModelError
from l2s.text.phonemes import DEFAULT_INVENTORY, DEFAULT_LANGUAGE, G2P, PhonemeInventory
from l2s.text.tokenizer import SPM_SPACE

#: how phonemes share a word: the duration model, the phonemes' mean durations, or equal parts
SHARES = ("model", "mean", "equal")
_NOT_TEXT = re.compile(r"[^\w\s']")


def normalise_text(text: str) -> str:
    """Lower case, punctuation (but the apostrophe) removed, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text).lower().replace("_", " ")
    return " ".join(_NOT_TEXT.sub(" ", text).split())


def word_groups(pieces: Sequence[str]) -> List[List[int]]:
    """Token indices of each word: a blank piece (a character tokenizer's space) ends a word, a piece
    starting with ``▁`` (SentencePiece) starts one."""
    groups: List[List[int]] = []
    current: Optional[List[int]] = None
    for i, piece in enumerate(pieces):
        if piece.startswith(SPM_SPACE):
            current = []
            groups.append(current)
        elif not piece.strip():
            current = None
            continue
        elif current is None:
            current = []
            groups.append(current)
        current.append(i)
    return groups


def _word_text(pieces: Sequence[str], group: Sequence[int]) -> str:
    return "".join(pieces[i] for i in group).replace(SPM_SPACE, "").lower()


def load_learned(model_root: Path, aligner: Optional[Union[str, Path]] = None,
                 device: Union[str, torch.device] = "cpu") -> Optional[AlignerModel]:
    """The aligner model named by ``aligner``, else the ``aligner`` component of the pipeline at
    ``model_root`` (None when it is no pipeline or has none)."""
    from l2s.hub import PIPELINE_FILE, resolve

    if aligner is not None:
        return load_aligner(resolve(aligner), device)
    if not (Path(model_root) / PIPELINE_FILE).is_file():
        return None
    from l2s.pipeline.spec import read_spec

    components = read_spec(model_root).components
    return load_aligner(Path(model_root) / components["aligner"], device) if "aligner" in components else None


class Aligner:
    """Places a text on a clip's frames with a lip reader's CTC head, and its phonemes inside the words.

    Args:
        vsr: the lip reader (:class:`~l2s.models.vsr.VSRModel`, with its tokenizer).
        model: the trained timing head and duration model (:mod:`l2s.models.aligner.model`), or None: then
            the lip reader's CTC head places the words and the phonemes share them equally.
        language: the G2P's espeak-ng language.
        shares: ``"model"`` (the duration model), ``"mean"`` (the phonemes' mean durations), ``"equal"``.
        use_timing: align on the timing head (when the model has one); False: on the lip reader's CTC head.
    """

    def __init__(self, vsr: torch.nn.Module, model: Optional[AlignerModel] = None,
                 language: str = DEFAULT_LANGUAGE, shares: str = "model", use_timing: bool = True) -> None:
        if vsr.tokenizer is None:
            raise ModelError("the lip reader has no tokenizer (a SentencePiece model saved without its files): "
                             "text cannot be aligned")
        if shares not in SHARES:
            raise ValueError(f"shares must be one of {SHARES}, got {shares!r}")
        if model is not None and model.timing is not None and model.timing.config.vocab_size != vsr.config.vocab_size:
            raise ModelError(f"the aligner's timing head has {model.timing.config.vocab_size} tokens, the lip reader "
                             f"{vsr.config.vocab_size}: they were not trained together")
        self.vsr, self.model, self.shares = vsr, model, shares
        self.timing = model.timing if (model is not None and use_timing) else None
        self.durations = model.durations if model is not None else None
        self.g2p = G2P(language)

    @property
    def language(self) -> str:
        return self.g2p.language

    @property
    def inventory(self) -> PhonemeInventory:
        return self.durations.inventory if self.durations is not None else DEFAULT_INVENTORY

    @classmethod
    def from_pretrained(cls, model: Union[str, Path], aligner: Optional[Union[str, Path]] = None,
                        device: Union[str, torch.device] = "cpu", language: str = DEFAULT_LANGUAGE,
                        shares: str = "model", use_timing: bool = True) -> "Aligner":
        """The aligner of a pipeline (its ``vsr`` and ``aligner`` components) or of a lip-reader directory.

        Args:
            model: pipeline or VSR directory, bundled name or hub id.
            aligner: an ``aligner`` model directory (default: the pipeline's, if it has one).
        """
        from l2s.hub import PIPELINE_FILE, resolve
        from l2s.models.vsr import load_vsr

        root = resolve(model)
        vsr_dir = root
        if (root / PIPELINE_FILE).is_file():
            from l2s.pipeline.spec import read_spec

            components = read_spec(root).components
            if "vsr" not in components:
                raise ModelError(f"{root}: the pipeline has no lip reader (vsr) to align with")
            vsr_dir = root / components["vsr"]
        learned = load_learned(root, aligner, device)
        return cls(load_vsr(vsr_dir, device), learned, language=language, shares=shares, use_timing=use_timing)

    # ------------------------------------------------------------------ steps

    @torch.no_grad()
    def log_probs(self, features: torch.Tensor) -> torch.Tensor:
        """``(T, V)`` frame log-posteriors over the lip reader's tokens for one clip's ``(T, D)`` features: the
        timing head's, or the lip reader's CTC head's."""
        head = self.timing if self.timing is not None else self.vsr.ctc
        return head(features.unsqueeze(0))[0].float().cpu()

    def tokens(self, text: str) -> Tuple[List[int], List[str], List[List[int]], List[str]]:
        """``(ids, pieces, word groups, words)`` of a normalised text.

        Raises:
            InputError: the text has no word.
        """
        tok = self.vsr.tokenizer
        pieces = tok.pieces(text)
        ids = tok.encode(text)
        groups = [g for g in word_groups(pieces) if g]
        if not groups:
            raise InputError("nothing to align: the text has no word")
        given = text.split()
        words = given if len(given) == len(groups) else [_word_text(pieces, g) for g in groups]
        return ids, pieces, groups, words

    def word_spans(self, spans: Sequence[TokenSpan], groups: Sequence[Sequence[int]]
                   ) -> List[Tuple[int, int, float]]:
        """``(start, end, confidence)`` video frames of each word: from its first token's first frame to
        its last token's last, with the frame-weighted mean of its tokens' posteriors."""
        out = []
        for group in groups:
            own = [spans[i] for i in group]
            frames = sum(s.end - s.start for s in own)
            conf = sum(s.confidence * (s.end - s.start) for s in own) / max(1, frames)
            out.append((own[0].start, own[-1].end, conf))
        return out

    def phoneme_shares(self, units: Sequence[Sequence[str]], features: torch.Tensor,
                       spans: Sequence[Tuple[int, int]], shares: Optional[str] = None) -> List[torch.Tensor]:
        """Each word's phoneme shares, by ``shares`` (default: :attr:`shares`)."""
        shares = shares or self.shares
        if shares not in SHARES:
            raise ValueError(f"shares must be one of {SHARES}, got {shares!r}")
        ids = [self.inventory.ids(u) for u in units]
        if self.durations is not None and shares == "model":
            return predict_shares(self.durations, ids, features, spans)
        if self.durations is not None and shares == "mean":
            return [self.durations.mean_shares(i) for i in ids]
        return [equal_shares(len(i)) for i in ids]

    # ------------------------------------------------------------------ the whole

    def align(self, features: torch.Tensor, text: str, log_probs: Optional[torch.Tensor] = None,
              allow_empty: bool = False, shares: Optional[str] = None) -> Alignment:
        """Place ``text`` on a clip.

        Args:
            features: ``(T, D)`` the clip's lip-reader features (:meth:`VSRModel.encode`).
            text: the words (the lip-read text, a user's text or a transcript).
            log_probs: ``(T, V)`` frame log-posteriors from :meth:`log_probs`, if already computed.
            allow_empty: an empty text gives an alignment without words (a clip nothing was read from)
                instead of an error.
            shares: how phonemes share a word, for this call (default: :attr:`shares`).

        Raises:
            InputError: an empty text (unless allowed), or one that cannot fit the frames.
        """
        text = normalise_text(text)
        if not text and allow_empty:
            return Alignment(text="", words=(), phonemes=(), duration=features.shape[0] / FPS,
                             frame_rate=float(FPS), language=self.language)
        ids, pieces, groups, words = self.tokens(text)
        lp = self.log_probs(features) if log_probs is None else log_probs
        path = viterbi(lp, ids, self.vsr.blank)
        frames = self.word_spans(token_spans(lp, ids, path), groups)
        units = self.g2p(words)
        spans = [(s, e) for s, e, _ in frames]
        parts = self.phoneme_shares(units, features, spans, shares)
        word_out, phone_out = [], []
        for w, (word, (start, end, conf), unit, share) in enumerate(zip(words, frames, units, parts)):
            word_out.append(WordSpan(word, start / FPS, end / FPS, conf))
            edges = start + np.concatenate([[0.0], np.cumsum(share.double().numpy())]) * (end - start)
            edges[-1] = end
            phone_out.extend(PhonemeSpan(u, float(edges[k]) / FPS, float(edges[k + 1]) / FPS, conf, w)
                             for k, u in enumerate(unit))
        return Alignment(text=" ".join(words), words=tuple(word_out), phonemes=tuple(phone_out),
                         duration=features.shape[0] / FPS, frame_rate=float(FPS), language=self.language)

    @torch.no_grad()
    def align_roi(self, roi: Union[np.ndarray, torch.Tensor], text: str) -> Alignment:
        """:meth:`align` on ``(T, 96, 96)`` uint8 mouth crops (encoded alone, as transcription does)."""
        roi_t = torch.as_tensor(np.asarray(roi))
        if roi_t.dim() != 3 or roi_t.shape[0] == 0:
            raise InputError(f"expected one non-empty ROI clip of shape (T, H, W), got {tuple(roi_t.shape)}")
        return self.align(self.vsr.encode(roi_t.unsqueeze(0))[0], text)
