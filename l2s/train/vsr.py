"""Training stage ``vsr``: the lip reader (``auto-avsr``) with Auto-AVSR's hybrid CTC/attention recipe.

Random crop + horizontal flip + adaptive time masking, CTC weight and label smoothing
from the model config, length-bucketed batches, SpeechBrain checkpoints and resume,
and an evaluation step that writes WER/CER per split to ``<output_folder>/metrics.json``.
With ``lm_order`` > 0 a token n-gram language model is estimated from the training transcripts,
joins the test beam search with ``lm_weight`` and is exported with the model (``lm.json``).
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Mapping, Optional

import speechbrain as sb
import torch

from l2s.data.manifest import read_manifest
from l2s.errors import InputError
from l2s.models.vsr import VSRModel, build_vsr, save_vsr
from l2s.models.vsr.ngram_lm import NgramLM, NgramOptions
from l2s.models.vsr.roi_transforms import augment_roi, roi_to_input
from l2s.text.tokenizer import load_tokenizer
from l2s.train.brain import L2SBrain, fit_evaluate_export
from l2s.train.common import make_loader, model_config, unwrap

logger = logging.getLogger(__name__)

#: the architectures this stage trains
ARCHS = ("auto-avsr",)


class VSRBrain(L2SBrain):
    """Hybrid CTC/attention training of :class:`~l2s.models.vsr.VSRModel`."""

    eval_accumulators = ("wer_metric", "cer_metric")

    checkpoint_key = "WER"

    def compute_forward(self, batch, stage):
        roi = batch["roi"].to(self.device)
        lengths = batch["roi_lengths"].to(self.device)
        if stage == sb.Stage.TRAIN:
            video = augment_roi(roi, lengths, self.hparams.augment)
        else:
            video = roi_to_input(roi, lengths)
        out = self.modules.vsr(video, lengths, batch["tokens"].to(self.device))
        if stage != sb.Stage.TRAIN:
            size = self.hparams.valid_beam_size if stage == sb.Stage.VALID else self.hparams.test_beam_size
            self._score(video, lengths, batch, size)
        return out

    def _score(self, video, lengths, batch, beam_size: int):
        """Decode each clip alone (as inference does) and accumulate WER/CER; beam 0 = greedy CTC."""
        model: VSRModel = unwrap(self.modules.vsr)
        beam = model.beam_options(beam_size)
        with torch.no_grad():
            for i in range(video.shape[0]):
                n = int(lengths[i])
                feats = model.encode_video(video[i:i + 1, :n])[0]
                hyp = model.decode_features(feats, beam).text
                self.wer_metric.append([batch["id"][i]], [hyp.split()], [batch["text"][i].split()])
                self.cer_metric.append([batch["id"][i]], [list(hyp)], [list(batch["text"][i])])

    def compute_objectives(self, predictions, batch, stage):
        return predictions.total

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        if should_step:
            self.hparams.lr_annealing(self.optimizer)

    def on_stage_start(self, stage, epoch=None):
        if stage != sb.Stage.TRAIN:
            self.wer_metric = sb.utils.metric_stats.ErrorRateStats()
            self.cer_metric = sb.utils.metric_stats.ErrorRateStats()

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
    """Refuse a model or language-model settings that cannot work, before anything is written."""
    model_config(hparams, "vsr", ARCHS)
    lm_options(hparams)


def train(hparams: Dict[str, Any], run_opts: Dict[str, Any]) -> Dict[str, Any]:
    """Train, evaluate every test split with the best checkpoint, export the model directory."""
    _, config = model_config(hparams, "vsr", ARCHS)
    tokenizer = load_tokenizer(config.tokenizer, hparams.get("tokenizer_dir"))
    if tokenizer.vocab_size != config.vocab_size:
        raise ValueError(f"tokenizer has {tokenizer.vocab_size} tokens, model config {config.vocab_size}")
    model = build_vsr(config, tokenizer)
    options = lm_options(hparams)
    if options is not None:  # counted on the training transcripts
        model.lm = NgramLM.from_texts((u.text for u in read_manifest(hparams["train_manifest"]) if u.text),
                                      tokenizer, options)
    hparams["modules"] = {"vsr": model}
    checkpointer = sb.utils.checkpoints.Checkpointer(
        checkpoints_dir=hparams["save_folder"],
        recoverables={"vsr": model, "lr_annealing": hparams["lr_annealing"],
                      "counter": hparams["epoch_counter"]})
    brain = VSRBrain(modules={"vsr": model}, opt_class=hparams["opt_class"], hparams=hparams,
                     run_opts=run_opts, checkpointer=checkpointer)
    fields = ("id", "text", "roi", "tokens")
    pad = {"tokens": -1}
    train_loader = make_loader(hparams["train_manifest"], fields, hparams, True, tokenizer.encode, pad)
    valid_loader = make_loader(hparams["valid_manifest"], fields, hparams, False, tokenizer.encode, pad)
    return fit_evaluate_export(brain, hparams, "vsr", train_loader, valid_loader,
                               lambda m: make_loader(m, fields, hparams, False, tokenizer.encode, pad), save_vsr)
