"""Training stage ``guide``: the CTC guide recogniser over noisy mels (``ctc``; LipVoicer's classifier).

Each training item is noised to a step ``t ~ U{0, t_max - 1}`` of its schedule (the generator's),
``x_t = sqrt(abar_t) mel + sqrt(1 - abar_t) eps``, and the guide learns the characters with CTC.
Evaluation noises every item at each of a few fixed steps (``eval_steps``, seeded noise, so the
numbers are comparable between epochs) and reports the CTC loss and the greedy CER per step.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Sequence

import speechbrain as sb
import torch

from l2s.arch import save_model
from l2s.diffusion.schedules import build_schedule
from l2s.diffusion.steps import q_sample
from l2s.errors import InputError
from l2s.text.tokenizer import CharTokenizer
from l2s.train.brain import L2SBrain, fit_evaluate_export
from l2s.train.common import make_loader, model_config, unwrap

FIELDS = ("id", "text", "mel", "tokens")
PAD = {"tokens": 0, "mel": -1.0}
#: the architectures this stage trains
ARCHS = ("ctc",)


def guide_config(hparams: Mapping[str, Any]):
    """The recipe's guide (arch, preset, ``model`` overrides), over the character tokenizer's vocabulary.

    Raises:
        InputError: another vocabulary size, or what :func:`~l2s.train.common.model_config` refuses.
    """
    entry, config = model_config(hparams, "guide", ARCHS)
    if config.vocab_size != CharTokenizer().vocab_size:
        raise InputError(f"recipe model: vocab_size {config.vocab_size}, the character tokenizer has "
                         f"{CharTokenizer().vocab_size} tokens")
    return entry, config


def check_hparams(hparams: Mapping[str, Any]) -> None:
    """The stage's own options, checked before the runner writes anything."""
    guide_config(hparams)


def _mel_batch(batch, device):
    """``(B, 80, T_m)`` model-space mels and their ``(B,)`` lengths."""
    return batch["mel"].to(device).transpose(1, 2), batch["mel_lengths"].to(device)


class GuideBrain(L2SBrain):
    """Trains :class:`~l2s.models.guide.ctc.CTCGuide` on noised ground-truth mels."""

    eval_accumulators = ("cer",)

    def compute_forward(self, batch, stage):
        mel, lengths = _mel_batch(batch, self.device)
        tokens, token_lengths = batch["tokens"].to(self.device), batch["tokens_lengths"]
        guide = self.modules.guide
        if stage == sb.Stage.TRAIN:
            t = torch.randint(0, unwrap(guide).config.t_max, (mel.shape[0],), device=self.device)
            return unwrap(guide).ctc_loss(q_sample(mel, t, self.schedule), t, tokens, lengths, token_lengths)
        losses = []
        for step in self.eval_steps:
            t = torch.full((mel.shape[0],), step, dtype=torch.long, device=self.device)
            noise = torch.randn(mel.shape, generator=self.eval_generator).to(mel)
            x_t = q_sample(mel, t, self.schedule, noise)
            losses.append(unwrap(guide).ctc_loss(x_t, t, tokens, lengths, token_lengths))
            for i, ids in enumerate(unwrap(guide).greedy(x_t, t, lengths)):
                hyp = self.tokenizer.decode(ids)
                self.cer[step].append([batch["id"][i]], [list(hyp)], [list(batch["text"][i])])
        return torch.stack(losses).mean(0)

    def compute_objectives(self, predictions, batch, stage):
        return predictions.mean()

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        # conformers want a warm-up (the recipe's Noam schedule, as the VSR stage)
        if should_step and getattr(self.hparams, "lr_annealing", None) is not None:
            self.hparams.lr_annealing(self.optimizer)

    def on_stage_start(self, stage, epoch=None):
        if stage != sb.Stage.TRAIN:
            self.cer = {s: sb.utils.metric_stats.ErrorRateStats() for s in self.eval_steps}
            self.eval_generator = torch.Generator().manual_seed(int(self.hparams.seed))

    def eval_stats(self, stage):
        return {f"CER_t{step}": metric.summarize("error_rate") for step, metric in self.cer.items()}


def train(hparams: Dict[str, Any], run_opts: Dict[str, Any]) -> Dict[str, Any]:
    """Train, evaluate every test split with the best checkpoint, export ``<output_folder>/model``."""
    tokenizer = CharTokenizer()
    entry, config = guide_config(hparams)
    guide = entry.build(config)
    recoverables = {"guide": guide, "counter": hparams["epoch_counter"]}
    if hparams.get("lr_annealing") is not None:
        recoverables["lr_annealing"] = hparams["lr_annealing"]
    checkpointer = sb.utils.checkpoints.Checkpointer(checkpoints_dir=hparams["save_folder"], recoverables=recoverables)
    brain = GuideBrain(modules={"guide": guide}, opt_class=hparams["opt_class"], hparams=hparams,
                       run_opts=run_opts, checkpointer=checkpointer)
    brain.schedule = build_schedule(config.schedule)
    brain.tokenizer = tokenizer
    eval_steps: Sequence[int] = [int(s) for s in hparams["eval_steps"]]
    brain.eval_steps = [s for s in eval_steps if s < config.t_max] or [0]
    train_loader = make_loader(hparams["train_manifest"], FIELDS, hparams, True, tokenizer.encode, PAD)
    valid_loader = make_loader(hparams["valid_manifest"], FIELDS, hparams, False, tokenizer.encode, PAD)
    return fit_evaluate_export(brain, hparams, "guide", train_loader, valid_loader,
                               lambda m: make_loader(m, FIELDS, hparams, False, tokenizer.encode, PAD),
                               lambda model, path: save_model(model, path, "guide"))
