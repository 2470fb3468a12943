"""The ``Brain`` every l2s training stage derives from, and the run every stage shares."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional

import speechbrain as sb
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from l2s.train.budget import within_budget
from l2s.train.common import rank_digests, unwrap, weight_digest, write_metrics


class L2SBrain(sb.Brain):
    """SpeechBrain's ``Brain`` with the conventions of the l2s stages.

    * Statistics: the stage loss plus :meth:`eval_stats` on the valid and test stages; the
      valid statistics go to the recipe's ``train_logger``, and the checkpoint with the
      lowest ``checkpoint_key`` is kept.
    * DDP on CPU: SpeechBrain converts every BatchNorm to ``SyncBatchNorm`` before wrapping a
      module in DDP, and ``SyncBatchNorm`` runs on CUDA only. On CPU (gloo) the modules are
      wrapped as they are: DDP then broadcasts rank 0's BatchNorm statistics at every forward
      pass, so the replicas stay identical.
    """

    #: the valid statistic (lower is better) that picks the checkpoint to keep and to evaluate
    checkpoint_key = "loss"

    def eval_stats(self, stage: sb.Stage) -> Dict[str, float]:
        """Statistics beyond the loss at the end of a valid or test stage (a stage overrides it)."""
        return {}

    def log_meta(self, epoch: int) -> Dict[str, Any]:
        """What the train log states about an epoch besides the statistics."""
        meta: Dict[str, Any] = {"epoch": epoch}
        optimizer = getattr(self, "optimizer", None)
        if optimizer is not None:
            meta["lr"] = optimizer.param_groups[0]["lr"]
        return meta

    def on_stage_end(self, stage, stage_loss, epoch=None):
        stats = {"loss": stage_loss}
        if stage == sb.Stage.TRAIN:
            self.train_stats = stats
            return
        stats.update(self.eval_stats(stage))
        if stage == sb.Stage.VALID:
            self.valid_stats = stats
            self.hparams.train_logger.log_stats(self.log_meta(epoch), train_stats=self.train_stats,
                                                valid_stats=stats)
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
    if sb.utils.distributed.if_main_process():
        out = Path(hparams["output_folder"])
        model = exported() if exported is not None else unwrap(brain.modules[module])
        export(model.cpu(), out / "model")
        write_metrics(out / "metrics.json", results)
    return results
