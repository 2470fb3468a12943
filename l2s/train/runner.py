"""``l2s train``: load a HyperPyYAML recipe, set up DDP, hand over to the stage's trainer.

A recipe names its stage (``stage: vsr``); :data:`STAGES` maps a stage to the module
whose ``train(hparams, run_opts)`` builds the data, the ``Brain`` and runs it. The same
command runs single-process or under ``torchrun`` (gloo on CPU, nccl on GPU).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Tuple

from l2s.errors import InputError

logger = logging.getLogger(__name__)

STAGES = {
    "vsr": "l2s.train.vsr",
    "f0_ddsp": "l2s.train.f0_ddsp",
    "asr_guide": "l2s.train.asr_guide",
    "melgen": "l2s.train.melgen",
    "vocoder": "l2s.train.vocoder",
    "aligner": "l2s.train.aligner",
}


def parse_args(argv: List[str]) -> Tuple[str, Dict[str, Any], str]:
    """SpeechBrain's argument parser: ``HPARAMS [--device ...] [--key=value overrides]``."""
    import speechbrain as sb

    return sb.parse_arguments(argv)


def load_hparams(hparams_file: str, overrides: str = "") -> Dict[str, Any]:
    """Load a HyperPyYAML recipe with command-line overrides applied."""
    from hyperpyyaml import load_hyperpyyaml

    path = Path(hparams_file)
    if not path.is_file():
        raise InputError(f"{hparams_file}: no such recipe file")
    try:
        with path.open() as fin:
            return load_hyperpyyaml(fin, overrides)
    except (ValueError, KeyError, AttributeError) as exc:
        raise InputError(f"{hparams_file}: cannot load recipe ({type(exc).__name__}: {exc})") from None


def run(argv: List[str]) -> Any:
    """Train the stage named in the recipe; returns what the stage's ``train`` returns."""
    from l2s.extras import import_using_torchaudio, require_extra

    require_extra("train", "l2s train")
    sb = import_using_torchaudio("speechbrain")

    hparams_file, run_opts, overrides = parse_args(argv)
    # Under torchrun SpeechBrain finds RANK/LOCAL_RANK itself; its default backend (nccl)
    # cannot run without CUDA, so a CPU run falls back to gloo unless the user chose one.
    if "RANK" in os.environ and "distributed_backend" not in run_opts.overridden_args and not _cuda():
        run_opts = dataclasses.replace(run_opts, distributed_backend="gloo",
                                       overridden_args=run_opts.overridden_args | {"distributed_backend"})
    sb.utils.distributed.ddp_init_group(run_opts)
    hparams = load_hparams(hparams_file, overrides)
    stage = hparams.get("stage")
    if stage not in STAGES:
        raise InputError(f"{hparams_file}: 'stage' must be one of {sorted(STAGES)}, got {stage!r}")
    budget = hparams.get("max_train_minutes")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float))):
        raise InputError(f"{hparams_file}: max_train_minutes must be a number of minutes or null, got {budget!r}")
    module = importlib.import_module(STAGES[stage])
    check = getattr(module, "check_hparams", None)
    if check is not None:  # a stage's own options: a one-line error before anything is written
        check(hparams)
    check_model_paths(hparams)
    sb.create_experiment_directory(experiment_directory=hparams["output_folder"], hyperparams_to_save=hparams_file,
                                   overrides=overrides)
    return module.train(hparams, run_opts)


def check_model_paths(hparams: Dict[str, Any]) -> None:
    """Every ``*_model`` option that is set (``vsr_model``, ``prior_model``, ``init_model``...) names a model
    that :func:`l2s.hub.resolve` finds, so a typo is a one-line error before the output folder is written.

    Raises:
        ModelError: one of them cannot be resolved.
    """
    from l2s.hub import resolve

    for key, value in hparams.items():
        if key.endswith("_model") and isinstance(value, (str, Path)) and str(value):
            resolve(value)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
