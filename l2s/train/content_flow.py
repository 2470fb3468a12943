"""Training stage ``generator``, architecture ``content-flow``: the content decoder and its flow refiner.

The conditions of each clip come from the frozen stages before the generator, computed once per utterance
and alone, exactly as at inference (the lip reader encodes the clip, the prior synthesises its coarse mel
with a seed fixed per utterance, the aligner places the clip's **true transcript** on the frames with the
lip reader's own timing, :meth:`l2s.align.aligner.Aligner.align`), so training and inference see the same
timing jitter. The model is :class:`~l2s.models.generator.content_flow.ContentFlow`; its phoneme inventory,
feature width and log-F0 statistics follow the aligner, the lip reader and the prior.

Objective, per batch, both networks at once:

* the content decoder's mean, ``mean = prior + decoder(c)``: masked L1 against the mel (``loss_mean``);
* the refiner, on the mean (detached): conditional flow matching from ``x_0 = mean + sigma z`` to the mel,
  ``t ~ U[0, 1]``, ``x_t = (1 - t) x_0 + t mel``; masked L1 of its clean estimate against the mel
  (``loss_refiner``), with the content condition dropped per item with probability ``content_dropout``.

Evaluation reports ``mean_l1``, ``mean_rms`` (the RMS error of the mean: ``sigma`` should be about twice it),
``prior_l1``, the refiner's L1 at a few fixed times with seeded noise (``refiner_l1_t<t>``), and the L1 of
a seeded few-step sample (``sample_l1``); ``loss`` (the checkpoint key) is ``mean_l1`` plus the mean of the
fixed-time refiner losses. Sampling-based metrics (WER...) belong to the benchmark.
"""

from __future__ import annotations

import math
import zlib
from typing import Any, Dict, List, Mapping, Optional

import speechbrain as sb
import torch

from l2s.arch import load_model, save_model
from l2s.config import MEL_FRAMES_PER_VIDEO_FRAME
from l2s.diffusion.flow import FlowSettings, flow_sample, path_point, source_sample
from l2s.diffusion.sampler import GaussianNoise
from l2s.errors import InputError
from l2s.features.mel import mel_mask
from l2s.models.generator.content_flow import ContentFlow, ContentInputs, frame_scalars
from l2s.train.brain import L2SBrain, fit_evaluate_export
from l2s.train.common import check_ema_decay, frozen_model, make_loader, masked_l1, model_config, unwrap
from l2s.train.ema import WeightEMA


FIELDS = ("id", "roi", "mel", "text")
PAD = {"mel": -1.0}
ARCHS = ("content-flow",)
#: fields the stage sets itself from the frozen stages
DERIVED = ("feature_dim", "phonemes", "log_f0_mean", "log_f0_std")
#: flow times at which evaluation scores the refiner
EVAL_TIMES = (0.0, 0.5, 0.9)
#: steps of the evaluation's sample
EVAL_SAMPLE = FlowSettings(steps=4)


def _utterance_seed(uid: str, seed: int) -> int:
    return (zlib.crc32(uid.encode("utf-8")) + 1000003 * int(seed)) % (2 ** 31)


class Conditions:
    """Each utterance's frozen conditions, computed alone on first use and kept (CPU).

    Args:
        vsr: the lip reader; prior: the coarse prior; aligner: places the transcript on the frames.
        inventory: the generator's phoneme inventory; seed: the recipe's seed (the prior's noise per utterance).
    """

    def __init__(self, vsr, prior, aligner, model: ContentFlow, seed: int, device: str):
        self.vsr, self.prior, self.aligner, self.model = vsr, prior, aligner, model
        self.seed, self.device = int(seed), device
        self.store: Dict[str, Dict[str, torch.Tensor]] = {}

    @torch.no_grad()
    def one(self, uid: str, roi: torch.Tensor, text: str) -> Dict[str, torch.Tensor]:
        from l2s.align.timeline import render_frames

        if uid in self.store:
            return self.store[uid]
        feats = self.vsr.encode(roi[None].to(self.device))
        gen = torch.Generator(device=self.device).manual_seed(_utterance_seed(uid, self.seed))
        prior = self.prior(feats, generator=gen)
        frames = roi.shape[0] * MEL_FRAMES_PER_VIDEO_FRAME
        alignment = self.aligner.align(feats[0], text, allow_empty=True)
        rendered = render_frames(alignment, self.model.inventory, num_frames=frames)
        item = {"features": feats[0].cpu(), "prior_mel": prior.mel_norm[0, :, :frames].cpu(),
                "f0": prior.f0[0, :frames].float().cpu(), "voiced": prior.voiced[0, :frames].cpu(),
                "phonemes": rendered.phoneme_ids, "position": rendered.position,
                "word_start": rendered.word_start}
        self.store[uid] = item
        return item

    def batch(self, batch, frames: int, device: str) -> ContentInputs:
        """The batch's :class:`ContentInputs` padded to ``frames`` mel frames."""
        roi, lengths = batch["roi"], batch["roi_lengths"]
        items = [self.one(uid, roi[i, :int(lengths[i])], text)
                 for i, (uid, text) in enumerate(zip(batch["id"], batch["text"]))]
        b, t_v = len(items), roi.shape[1]
        dim = items[0]["features"].shape[-1]
        out = {"features": torch.zeros(b, t_v, dim), "prior_mel": torch.zeros(b, 80, frames),
               "f0": torch.zeros(b, frames), "voiced": torch.zeros(b, frames, dtype=torch.bool),
               "phonemes": torch.ones(b, frames, dtype=torch.long), "position": torch.zeros(b, frames),
               "word_start": torch.zeros(b, frames)}
        for i, item in enumerate(items):
            for key, value in item.items():
                n = min(value.shape[-1 if key == "prior_mel" else 0], out[key].shape[-1 if key == "prior_mel" else 1])
                if key == "prior_mel":
                    out[key][i, :, :n] = value[:, :n]
                else:
                    out[key][i, :n] = value[:n].to(out[key].dtype)
        mask = mel_mask(batch["mel_lengths"].to(device), frames, b, device)
        scalars = frame_scalars(out["position"], out["word_start"], out["f0"], out["voiced"], self.model.config)
        return ContentInputs(out["phonemes"].to(device), scalars.to(device), out["features"].to(device),
                             out["prior_mel"].to(device) * mask, mask)


class ContentFlowBrain(L2SBrain):
    """Trains :class:`ContentFlow` on frozen lip-reader, prior and aligner outputs."""

    eval_accumulators = ("sums",)
    ema: Optional[WeightEMA] = None

    def compute_forward(self, batch, stage):
        mel = batch["mel"].to(self.device).transpose(1, 2)
        c = self.conditions.batch(batch, mel.shape[-1], self.device)
        mel = mel * c.mask
        module = self.modules.model
        core = unwrap(module)
        if stage == sb.Stage.TRAIN:
            b = mel.shape[0]
            mean = core.mean(c)
            loss_mean = masked_l1(mean, mel, c.mask)
            drop = torch.rand(b, device=self.device) < core.config.content_dropout
            mean_d = mean.detach()
            x0 = source_sample(mean_d, core.config.sigma, torch.randn_like(mel))
            t = torch.rand(b, device=self.device)
            x1 = core.estimate(path_point(x0, mel, t), t, mean_d, c.without_content(drop))
            loss_refiner = masked_l1(x1, mel, c.mask)
            return loss_mean + loss_refiner
        if self.ema is not None:
            core = self.ema.averaged(core)
        return self._evaluate(core, c, mel, batch)

    @torch.no_grad()
    def _evaluate(self, core: ContentFlow, c: ContentInputs, mel: torch.Tensor, batch) -> torch.Tensor:
        b = mel.shape[0]
        mean = core.mean(c)
        mean_l1 = masked_l1(mean, mel, c.mask)
        frames = (c.mask.sum() * mel.shape[1]).clamp_min(1.0)
        self.sums["mean_l1"] += float(mean_l1) * b
        self.sums["mean_sq"] += float((((mean - mel) ** 2) * c.mask).sum() / frames) * b
        self.sums["prior_l1"] += float(masked_l1(c.prior_mel, mel, c.mask)) * b
        refiner = []
        for t_value in EVAL_TIMES:
            z = torch.randn(mel.shape, generator=self.eval_generator).to(mel)
            t = torch.full((b,), t_value, device=mel.device)
            x1 = core.estimate(path_point(source_sample(mean, core.config.sigma, z), mel, t), t, mean, c)
            loss = masked_l1(x1, mel, c.mask)
            self.sums[f"refiner_l1_t{t_value:g}"] += float(loss) * b
            refiner.append(loss)
        noise = GaussianNoise(int(self.hparams.seed) + int(self.sums["items"]))
        sample = flow_sample(lambda x, t: core.estimate(x, t, mean, c), mean, core.config.sigma, EVAL_SAMPLE,
                             noise).mel
        self.sums["sample_l1"] += float(masked_l1(sample, mel, c.mask)) * b
        self.sums["items"] += b
        lengths = batch["mel_lengths"]
        self.keep_examples(self.step_stage, batch["id"], mel=sample, what="sample", vocode=True, mel_lengths=lengths)
        self.keep_examples(self.step_stage, batch["id"], mel=mean, what="mean", vocode=True, mel_lengths=lengths)
        return mean_l1 + torch.stack(refiner).mean()

    def compute_objectives(self, predictions, batch, stage):
        return predictions

    def on_fit_batch_start(self, batch, should_step):
        """The learning rate of this step: a linear warm-up over ``warmup_steps``, then (with
        ``lr_final_ratio``) a cosine decay over ``number_of_epochs`` to that fraction of ``lr``."""
        per_epoch = max(1, len(self.train_sampler)) if self.train_sampler is not None else 1
        epoch = int(self.hparams.epoch_counter.current)
        done = (epoch - 1) * per_epoch + self.step
        self.optimizer_lr(lr_at(float(self.hparams.lr), done, per_epoch * int(self.hparams.number_of_epochs),
                                int(self.hparams.warmup_steps), self.hparams.lr_final_ratio))

    def optimizer_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        if should_step and self.ema is not None:
            self.ema.update(unwrap(self.modules.model))

    def on_stage_start(self, stage, epoch=None):
        self.step_stage = stage
        if stage != sb.Stage.TRAIN:
            keys = ["mean_l1", "mean_sq", "prior_l1", "sample_l1", "items"]
            keys += [f"refiner_l1_t{t:g}" for t in EVAL_TIMES]
            self.sums = dict.fromkeys(keys, 0.0)
            self.eval_generator = torch.Generator().manual_seed(int(self.hparams.seed))

    def eval_stats(self, stage):
        items = max(self.sums["items"], 1.0)
        stats = {k: v / items for k, v in self.sums.items() if k not in ("items", "mean_sq")}
        stats["mean_rms"] = math.sqrt(self.sums["mean_sq"] / items)
        stats["loss"] = stats["mean_l1"] + sum(stats[f"refiner_l1_t{t:g}"] for t in EVAL_TIMES) / len(EVAL_TIMES)
        return stats


def lr_at(lr: float, step: int, total: int, warmup: int, final_ratio: Optional[float]) -> float:
    """The learning rate at optimiser step ``step`` (0-based) of ``total``: linear warm-up over ``warmup`` steps,
    then constant (``final_ratio`` None) or a cosine decay to ``final_ratio * lr`` at ``total``."""
    scale = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
    if final_ratio is not None and total > 0:
        progress = min(1.0, step / total)
        scale *= final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return lr * scale


def check_hparams(hparams: Mapping[str, Any]) -> None:
    """The stage's own options, checked before the runner writes anything."""
    model_config(hparams, "generator", ARCHS, reserved=DERIVED)
    if not hparams.get("prior_model"):
        raise InputError("recipe: the content-flow generator needs a prior_model (its mel, F0 and voicing are "
                         "inputs)")
    ratio = hparams.get("lr_final_ratio")
    if ratio is not None and (isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1):
        raise InputError(f"lr_final_ratio must be a number in [0, 1] or null, got {ratio!r}")
    check_ema_decay(hparams)


def derived_fields(vsr, prior, aligner) -> Dict[str, Any]:
    """The config fields that follow from the frozen stages."""
    f0 = prior.config.f0
    return {"feature_dim": int(vsr.feature_dim), "phonemes": list(aligner.inventory.symbols),
            "log_f0_mean": float(f0.log_f0_mean), "log_f0_std": float(f0.log_f0_std)}


def train(hparams: Dict[str, Any], run_opts: Dict[str, Any]) -> Dict[str, Any]:
    """Train, evaluate every test split with the best checkpoint, export ``<output_folder>/model``."""
    from l2s.align.aligner import Aligner, load_learned
    from l2s.models.vsr import load_vsr

    check_hparams(hparams)
    device = run_opts.get("device", "cpu")
    vsr = frozen_model(load_vsr(hparams["vsr_model"]), device)
    prior = frozen_model(load_model(hparams["prior_model"], "prior"), device)
    aligner_dir = hparams.get("aligner_model")
    learned = load_learned(hparams["vsr_model"], aligner_dir, device) if aligner_dir else None
    aligner = Aligner(vsr, learned)
    _, config = model_config(hparams, "generator", ARCHS, derived=derived_fields(vsr, prior, aligner))
    model = ContentFlow(config)
    decay = hparams.get("ema_decay")
    ema = WeightEMA(model, float(decay)) if decay is not None else None
    checkpointer = sb.utils.checkpoints.Checkpointer(
        checkpoints_dir=hparams["save_folder"], recoverables={"model": model, "counter": hparams["epoch_counter"]})
    if ema is not None:
        ema.to(device)
        checkpointer.add_recoverable("ema", ema, optional_load=True)
    brain = ContentFlowBrain(modules={"model": model}, opt_class=hparams["opt_class"], hparams=hparams,
                             run_opts=run_opts, checkpointer=checkpointer)
    brain.ema = ema
    brain.conditions = Conditions(vsr, prior, aligner, model, int(hparams["seed"]), device)
    loaders: List = [make_loader(hparams[k], FIELDS, hparams, k == "train_manifest", pad_values=PAD)
                     for k in ("train_manifest", "valid_manifest")]
    return fit_evaluate_export(brain, hparams, "model", loaders[0], loaders[1],
                               lambda m: make_loader(m, FIELDS, hparams, False, pad_values=PAD),
                               lambda m, path: save_model(m, path, "generator"),
                               exported=(lambda: ema.averaged(unwrap(model))) if ema is not None else None)
