"""Training stage ``generator``: the diffusion mel denoiser (``denoiser``; LipVoicer's MelGen objective, our
conditioner).

Visual features come from a frozen lip reader (``vsr_model``) and the coarse prior mel from a frozen
prior (``prior_model``, optional: ``null`` trains without it, and without ``residual_prior``), both computed on
the fly under ``no_grad``. The network's settings (:class:`~l2s.models.generator.denoiser.DenoiserConfig`) come
from the recipe's ``arch``, ``preset`` and ``model`` keys. Objective (DDPM / DiffWave): ``t ~ U{0, T - 1}``,
``x_t = sqrt(abar_t) mel + sqrt(1 - abar_t) eps``, masked **L2** between the network's output and its target
(``eps`` for ``prediction: epsilon``, as LipVoicer; ``v = sqrt(abar) eps - sqrt(1 - abar) mel`` for
``v_prediction``, of ``mel - prior`` with ``residual_prior``), with the video (and prior) condition dropped per
item with probability ``cond_dropout`` for classifier-free guidance. Evaluation noises every item at each of a
few fixed steps (``eval_steps``, seeded noise) and reports the same loss per step (``loss_t<step>``), its mean
(``loss``, which picks the best checkpoint), the mean without the condition (``loss_uncond``; the gap is what
classifier-free guidance has to work with) and, comparable across parameterisations, the L1 error of the
one-step clean-mel estimate (``x0_l1_t<step>``; against the prior's own L1, ``prior_l1``, it says whether the
network adds anything to the prior at that noise level).
With ``ema_decay`` (a number; ``null`` turns it off) the stage keeps an exponential moving average of the
weights (:mod:`l2s.train.ema`): evaluation, the checkpoint choice and the exported model use the average.
Sampling-based metrics (WER...) belong to the benchmark, not the trainer.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import speechbrain as sb
import torch

from l2s.arch import load_model, save_model
from l2s.config import MEL_FRAMES_PER_VIDEO_FRAME
from l2s.diffusion.schedules import build_schedule
from l2s.diffusion.steps import q_sample, step_alpha_bars, x0_from_eps
from l2s.errors import InputError
from l2s.features.mel import mel_mask
from l2s.models.generator.denoiser import Denoiser, DenoiserConfig
from l2s.models.vsr import load_vsr
from l2s.train.brain import L2SBrain, fit_evaluate_export
from l2s.train.common import (check_ema_decay, frozen_model, make_loader, masked_l1, masked_mse, model_config,
                              unwrap)
from l2s.train.ema import WeightEMA
from l2s.train.frozen_cache import FrozenCache

FIELDS = ("id", "roi", "mel")
PAD = {"mel": -1.0}
#: the architectures this stage trains
ARCHS = ("denoiser",)
#: fields the stage sets itself: the feature width follows the lip reader, use_prior the prior model
DERIVED = ("feature_dim", "use_prior")


def denoiser_config(hparams: Mapping[str, Any], feature_dim: int, use_prior: bool) -> DenoiserConfig:
    """The recipe's denoiser (arch, preset, ``model`` overrides) adapted to the lip reader's feature width and to
    whether a prior is given (without one there is no residual to model: ``residual_prior`` is off)."""
    derived = {"feature_dim": int(feature_dim), "use_prior": bool(use_prior)}
    _, config = model_config(hparams, "generator", ARCHS, derived=derived, reserved=DERIVED,
                             overrides=None if use_prior else {"residual_prior": False})
    return config


def check_hparams(hparams: Mapping[str, Any]) -> None:
    """The stage's own options, checked before the runner writes anything."""
    model_config(hparams, "generator", ARCHS, reserved=DERIVED)
    check_ema_decay(hparams)


def init_weights(denoiser: Denoiser, source: Union[str, Path]) -> None:
    """Start ``denoiser`` from an exported mel generator's weights (``init_model``: fine-tuning).

    Raises:
        InputError: the source's architecture or diffusion settings differ from the recipe's.
    """
    src = load_model(source, "generator")
    if not isinstance(src, Denoiser):
        raise InputError(f"init_model {source} is a {type(src).__name__}, not a denoiser")
    if src.config != denoiser.config:
        mine, theirs = asdict(denoiser.config), asdict(src.config)
        diff = ", ".join(f"{k}={theirs[k]!r} (recipe: {mine[k]!r})" for k in mine if mine[k] != theirs[k])
        raise InputError(f"init_model {source} does not fit the recipe's generator: {diff}")
    denoiser.load_state_dict(src.state_dict())


class GeneratorBrain(L2SBrain):
    """Trains :class:`~l2s.models.generator.denoiser.Denoiser` on frozen VSR features and DDSP prior mels."""

    eval_accumulators = ("sums",)

    #: the weight average that evaluation uses (None: the trained weights themselves)
    ema: Optional[WeightEMA] = None

    def _conditions(self, batch):
        """Frozen VSR features ``(B, T_v, D)`` and DDSP prior mel ``(B, 80, 4 T_v)``, cached per utterance."""
        roi = batch["roi"].to(self.device)
        roi_lengths = batch["roi_lengths"].to(self.device)
        ids = batch["id"]
        t_v = roi.shape[1]
        with torch.no_grad():
            features = self.feature_cache(ids, roi_lengths, lambda i: self.hparams.vsr.encode(
                roi[i.to(self.device)], roi_lengths[i.to(self.device)]), t_v).to(self.device)
            prior = None
            if self.hparams.prior is not None:
                prior = self.prior_cache(ids, roi_lengths * MEL_FRAMES_PER_VIDEO_FRAME, lambda i: self.hparams.prior(
                    features[i.to(self.device)], roi_lengths[i.to(self.device)]).mel_norm,
                    t_v * MEL_FRAMES_PER_VIDEO_FRAME).to(self.device)
        return features, prior

    def compute_forward(self, batch, stage):
        features, prior = self._conditions(batch)
        mel = batch["mel"].to(self.device).transpose(1, 2)  # (B, 80, T_m), T_m = 4 T_v (the dataset cuts it)
        lengths = batch["mel_lengths"].to(self.device)
        if prior is not None:
            prior = prior[..., : mel.shape[-1]]
        model = self.modules.denoiser
        core = unwrap(model)
        if stage != sb.Stage.TRAIN and self.ema is not None:
            core = self.ema.averaged(core)
        b = mel.shape[0]
        mask = mel_mask(lengths, mel.shape[-1], b, self.device)
        if stage == sb.Stage.TRAIN:
            t = torch.randint(0, core.config.schedule.num_steps, (b,), device=self.device)
            noise = torch.randn_like(mel)
            drop = torch.rand(b, device=self.device) < core.config.cond_dropout
            out = model(q_sample(mel, t, self.schedule, noise), t, features, prior, None, lengths, drop, raw=True)
            # with residual_prior the target is relative to the prior each item was given (or the null one)
            offset = core.offset(prior, mel.shape[-1], lengths, drop) if prior is not None else None
            return masked_mse(out, core.target(mel, noise, t, offset), mask)
        losses = []
        for step in self.eval_steps:
            t = torch.full((b,), step, dtype=torch.long, device=self.device)
            noise = torch.randn(mel.shape, generator=self.eval_generator).to(mel)
            x_t = q_sample(mel, t, self.schedule, noise)
            cond = core.condition(features, mel.shape[-1], prior, None, lengths, False)
            null = core.condition(features, mel.shape[-1], prior, None, lengths, True)
            raw = core.denoise(x_t, t, cond, raw=True)
            loss = masked_mse(raw, core.target(mel, noise, t, cond.offset), mask)
            uncond = masked_mse(core.denoise(x_t, t, null, raw=True), core.target(mel, noise, t, null.offset), mask)
            x0 = x0_from_eps(core.eps_from_raw(raw, x_t, t, cond), x_t, step_alpha_bars(core.alpha_bars, t, x_t))
            self.sums[f"loss_t{step}"] += float(loss) * b
            self.sums[f"x0_l1_t{step}"] += float(masked_l1(x0, mel, mask)) * b
            self.sums["loss_uncond"] += float(uncond) * b / len(self.eval_steps)
            losses.append(loss)
            self.keep_examples(stage, batch["id"], mel=x0, what=f"clean_mel_from_t{step}", vocode=True,
                               mel_lengths=lengths)
        if prior is not None:
            self.sums["prior_l1"] += float(masked_l1(prior, mel, mask)) * b
            self.keep_examples(stage, batch["id"], mel=prior, what="prior_mel", vocode=True, mel_lengths=lengths)
        self.keep_examples(stage, batch["id"], mel=mel, what="target_mel", vocode=True, mel_lengths=lengths)
        self.sums["items"] += b
        return torch.stack(losses).mean()

    def compute_objectives(self, predictions, batch, stage):
        return predictions

    def on_evaluate_start(self, max_key=None, min_key=None):
        super().on_evaluate_start(max_key=max_key, min_key=min_key)
        if self.ema is not None and self.checkpointer is not None:
            # a checkpoint saved without the average (before it existed) is evaluated with its own weights,
            # not with an average of later ones still in memory
            ckpt = self.checkpointer.find_checkpoint(max_key=max_key, min_key=min_key)
            if ckpt is not None and "ema" not in ckpt.paramfiles:
                self.ema.reset()

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        if should_step and self.ema is not None:
            self.ema.update(unwrap(self.modules.denoiser))

    def on_stage_start(self, stage, epoch=None):
        if stage != sb.Stage.TRAIN:
            keys = [f"loss_t{s}" for s in self.eval_steps] + [f"x0_l1_t{s}" for s in self.eval_steps]
            keys += ["loss_uncond", "items"] + (["prior_l1"] if self.hparams.prior is not None else [])
            self.sums = dict.fromkeys(keys, 0.0)
            self.eval_generator = torch.Generator().manual_seed(int(self.hparams.seed))

    def eval_stats(self, stage):
        items = max(self.sums["items"], 1.0)
        stats = {k: v / items for k, v in self.sums.items() if k != "items"}
        # per item, like the per-step numbers (SpeechBrain's stage loss averages batches)
        stats["loss"] = sum(stats[f"loss_t{s}"] for s in self.eval_steps) / len(self.eval_steps)
        return stats


def train(hparams: Dict[str, Any], run_opts: Dict[str, Any]) -> Dict[str, Any]:
    """Train, evaluate every test split with the best checkpoint, export ``<output_folder>/model``."""
    device = run_opts.get("device", "cpu")
    vsr = frozen_model(load_vsr(hparams["vsr_model"]), device)
    prior_path = hparams.get("prior_model")
    hparams["vsr"] = vsr
    hparams["prior"] = frozen_model(load_model(prior_path, "prior"), device) if prior_path else None
    config = denoiser_config(hparams, vsr.feature_dim, hparams["prior"] is not None)
    denoiser = Denoiser(config)
    if hparams.get("init_model"):
        init_weights(denoiser, hparams["init_model"])  # a checkpoint of this run, if any, still wins (resume)
    decay = hparams.get("ema_decay")
    ema = WeightEMA(denoiser, float(decay)) if decay is not None else None
    checkpointer = sb.utils.checkpoints.Checkpointer(
        checkpoints_dir=hparams["save_folder"],
        recoverables={"denoiser": denoiser, "counter": hparams["epoch_counter"]})
    if ema is not None:
        # not one of the Brain's modules, whose parameters all go to the optimiser; optional in a checkpoint
        # so that a run started before the average existed resumes, and the average starts there
        ema.to(device)
        checkpointer.add_recoverable("ema", ema, optional_load=True)
    brain = GeneratorBrain(modules={"denoiser": denoiser}, opt_class=hparams["opt_class"], hparams=hparams,
                           run_opts=run_opts, checkpointer=checkpointer)
    brain.ema = ema
    cache = bool(hparams.get("cache_conditions", True))
    brain.feature_cache, brain.prior_cache = FrozenCache(1, cache), FrozenCache(-1, cache)
    brain.schedule = build_schedule(config.schedule)
    brain.eval_steps = [int(s) for s in hparams["eval_steps"] if int(s) < config.schedule.num_steps] or [0]
    train_loader = make_loader(hparams["train_manifest"], FIELDS, hparams, True, pad_values=PAD)
    valid_loader = make_loader(hparams["valid_manifest"], FIELDS, hparams, False, pad_values=PAD)
    return fit_evaluate_export(brain, hparams, "denoiser", train_loader, valid_loader,
                               lambda m: make_loader(m, FIELDS, hparams, False, pad_values=PAD),
                               lambda model, path: save_model(model, path, "generator"),
                               exported=(lambda: ema.averaged(unwrap(denoiser))) if ema is not None else None)
