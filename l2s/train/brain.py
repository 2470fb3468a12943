"""The ``Brain`` every l2s training stage derives from."""

from __future__ import annotations

import speechbrain as sb
from torch.nn.parallel import DistributedDataParallel


class L2SBrain(sb.Brain):
    """SpeechBrain's ``Brain`` that also trains with DDP on CPU.

    SpeechBrain converts every BatchNorm to ``SyncBatchNorm`` before wrapping a module in
    DDP, and ``SyncBatchNorm`` runs on CUDA only. On CPU (gloo) the modules are wrapped
    as they are: DDP then broadcasts rank 0's BatchNorm statistics at every forward pass,
    so the replicas stay identical.
    """

    def _wrap_distributed(self):
        if not self.distributed_launch or self.distributed_backend != "gloo":
            return super()._wrap_distributed()
        for name, module in self.modules.items():
            if any(p.requires_grad for p in module.parameters()):
                self.modules[name] = DistributedDataParallel(
                    module, device_ids=None, find_unused_parameters=self.find_unused_parameters)
