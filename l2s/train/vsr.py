"""Training stage ``vsr``: the lip reader (``auto-avsr``) with Auto-AVSR's hybrid CTC/attention recipe.

Random crop + horizontal flip + adaptive time masking, CTC weight and label smoothing
from the model config, length-bucketed batches, SpeechBrain checkpoints and resume,
and an evaluation step that writes WER/CER per split to ``<output_folder>/metrics.json``.
With ``lm_order`` > 0 a token n-gram language model is estimated from the training transcripts,
joins the test beam search with ``lm_weight`` and is exported with the model (``lm.json``).

Options toward the viseme floor, all off by default (:class:`~l2s.train.vsr_objectives.Objectives`), each a
fine-tuning of a trained reader (``init_from``):

* ``phoneme_ctc_weight``: a phoneme CTC head on the encoder (VALLR's units), its targets the transcript's
  phonemes by :class:`~l2s.text.phonemes.G2P`, exported with the model;
* ``distill_*``: LIBS distillation from a frozen speech recogniser reading the paired audio
  (:mod:`l2s.train.distill`; ``distill_teacher`` is a CTC guide model directory);
* ``pcpg_*``: the CER-reward policy gradient on the attention decoder (:mod:`l2s.train.pcpg`);
* ``freeze_frontend``: the visual front-end frozen and its output computed once per clip
  (:mod:`l2s.train.frontend_cache`), which makes a fine-tuning epoch about ten times cheaper on a CPU;
* ``ema_decay``: validate, test and export an exponential moving average of the weights (Auto-AVSR averages
  its last checkpoints to the same end).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import replace
from typing import Any, Dict, Mapping, Optional

import speechbrain as sb
import torch

from l2s.arch import load_model
from l2s.data.manifest import read_manifest
from l2s.errors import InputError
from l2s.hub import component_dir
from l2s.models.guide.ctc import CTCGuide
from l2s.models.vsr import VSRModel, build_vsr, load_vsr, save_vsr
from l2s.models.vsr.lexicon import Lexicon, WordLM
from l2s.models.vsr.loss import IGNORE_ID
from l2s.models.vsr.ngram_lm import NgramLM, NgramOptions
from l2s.models.vsr.roi_transforms import augment_roi, roi_to_input
from l2s.text.phonemes import DEFAULT_INVENTORY
from l2s.text.tokenizer import load_tokenizer
from l2s.train.brain import L2SBrain, fit_evaluate_export
from l2s.train.common import check_ema_decay, frozen_model, make_loader, model_config, rank_and_world, unwrap
from l2s.train.distill import DistillHeads, ctc_guide_teacher, distill_loss
from l2s.train.ema import WeightEMA
from l2s.train.frontend_cache import FrontendCache
from l2s.train.pcpg import pcpg_loss
from l2s.train.vsr_objectives import Objectives, PhonemeTargets, objectives

logger = logging.getLogger(__name__)

#: the architectures this stage trains
ARCHS = ("auto-avsr",)


class VSRBrain(L2SBrain):
    """Hybrid CTC/attention training of :class:`~l2s.models.vsr.VSRModel`, with the auxiliary objectives
    of :class:`Objectives`."""

    eval_accumulators = ("wer_metric", "cer_metric")

    checkpoint_key = "WER"
    ema: Optional[WeightEMA] = None

    def on_fit_start(self):
        super().on_fit_start()
        obj: Objectives = self.hparams.objectives
        model: VSRModel = unwrap(self.modules.vsr)
        self.frontend_cache = (FrontendCache(model.frontend, self.hparams.augment, int(self.hparams.seed),
                                             obj.frontend_cache)
                               if obj.freeze_frontend else None)
        self.phoneme_targets = PhonemeTargets(model.inventory) if model.phoneme_ctc is not None else None
        self.pcpg_generator = torch.Generator().manual_seed(int(self.hparams.seed))
        self.aux_sums: Dict[str, float] = defaultdict(float)
        self.aux_batches = 0
        if obj.distill.sequence > 0:
            model.decoder.decoders[-1].src_attn.keep_attention = True

    def compute_forward(self, batch, stage):
        roi = batch["roi"].to(self.device)
        lengths = batch["roi_lengths"].to(self.device)
        train = stage == sb.Stage.TRAIN
        cache = getattr(self, "frontend_cache", None)
        frames, video = None, None
        if cache is not None:
            frames = cache(batch["id"], roi, lengths, train).to(self.device)
        elif train:
            video = augment_roi(roi, lengths, self.hparams.augment)
        else:
            video = roi_to_input(roi, lengths)
        phonemes = None
        if train and getattr(self, "phoneme_targets", None) is not None:
            phonemes = self.phoneme_targets(batch["text"]).to(self.device)
        # evaluation reads the weight average when there is one
        module = self.modules.vsr if train or self.ema is None else self.ema.averaged(unwrap(self.modules.vsr))
        out = module(video, lengths, batch["tokens"].to(self.device), phonemes, frames)
        if not train:
            size = self.hparams.valid_beam_size if stage == sb.Stage.VALID else self.hparams.test_beam_size
            self._score(unwrap(module), video, frames, lengths, batch, size)
        return out

    def _score(self, model: VSRModel, video, frames, lengths, batch, beam_size: int):
        """Decode each clip alone (as inference does) and accumulate WER/CER; beam 0 = greedy CTC."""
        beam = model.beam_options(beam_size)
        with torch.no_grad():
            for i in range(lengths.shape[0]):
                n = int(lengths[i])
                if frames is not None:
                    feats = model.encode_frames(frames[i:i + 1, :n])[0]
                else:
                    feats = model.encode_video(video[i:i + 1, :n])[0]
                hyp = model.decode_features(feats, beam).text
                self.wer_metric.append([batch["id"][i]], [hyp.split()], [batch["text"][i].split()])
                self.cer_metric.append([batch["id"][i]], [list(hyp)], [list(batch["text"][i])])

    def compute_objectives(self, predictions, batch, stage):
        if stage != sb.Stage.TRAIN:
            return predictions.total  # the hybrid loss alone: comparable between runs
        obj: Objectives = self.hparams.objectives
        total = predictions.total
        parts: Dict[str, float] = {}
        if predictions.phoneme is not None and obj.phoneme_weight > 0:
            total = total + obj.phoneme_weight * predictions.phoneme
            parts["phoneme_ctc"] = float(predictions.phoneme.detach())
        model: VSRModel = unwrap(self.modules.vsr)
        lengths = batch["roi_lengths"].to(self.device)
        if obj.distill.active:
            total = total + self._distill(predictions, batch, lengths, parts)
        if obj.pcpg.weight > 0:
            labels = batch["tokens"]
            refs = [[int(t) for t in row if int(t) != IGNORE_ID] for row in labels]
            loss, cer = pcpg_loss(model.decoder, predictions.features, lengths, refs, model.sos, model.eos,
                                  obj.pcpg, self.pcpg_generator)
            total = total + obj.pcpg.weight * loss
            parts.update(pcpg=float(loss.detach()), sample_cer=cer)
        for key, value in parts.items():
            self.aux_sums[key] += value
        self.aux_batches += 1
        return total

    def _distill(self, predictions, batch, lengths, parts: Dict[str, float]) -> torch.Tensor:
        obj: Objectives = self.hparams.objectives
        model: VSRModel = unwrap(self.modules.vsr)
        mel = batch["mel"].to(self.device).transpose(1, 2)
        teacher = ctc_guide_teacher(self.hparams.teacher, mel, batch["mel_lengths"].to(self.device), lengths,
                                    predictions.features.shape[1])
        attention = token_mask = None
        if obj.distill.sequence > 0:
            attention = model.decoder.decoders[-1].src_attn.attn.mean(1)  # (B, L + 1, T)
            labels = batch["tokens"].to(self.device)
            n = (labels != IGNORE_ID).sum(1)
            token_mask = torch.arange(labels.shape[1] + 1, device=self.device)[None, :] <= n[:, None]
        loss, terms = distill_loss(obj.distill, self.modules.distill, teacher, predictions.features,
                                   predictions.ctc_log_probs, predictions.decoder_hidden, attention, token_mask)
        parts.update(terms)
        return loss

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        if should_step:
            self.hparams.lr_annealing(self.optimizer)
            if self.ema is not None:
                self.ema.update(unwrap(self.modules.vsr))

    def on_stage_start(self, stage, epoch=None):
        if stage != sb.Stage.TRAIN:
            self.wer_metric = sb.utils.metric_stats.ErrorRateStats()
            self.cer_metric = sb.utils.metric_stats.ErrorRateStats()
        else:
            self.aux_sums = defaultdict(float)
            self.aux_batches = 0

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            super().on_stage_end(stage, stage_loss, epoch)
            for key, value in self.aux_sums.items():  # each auxiliary term's epoch mean, in the train log
                self.train_stats[key] = value / max(1, self.aux_batches)
            return
        super().on_stage_end(stage, stage_loss, epoch)

    def eval_stats(self, stage):
        return {"WER": self.wer_metric.summarize("error_rate"), "CER": self.cer_metric.summarize("error_rate")}


def lm_options(hparams: Mapping[str, Any]) -> Optional[NgramOptions]:
    """The recipe's language-model settings (``lm_order``, ``lm_weight``, ``lm_discount``); None for
    ``lm_order`` 0 (no language model).

    Raises:
        InputError: settings that cannot work.
    """
    order = hparams.get("lm_order", 0) or 0
    if isinstance(order, bool) or not isinstance(order, int) or order < 0:
        raise InputError(f"lm_order must be an integer >= 0 (0: no language model), got {order!r}")
    if order == 0:
        return None
    settings = {"order": order, "weight": hparams.get("lm_weight", 0.0) or 0.0}
    if hparams.get("lm_discount") is not None:  # else NgramOptions' default
        settings["discount"] = hparams.get("lm_discount")
    try:
        return NgramOptions(**{k: v if k == "order" else float(v) for k, v in settings.items()})
    except (TypeError, ValueError) as exc:
        raise InputError(f"bad language-model settings: {exc}") from None


def check_hparams(hparams: Mapping[str, Any]) -> None:
    """Refuse a model, language-model or objective settings that cannot work, before anything is written."""
    obj = objectives(hparams)
    model_config(hparams, "vsr", ARCHS, derived={"phoneme_vocab": len(DEFAULT_INVENTORY) if obj.phoneme_weight else 0})
    lm_options(hparams)
    check_ema_decay(hparams)


def _start_weights(model: VSRModel, source: str) -> None:
    """Copy a trained reader's weights into ``model`` (``init_from``): the same architecture, except that
    either may have a phoneme head the other lacks (it then starts untrained, or is dropped).

    Raises:
        InputError: the architectures differ.
    """
    src = load_vsr(component_dir(source, "vsr"))
    mine = replace(model.config, phoneme_vocab=0)
    theirs = replace(src.config, phoneme_vocab=0)
    if mine != theirs:
        fields = [k for k in vars(mine) if getattr(mine, k) != getattr(theirs, k)]
        raise InputError(f"init_from {source}: another architecture (differs in {', '.join(fields)}); set the "
                         f"recipe's preset/model to the source's")
    state = {k: v for k, v in src.state_dict().items()
             if not k.startswith("phoneme_ctc.") or src.config.phoneme_vocab == model.config.phoneme_vocab}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("phoneme_ctc.") for k in missing):
        raise InputError(f"init_from {source}: weights do not fit ({missing + unexpected})")
    logger.info("weights from %s (%s)", source, "the phoneme head starts untrained" if missing else "all")


def train(hparams: Dict[str, Any], run_opts: Dict[str, Any]) -> Dict[str, Any]:
    """Train, evaluate every test split with the best checkpoint, export the model directory."""
    obj = objectives(hparams)
    if obj.auxiliary and rank_and_world()[1] > 1:
        raise InputError("freeze_frontend, distillation and PCPG run in one process: start without torchrun")
    phoneme_vocab = len(DEFAULT_INVENTORY) if obj.phoneme_weight > 0 else 0
    _, config = model_config(hparams, "vsr", ARCHS, derived={"phoneme_vocab": phoneme_vocab})
    tokenizer = load_tokenizer(config.tokenizer, hparams.get("tokenizer_dir"))
    if tokenizer.vocab_size != config.vocab_size:
        raise ValueError(f"tokenizer has {tokenizer.vocab_size} tokens, model config {config.vocab_size}")
    model = build_vsr(config, tokenizer)
    if obj.init_from:
        _start_weights(model, obj.init_from)
    if obj.freeze_frontend:
        model.frontend.requires_grad_(False)
    options = lm_options(hparams)
    texts = [u.text for u in read_manifest(hparams["train_manifest"]) if u.text]
    if options is not None:  # counted on the training transcripts
        model.lm = NgramLM.from_texts(texts, tokenizer, options)
    if model.phoneme_ctc is not None:  # what reads the phoneme head into words, from the same transcripts
        model.lexicon = Lexicon.from_texts(texts, inventory=model.inventory)
        model.word_lm = WordLM.from_texts(texts)
    modules: Dict[str, torch.nn.Module] = {"vsr": model}
    recoverables: Dict[str, Any] = {"vsr": model, "lr_annealing": hparams["lr_annealing"],
                                    "counter": hparams["epoch_counter"]}
    fields = ["id", "text", "roi", "tokens"]
    pad = {"tokens": -1}
    hparams["objectives"] = obj
    if obj.distill.active:
        teacher = load_model(component_dir(obj.distill_teacher, "guide"), "guide")
        if not isinstance(teacher, CTCGuide):
            raise InputError(f"distill_teacher {obj.distill_teacher}: not a CTC guide (arch ctc)")
        hparams["teacher"] = frozen_model(teacher, run_opts.get("device", "cpu"))  # beside the batches it reads
        modules["distill"] = recoverables["distill"] = DistillHeads(config.d_model, teacher.config.d_model)
        fields.append("mel")
        pad["mel"] = -1.0
    hparams["modules"] = modules
    checkpointer = sb.utils.checkpoints.Checkpointer(checkpoints_dir=hparams["save_folder"],
                                                     recoverables=recoverables)
    decay = hparams.get("ema_decay")
    # copied after the language model and lexicon are attached, so the average carries them into the export
    ema = WeightEMA(model, float(decay)).to(run_opts.get("device", "cpu")) if decay is not None else None
    if ema is not None:  # a checkpoint without it (an older run resumed) starts the average from its weights
        checkpointer.add_recoverable("ema", ema, optional_load=True)
    brain = VSRBrain(modules=modules, opt_class=hparams["opt_class"], hparams=hparams,
                     run_opts=run_opts, checkpointer=checkpointer)
    brain.ema = ema
    train_loader = make_loader(hparams["train_manifest"], fields, hparams, True, tokenizer.encode, pad)
    valid_loader = make_loader(hparams["valid_manifest"], fields, hparams, False, tokenizer.encode, pad)
    return fit_evaluate_export(brain, hparams, "vsr", train_loader, valid_loader,
                               lambda m: make_loader(m, fields, hparams, False, tokenizer.encode, pad), save_vsr,
                               exported=(lambda: ema.averaged(model)) if ema is not None else None)
