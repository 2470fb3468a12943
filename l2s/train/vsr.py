"""Training stage ``vsr``: the lip reader with Auto-AVSR's hybrid CTC/attention recipe.

Random crop + horizontal flip + adaptive time masking, CTC weight and label smoothing
from the model config, length-bucketed batches, SpeechBrain checkpoints and resume,
and an evaluation step that writes WER/CER per split to ``<output_folder>/metrics.json``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Dict, Mapping

import speechbrain as sb
import torch

from l2s.config import VSR_PRESETS, VSRConfig
from l2s.models.decoding import BeamSearchOptions
from l2s.models.roi_transforms import augment_roi, roi_to_input
from l2s.models.vsr import VSRModel, build_vsr, save_vsr
from l2s.text.tokenizer import load_tokenizer
from l2s.train.common import make_loader, rank_digests, unwrap, weight_digest, write_metrics
from l2s.train.brain import L2SBrain

logger = logging.getLogger(__name__)


def vsr_config(preset: str, overrides: Mapping[str, Any] = None) -> VSRConfig:
    """A size preset with recipe overrides (used from YAML: ``!apply:l2s.train.vsr.vsr_config``)."""
    base = VSR_PRESETS[preset]
    return VSRConfig.from_dict({**base.__dict__, **dict(overrides or {})})


class VSRBrain(L2SBrain):
    """Hybrid CTC/attention training of :class:`~l2s.models.vsr.VSRModel`."""

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
        beam = None if beam_size <= 0 else BeamSearchOptions(beam_size=beam_size,
                                                             ctc_weight=model.config.ctc_weight)
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

    def on_stage_end(self, stage, stage_loss, epoch=None):
        stats = {"loss": stage_loss}
        if stage != sb.Stage.TRAIN:
            stats["WER"] = self.wer_metric.summarize("error_rate")
            stats["CER"] = self.cer_metric.summarize("error_rate")
        if stage == sb.Stage.TRAIN:
            self.train_stats = stats
        elif stage == sb.Stage.VALID:
            lr = self.optimizer.param_groups[0]["lr"]
            self.hparams.train_logger.log_stats({"epoch": epoch, "lr": lr}, train_stats=self.train_stats,
                                                valid_stats=stats)
            self.checkpointer.save_and_keep_only(meta={"WER": stats["WER"]}, min_keys=["WER"])
        else:
            self.test_stats = stats


def train(hparams: Dict[str, Any], run_opts: Dict[str, Any]) -> Dict[str, Any]:
    """Train, evaluate every test split with the best checkpoint, export the model directory."""
    config: VSRConfig = hparams["model_config"]
    tokenizer = load_tokenizer(config.tokenizer, hparams.get("tokenizer_dir"))
    if tokenizer.vocab_size != config.vocab_size:
        raise ValueError(f"tokenizer has {tokenizer.vocab_size} tokens, model config {config.vocab_size}")
    model = build_vsr(config, tokenizer)
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
    brain.train_sampler = train_loader.batch_sampler
    initial = weight_digest(model)
    started = time.time()
    brain.fit(brain.hparams.epoch_counter, train_loader, valid_loader)
    train_seconds = time.time() - started
    results: Dict[str, Any] = {"train_seconds": train_seconds, "initial_weight_digest": initial,
                               "rank_weight_digests": rank_digests(unwrap(brain.modules.vsr))}
    for split, manifest in (hparams.get("test_manifests") or {}).items():
        loader = make_loader(manifest, fields, hparams, False, tokenizer.encode, pad)
        brain.evaluate(loader, min_key="WER")
        results[split] = {"WER": brain.test_stats["WER"], "CER": brain.test_stats["CER"]}
    if sb.utils.distributed.if_main_process():
        out = Path(hparams["output_folder"])
        save_vsr(unwrap(brain.modules.vsr).cpu(), out / "model")
        write_metrics(out / "metrics.json", results)
    return results
