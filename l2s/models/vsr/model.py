"""The lip reader: Auto-AVSR's VSR model (Ma et al. 2023, "Auto-AVSR: audio-visual speech recognition with
automatic labels"), reimplemented.

``video (B, T, 88, 88) -> Conv3dResNet -> proj_encoder -> ConformerEncoder -> features (B, T, D)``, then a
CTC head (``ctc.ctc_lo``) and an attention decoder, trained with the hybrid loss of
:mod:`l2s.models.vsr.loss` and decoded with :mod:`l2s.models.vsr.decoding`. With ``VSR_BASE`` the state_dict
keys are exactly Auto-AVSR's (see :mod:`l2s.models.vsr.convert`).

Generators use :meth:`VSRModel.encode`; text comes from :meth:`VSRModel.transcribe`. A checkpoint is an
:mod:`l2s.hub` directory of kind ``vsr``, arch ``auto-avsr`` (:data:`ARCHITECTURE`; :func:`save_vsr` /
:func:`load_vsr`); its tokenizer files and an optional token n-gram language model
(:mod:`l2s.models.vsr.ngram_lm`, ``lm.json``) travel in it, and the model joins the beam search through
:meth:`VSRModel.beam_options`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import torch
from torch import nn

from l2s.arch import Architecture, load_model, save_model
from l2s.errors import InputError, ModelError
from l2s.models.vsr.conformer import ConformerEncoder
from l2s.models.vsr.decoding import BeamSearchOptions, Hypothesis, LanguageModel, beam_search, greedy_ctc
from l2s.models.vsr.frontend import Conv3dResNet
from l2s.models.vsr.lexicon import LEXICON_FILE, WORD_LM_FILE, Lexicon, WordLM
from l2s.models.vsr.loss import VSRLoss, add_sos_eos, ctc_loss, hybrid_loss
from l2s.models.vsr.ngram_lm import LM_FILE, NgramLM, load_lm, save_lm
from l2s.models.vsr.roi_transforms import roi_to_input
from l2s.models.vsr.transformer_decoder import TransformerDecoder
from l2s.text.phonemes import DEFAULT_INVENTORY, INVENTORY_FILE, PhonemeInventory
from l2s.text.tokenizer import Tokenizer, load_tokenizer, tokenizer_files


@dataclass(frozen=True)
class VSRConfig:
    """Hyper-parameters of the lip-reading model (:class:`VSRModel`).

    ``VSR_BASE`` is Auto-AVSR's VSR model (its checkpoints load into it unchanged);
    ``VSR_TINY`` is the same code with numbers small enough to train on a 2-core CPU.

    Attributes:
        vocab_size: output tokens ``V`` (blank = 0, sos = eos = V - 1).
        frontend_widths: channels of the stem and the four ResNet-18 stages.
        frontend_blocks: BasicBlocks per ResNet stage.
        d_model: width ``D`` of the encoder and decoder (the visual features).
        heads: attention heads (encoder and decoder).
        encoder_ffn: hidden units of the conformer feed-forward modules.
        encoder_layers: conformer blocks.
        conv_kernel: depthwise kernel of the conformer convolution module (odd).
        decoder_ffn: hidden units of the decoder feed-forward modules.
        decoder_layers: transformer decoder blocks.
        dropout: dropout of the encoder blocks, the decoder and the CTC head.
        pos_dropout: dropout after the positional encodings.
        attention_dropout: dropout on the encoder attention weights.
        decoder_attention_dropout: dropout on the decoder attention weights.
        mask_conv_padding: zero padded frames before the depthwise convolution; off in
            Auto-AVSR (padded frames then leak into the last valid ones in a batch).
        ctc_weight: weight of the CTC loss (and of the CTC score in beam search).
        label_smoothing: smoothing of the attention (decoder) loss.
        tokenizer: ``"char"`` or ``"sentencepiece"``.
        phoneme_vocab: units of an extra phoneme CTC head on the encoder (VALLR's phoneme units; the
            table, :data:`l2s.text.phonemes.DEFAULT_INVENTORY` when trained by l2s, is stored beside the
            weights as ``phonemes.txt``); 0 = no such head (Auto-AVSR's model).
    """

    vocab_size: int = 5049
    frontend_widths: Tuple[int, ...] = (64, 128, 256, 512)
    frontend_blocks: Tuple[int, ...] = (2, 2, 2, 2)
    d_model: int = 768
    heads: int = 12
    encoder_ffn: int = 3072
    encoder_layers: int = 12
    conv_kernel: int = 31
    decoder_ffn: int = 3072
    decoder_layers: int = 6
    dropout: float = 0.1
    pos_dropout: float = 0.1
    attention_dropout: float = 0.0
    decoder_attention_dropout: float = 0.1
    mask_conv_padding: bool = False
    ctc_weight: float = 0.1
    label_smoothing: float = 0.1
    tokenizer: str = "sentencepiece"
    phoneme_vocab: int = 0


VSR_BASE = VSRConfig()
# 31 = the character vocabulary of l2s.text.CharTokenizer (checked by tests/test_vsr_tokenizer.py).
VSR_TINY = VSRConfig(vocab_size=31, frontend_widths=(16, 32, 64, 128), d_model=128, heads=4,
                     encoder_ffn=512, encoder_layers=4, conv_kernel=15, decoder_ffn=512,
                     decoder_layers=2, tokenizer="char")
#: narrower still: tests that push minutes of input through a pipeline
VSR_MICRO = replace(VSR_TINY, frontend_widths=(8, 8, 16, 32), d_model=32, heads=2, encoder_ffn=64, encoder_layers=1,
                    decoder_ffn=64, decoder_layers=1, conv_kernel=7)
VSR_PRESETS = {"base": VSR_BASE, "tiny": VSR_TINY, "micro": VSR_MICRO}


@dataclass(frozen=True)
class TranscriptionResult:
    """Text read from one clip.

    Attributes:
        text: decoded text (lower case for the l2s tokenizers; ids joined by spaces without a tokenizer).
        token_ids: emitted token ids (no sos/eos).
        tokens: their strings ('' without a tokenizer).
        confidences: per-token probability: the decoder's under teacher forcing (beam search), or the
            best frame's CTC posterior (greedy).
        score: the search score of the hypothesis (beam), or the summed log-confidences (greedy).
    """

    text: str
    token_ids: Tuple[int, ...]
    tokens: Tuple[str, ...]
    confidences: Tuple[float, ...]
    score: float


class CTCHead(nn.Module):
    """Dropout then ``ctc_lo`` (Linear D -> V); returns log-probabilities ``(B, T, V)``."""

    def __init__(self, dim: int, vocab_size: int, dropout: float) -> None:
        super().__init__()
        self.ctc_lo = nn.Linear(dim, vocab_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.ctc_lo(self.dropout(features)), dim=-1)


def padding_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """``(B, T)`` bool, True on the valid frames."""
    return torch.arange(frames, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class VSRModel(nn.Module):
    """Hybrid CTC/attention lip reader.

    Args:
        config: sizes (:data:`VSR_BASE` / :data:`VSR_TINY`).
        tokenizer: maps token ids to text (optional; :func:`load_vsr` attaches the checkpoint's).
    """

    def __init__(self, config: VSRConfig, tokenizer: Optional[Tokenizer] = None) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer
        self.frontend = Conv3dResNet(config.frontend_widths, config.frontend_blocks)
        self.proj_encoder = nn.Linear(self.frontend.out_dim, config.d_model)
        self.encoder = ConformerEncoder(config.d_model, config.heads, config.encoder_ffn, config.encoder_layers,
                                        config.conv_kernel, config.dropout, config.pos_dropout,
                                        config.attention_dropout, config.mask_conv_padding)
        self.decoder = TransformerDecoder(config.vocab_size, config.d_model, config.heads, config.decoder_ffn,
                                          config.decoder_layers, config.dropout, config.decoder_attention_dropout)
        self.ctc = CTCHead(config.d_model, config.vocab_size, config.dropout)
        #: phoneme CTC head (``config.phoneme_vocab`` units, blank 0) and its table, or None
        self.phoneme_ctc = (CTCHead(config.d_model, config.phoneme_vocab, config.dropout)
                            if config.phoneme_vocab else None)
        self.inventory: Optional[PhonemeInventory] = DEFAULT_INVENTORY if config.phoneme_vocab else None
        #: words and pronunciations, and the word n-gram LM, that read the phoneme head into words
        #: (:mod:`l2s.models.vsr.reading`; ``lexicon.txt`` and ``word_lm.json`` beside the weights), or None
        self.lexicon: Optional[Lexicon] = None
        self.word_lm: Optional[WordLM] = None
        self.blank = 0
        self.sos = self.eos = config.vocab_size - 1
        #: language model of the beam search (:func:`load_vsr` attaches a checkpoint's ``lm.json``).
        self.lm: Optional[NgramLM] = None

    def beam_options(self, beam_size: int, lm_weight: Optional[float] = None) -> Optional[BeamSearchOptions]:
        """Search settings of this model: None (greedy CTC) for ``beam_size`` 0, else the joint search
        with the model's CTC weight and, when a language model is attached, its recommended weight
        (``lm_weight`` overrides it; 0 turns the language model off)."""
        if beam_size <= 0:
            return None
        if lm_weight is None:
            lm_weight = self.lm.options.weight if self.lm is not None else 0.0
        return BeamSearchOptions(beam_size=beam_size, ctc_weight=self.config.ctc_weight, lm_weight=lm_weight)

    @property
    def feature_dim(self) -> int:
        """Width ``D`` of :meth:`encode`'s features."""
        return self.config.d_model

    def encode_video(self, video: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Features of model-ready video.

        Args:
            video: ``(B, T, 88, 88)`` (or ``(B, T, 1, 88, 88)``) normalised frames, zero past each length.
            lengths: ``(B,)`` valid frames, or None when no clip is padded.

        Returns:
            ``(B, T, D)`` encoder output.
        """
        return self.encode_frames(self.frontend(video), lengths)

    def encode_frames(self, frames: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The encoder over the visual front-end's output ``(B, T, F)`` (:attr:`frontend`), ``(B, T, D)``:
        what a fine-tuning run with a frozen front-end trains on."""
        x = self.proj_encoder(frames)
        mask = None if lengths is None else padding_mask(lengths.to(x.device), x.shape[1])
        return self.encoder(x, mask)

    def encode(self, roi: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Visual features of mouth ROIs, the input of the generators.

        Args:
            roi: ``(B, T, 96, 96)`` grayscale ROI, uint8 (or float in [0, 1]), as :mod:`l2s.vision` gives.
            lengths: ``(B,)`` valid frames, or None.

        Returns:
            ``(B, T, D)`` features at the video frame rate.
        """
        if roi.dim() != 4:
            raise InputError(f"expected ROI of shape (B, T, H, W), got {tuple(roi.shape)}")
        device = next(self.parameters()).device
        return self.encode_video(roi_to_input(roi.to(device), lengths), lengths)

    def forward(self, video: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor,
                phoneme_labels: Optional[torch.Tensor] = None, frames: Optional[torch.Tensor] = None) -> VSRLoss:
        """Training loss (Auto-AVSR's ``E2E.forward``), with the tensors the auxiliary losses read.

        Args:
            video: ``(B, T, 88, 88)`` normalised (augmented) frames (ignored when ``frames`` is given).
            lengths: ``(B,)`` valid frames.
            labels: ``(B, L)`` token ids padded with -1.
            phoneme_labels: ``(B, P)`` phoneme ids padded with -1, for the phoneme CTC head (when it exists).
            frames: ``(B, T, F)`` the front-end's output computed beforehand (a frozen front-end), or None.
        """
        features = self.encode_frames(self.frontend(video) if frames is None else frames, lengths)
        ys_in, ys_out = add_sos_eos(labels, self.sos, self.eos)
        mask = padding_mask(lengths.to(features.device), features.shape[1])
        hidden = self.decoder.hidden(ys_in, features, mask)
        ctc_log_probs = self.ctc(features)
        loss = hybrid_loss(ctc_log_probs, lengths, labels, self.decoder.output_layer(hidden), ys_out,
                           self.config.ctc_weight, self.config.label_smoothing, self.blank)
        phoneme = None
        if phoneme_labels is not None and self.phoneme_ctc is not None:
            phoneme = ctc_loss(self.phoneme_ctc(features), lengths, phoneme_labels, self.blank)
        return replace(loss, phoneme=phoneme, features=features, ctc_log_probs=ctc_log_probs,
                       decoder_hidden=hidden)

    def phoneme_log_probs(self, features: torch.Tensor) -> torch.Tensor:
        """``(..., T, P)`` log-probabilities of the phoneme head over encoder features ``(..., T, D)``.

        Raises:
            ModelError: the model has no phoneme head.
        """
        if self.phoneme_ctc is None:
            raise ModelError("this lip reader has no phoneme CTC head (train one with phoneme_ctc_weight > 0)")
        return self.phoneme_ctc(features)

    @torch.no_grad()
    def transcribe(self, roi: torch.Tensor, beam: Optional[BeamSearchOptions] = BeamSearchOptions(),
                   lm: Optional[LanguageModel] = None) -> TranscriptionResult:
        """Read one clip (encoded alone, unmasked, as Auto-AVSR's inference does).

        Args:
            roi: ``(T, 96, 96)`` grayscale ROI, uint8 (or float in [0, 1]).
            beam: joint CTC/attention beam search settings; None for greedy CTC.
            lm: language model for the beam search (default: the attached one, :attr:`lm`); it counts
                only when ``beam.lm_weight`` is not 0.
        """
        if roi.dim() != 3 or roi.shape[0] == 0:
            raise InputError(f"expected one non-empty ROI clip of shape (T, H, W), got {tuple(roi.shape)}")
        return self.decode_features(self.encode(roi.unsqueeze(0))[0], beam, lm)

    @torch.no_grad()
    def decode_features(self, features: torch.Tensor, beam: Optional[BeamSearchOptions] = BeamSearchOptions(),
                        lm: Optional[LanguageModel] = None) -> TranscriptionResult:
        """Decode one utterance's encoder output ``(T, D)`` (see :meth:`transcribe`)."""
        if beam is None:
            log_probs = self.ctc(features.unsqueeze(0))[0]
            ids = greedy_ctc(log_probs, self.blank)
            confidences = self._ctc_confidences(log_probs)
            score = sum(math.log(c) for c in confidences)
        else:
            best = self.beam_hypotheses(features, beam, lm)[0]
            ids, score = best.token_ids, best.score
            confidences = self._decoder_confidences(features, ids)
        tokens = tuple(self.tokenizer.token_list[i] for i in ids) if self.tokenizer else ("",) * len(ids)
        text = self.tokenizer.decode(ids) if self.tokenizer else " ".join(map(str, ids))
        return TranscriptionResult(text=text, token_ids=tuple(ids), tokens=tokens,
                                   confidences=tuple(confidences), score=score)

    @torch.no_grad()
    def beam_hypotheses(self, features: torch.Tensor, beam: BeamSearchOptions,
                        lm: Optional[LanguageModel] = None) -> List[Hypothesis]:
        """The joint CTC/attention search's ended hypotheses for one utterance's encoder output ``(T, D)``, best
        first (its n-best; ``lm``: as :meth:`transcribe`)."""
        log_probs = self.ctc(features.unsqueeze(0))[0] if beam.ctc_weight > 0 else None
        return beam_search(self.decoder, features, log_probs, self.sos, self.eos, self.blank, beam,
                           lm if lm is not None else self.lm)

    def _ctc_confidences(self, log_probs: torch.Tensor) -> List[float]:
        """Per emitted token: the highest posterior over the frames of its run in the best path."""
        best = log_probs.argmax(-1).tolist()
        out: List[float] = []
        for t, tok in enumerate(best):
            if tok == self.blank:
                continue
            p = float(log_probs[t, tok].exp())
            if t > 0 and best[t - 1] == tok:
                out[-1] = max(out[-1], p)
            else:
                out.append(p)
        return out

    def _decoder_confidences(self, features: torch.Tensor, ids: List[int]) -> List[float]:
        ys_in = torch.tensor([[self.sos] + list(ids)], device=features.device)
        probs = torch.softmax(self.decoder(ys_in, features.unsqueeze(0))[0], dim=-1)  # (L + 1, V)
        return [float(probs[k, tok]) for k, tok in enumerate(ids)]


def build_vsr(config: VSRConfig, tokenizer: Optional[Tokenizer] = None,
              device: Optional[Union[str, torch.device]] = None) -> VSRModel:
    """Build a model (``device="meta"`` builds shapes only, without allocating weights)."""
    if device is None:
        return VSRModel(config, tokenizer)
    with torch.device(device):
        return VSRModel(config, tokenizer)


def _with_tokenizer(config: VSRConfig) -> VSRModel:
    """An untrained model with the tokenizer its config names, when that needs no files (characters)."""
    return VSRModel(config, load_tokenizer(config.tokenizer))


def _load(config: VSRConfig, stored) -> VSRModel:
    """The weights of a model directory, with its tokenizer files and its language model (``lm.json``)."""
    model = VSRModel(config, load_tokenizer(config.tokenizer, stored.path))
    model.load_state_dict(stored.state_dict, strict=True)
    if config.phoneme_vocab:
        model.inventory = PhonemeInventory.load(stored.path / INVENTORY_FILE)
        if len(model.inventory) != config.phoneme_vocab:
            raise ModelError(f"{stored.path / INVENTORY_FILE}: {len(model.inventory)} phonemes, the model's head "
                             f"has {config.phoneme_vocab}")
        if (stored.path / LEXICON_FILE).is_file():
            model.lexicon = Lexicon.load(stored.path / LEXICON_FILE, model.inventory)
        if (stored.path / WORD_LM_FILE).is_file():
            model.word_lm = WordLM.load(stored.path / WORD_LM_FILE)
    if (stored.path / LM_FILE).is_file():
        model.lm = check_lm(load_lm(stored.path / LM_FILE), model, stored.path / LM_FILE)
    return model


def _files(model: VSRModel, scratch: Path) -> Dict[str, Path]:
    """The tokenizer files, the language model, the phoneme table and lexicon saved beside the weights."""
    extra = tokenizer_files(model.tokenizer) if model.tokenizer is not None else {}
    if model.lm is not None:
        extra[LM_FILE] = save_lm(model.lm, scratch / LM_FILE)
    if model.inventory is not None:
        extra[INVENTORY_FILE] = model.inventory.save(scratch / INVENTORY_FILE)
    if model.lexicon is not None:
        extra[LEXICON_FILE] = model.lexicon.save(scratch / LEXICON_FILE)
    if model.word_lm is not None:
        extra[WORD_LM_FILE] = model.word_lm.save(scratch / WORD_LM_FILE)
    return extra


ARCHITECTURE = Architecture(family="vsr", name="auto-avsr", model_cls=VSRModel, config_cls=VSRConfig,
                            presets=VSR_PRESETS, init=_with_tokenizer, load=_load, files=_files,
                            description="Auto-AVSR's hybrid CTC/attention lip reader (ResNet-18 + conformer)")


def save_vsr(model: VSRModel, path: Union[str, Path]) -> Path:
    """Write ``model`` (config, weights, tokenizer files, its language model if any) as an l2s model directory."""
    return save_model(model, path, "vsr")


def load_vsr(path: Union[str, Path], device: Union[str, torch.device] = "cpu") -> VSRModel:
    """A lip reader from a model directory (name, path or hub id; see :func:`l2s.hub.resolve`).

    Returns:
        The model in eval mode, with its tokenizer attached (None for a SentencePiece model saved
        without its tokenizer files) and its language model (``lm.json``) when the directory has one.
    """
    return load_model(path, "vsr", device)


def check_lm(lm: NgramLM, model: VSRModel, where: Union[str, Path]) -> NgramLM:
    """``lm`` if it speaks ``model``'s vocabulary.

    Raises:
        ModelError: the vocabulary size or the sos/eos ids differ.
    """
    if (lm.vocab_size, lm.sos, lm.eos) != (model.config.vocab_size, model.sos, model.eos):
        raise ModelError(f"{where}: language model over {lm.vocab_size} tokens (sos {lm.sos}), the lip reader "
                         f"has {model.config.vocab_size} (sos {model.sos})")
    return lm
