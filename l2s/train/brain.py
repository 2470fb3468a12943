"""The ``Brain`` every l2s training stage derives from, and the run every stage shares."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import speechbrain as sb
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from l2s.train.budget import within_budget
from l2s.train.common import (is_sharded, mean_across_ranks, merge_across_ranks, rank_digests, unwrap, weight_digest,
                              write_metrics)
from l2s.train.tensorboard import Example, TensorBoard


class L2SBrain(sb.Brain):
    """SpeechBrain's ``Brain`` with the conventions of the l2s stages.

    * Statistics: the stage loss plus :meth:`eval_stats` on the valid and test stages; the
      valid statistics go to the recipe's ``train_logger``, and the checkpoint with the
      lowest ``checkpoint_key`` is kept.
    * Evaluation under DDP: each rank scores its share of the valid and test batches, and the shares'
      statistics are merged (:meth:`gather_eval`) before they are logged or compared.
    * TensorBoard: statistics every epoch and a few validation mels and waveforms every few epochs
      (:mod:`l2s.train.tensorboard`; stages hand them over with :meth:`keep_examples`).
    * DDP on CPU: SpeechBrain converts every BatchNorm to ``SyncBatchNorm`` before wrapping a
      module in DDP, and ``SyncBatchNorm`` runs on CUDA only. On CPU (gloo) the modules are
      wrapped as they are: DDP then broadcasts rank 0's BatchNorm statistics at every forward
      pass, so the replicas stay identical.
    """

    #: the valid statistic (lower is better) that picks the checkpoint to keep and to evaluate
    checkpoint_key = "loss"
    #: the attributes in which a stage accumulates its valid/test statistics; when the evaluation is
    #: sharded across DDP ranks they are merged (summed, metric objects joined) before :meth:`eval_stats`
    eval_accumulators: Tuple[str, ...] = ()

    def eval_stats(self, stage: sb.Stage) -> Dict[str, float]:
        """Statistics beyond the loss at the end of a valid or test stage (a stage overrides it)."""
        return {}

    # ------------------------------------------------------------------ sharded evaluation

    def fit(self, epoch_counter, train_set, valid_set=None, *args, **kwargs):
        self._sharded = {sb.Stage.VALID: is_sharded(valid_set)}
        return super().fit(epoch_counter, train_set, valid_set, *args, **kwargs)

    def evaluate(self, test_set, *args, **kwargs):
        self._sharded = {**getattr(self, "_sharded", {}), sb.Stage.TEST: is_sharded(test_set)}
        return super().evaluate(test_set, *args, **kwargs)

    def evaluate_batch(self, batch, stage):
        self._eval_batches = getattr(self, "_eval_batches", 0) + 1
        return super().evaluate_batch(batch, stage)

    def gather_eval(self, stage: sb.Stage, stage_loss: float) -> float:
        """Merge every rank's share of a sharded valid/test stage (:attr:`eval_accumulators`); returns the
        stage loss averaged over all ranks' batches. Unsharded, it changes nothing."""
        batches, self._eval_batches = getattr(self, "_eval_batches", 0), 0
        if not getattr(self, "_sharded", {}).get(stage):
            return stage_loss
        for name in self.eval_accumulators:
            setattr(self, name, merge_across_ranks(getattr(self, name)))
        return mean_across_ranks(float(stage_loss), batches)

    # ------------------------------------------------------------------ TensorBoard

    @property
    def board(self) -> Optional[TensorBoard]:
        """The run's TensorBoard logger (:mod:`l2s.train.tensorboard`), made on first use; None when off."""
        if not hasattr(self, "_board"):
            self._board = TensorBoard.for_run(self.hparams)
        return self._board

    def keep_examples(self, stage: sb.Stage, ids, mel: Optional[torch.Tensor] = None,
                      wav: Optional[torch.Tensor] = None, what: str = "output", vocode: bool = False,
                      mel_lengths: Optional[torch.Tensor] = None, wav_lengths: Optional[torch.Tensor] = None) -> None:
        """Keep the first validation utterances' ``(B, 80, T)`` mels and/or ``(B, N)`` waveforms for TensorBoard,
        in the epochs that render examples (``vocode``: render the mels as audio with Griffin-Lim), cut to
        their lengths when given."""
        board = self.board
        epoch = getattr(getattr(self.hparams, "epoch_counter", None), "current", None)
        if stage != sb.Stage.VALID or board is None or not board.renders(epoch):
            return
        kept = getattr(self, "_examples", None)
        if kept is None:
            kept = self._examples = []
        names = {e.name.split("/")[0] for e in kept}
        for i, utt in enumerate(ids):
            if str(utt) not in names and len(names) >= board.examples:
                break
            names.add(str(utt))
            one_mel = None if mel is None else mel[i, :, :_length(mel_lengths, i, mel.shape[-1])].detach().cpu()
            one_wav = None if wav is None else wav[i, :_length(wav_lengths, i, wav.shape[-1])].detach().cpu()
            kept.append(Example(f"{utt}/{what}", one_mel, one_wav, vocode))

    def log_valid(self, epoch: int, meta: Dict[str, Any], train_stats: Optional[Dict[str, Any]],
                  valid_stats: Dict[str, Any]) -> None:
        """The epoch's statistics into the recipe's ``train_logger`` and TensorBoard, with the kept examples."""
        self.hparams.train_logger.log_stats(meta, train_stats=train_stats, valid_stats=valid_stats)
        board = self.board
        if board is not None:
            board.log_epoch(epoch, meta, train_stats, valid_stats)
            if board.renders(epoch):
                board.log_examples(epoch, getattr(self, "_examples", None) or [])
        self._examples = None

    def log_meta(self, epoch: int) -> Dict[str, Any]:
        """What the train log states about an epoch besides the statistics."""
        meta: Dict[str, Any] = {"epoch": epoch}
        optimizer = getattr(self, "optimizer", None)
        if optimizer is not None:
            meta["lr"] = optimizer.param_groups[0]["lr"]
        return meta

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.train_stats = {"loss": stage_loss}
            return
        stats = {"loss": self.gather_eval(stage, stage_loss)}
        stats.update(self.eval_stats(stage))
        if stage == sb.Stage.VALID:
            self.valid_stats = stats
            self.log_valid(epoch, self.log_meta(epoch), self.train_stats, stats)
            key = self.checkpoint_key
            self.checkpointer.save_and_keep_only(meta={key: stats[key]}, min_keys=[key])
        else:
            self.test_stats = stats

    def _wrap_distributed(self):
        if not self.distributed_launch or self.distributed_backend != "gloo":
            return super()._wrap_distributed()
        for name, module in self.modules.items():
            if any(p.requires_grad for p in module.parameters()):
                self.modules[name] = DistributedDataParallel(
                    module, device_ids=None, find_unused_parameters=self.find_unused_parameters)


def _length(lengths: Optional[torch.Tensor], i: int, full: int) -> int:
    return full if lengths is None else min(int(lengths[i]), full)


def fit_evaluate_export(brain: L2SBrain, hparams: Mapping[str, Any], module: str, train_loader: DataLoader,
                        valid_loader: DataLoader, test_loader: Callable[[str], DataLoader],
                        export: Callable[[torch.nn.Module, Path], Any],
                        exported: Optional[Callable[[], torch.nn.Module]] = None) -> Dict[str, Any]:
    """The run every stage shares: train, score each test split with the best checkpoint, export it.

    Writes ``<output_folder>/metrics.json`` (training time, per-rank weight digests, the
    statistics of every ``test_manifests`` split) and ``<output_folder>/model`` (by ``export``,
    given the trained ``brain.modules[module]`` unwrapped, or what ``exported`` returns, on CPU) from the main
    process.

    Args:
        module: the key of ``brain.modules`` holding the model being trained.
        test_loader: a loader for a test manifest path.
        export: writes the model directory.
        exported: the model to export, when it is not the trained module itself (e.g. its weight average).
    """
    brain.train_sampler = train_loader.batch_sampler
    initial = weight_digest(unwrap(brain.modules[module]))
    started = time.time()
    brain.fit(within_budget(brain.hparams.epoch_counter, hparams.get("max_train_minutes")), train_loader,
              valid_loader)
    results: Dict[str, Any] = {"train_seconds": time.time() - started, "initial_weight_digest": initial,
                               "rank_weight_digests": rank_digests(unwrap(brain.modules[module]))}
    for split, manifest in (hparams.get("test_manifests") or {}).items():
        brain.evaluate(test_loader(manifest), min_key=brain.checkpoint_key)
        results[split] = dict(brain.test_stats)
        if brain.board is not None:
            brain.board.log_test(split, results[split], int(brain.hparams.epoch_counter.current))
    if sb.utils.distributed.if_main_process():
        out = Path(hparams["output_folder"])
        model = exported() if exported is not None else unwrap(brain.modules[module])
        export(model.cpu(), out / "model")
        write_metrics(out / "metrics.json", results)
    return results
