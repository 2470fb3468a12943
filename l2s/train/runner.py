"""``l2s train``: load a HyperPyYAML recipe, set up DDP, hand over to the stage's trainer.

A recipe names its stage (``stage: vsr``; a stage's old name is read through :mod:`l2s.compat`)
and the architecture it trains (``arch``); :data:`STAGES` maps a stage to the module whose
``train(hparams, run_opts)`` builds the data, the ``Brain`` and runs it, unless the architecture
names its own trainer (:class:`l2s.arch.Architecture`'s ``trainer``). The same command runs
single-process or under ``torchrun`` (gloo on CPU, nccl on GPU).

A recipe may extend another (``extends: ../../common/vsr.yaml``, relative to the recipe): its keys are
then overrides of that file, applied exactly as command-line overrides are (HyperPyYAML's: a mapping
merges into a mapping key by key, anything else replaces), and the command line's come last. Each
stage has one shared recipe in ``recipes/common/``; a dataset's recipe keeps only what differs.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib
import io
import logging
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

from l2s.arch import FAMILIES
from l2s.compat import stage_name
from l2s.errors import InputError

logger = logging.getLogger(__name__)

#: stage -> the module that trains it (``l2s/train/<stage>.py``)
STAGES = {stage: f"l2s.train.{stage}" for stage in FAMILIES}
#: the key of a recipe that names the recipe it extends
EXTENDS = "extends"


def parse_args(argv: List[str]) -> Tuple[str, Dict[str, Any], str]:
    """SpeechBrain's argument parser: ``HPARAMS [--device ...] [--key=value overrides]``."""
    import speechbrain as sb

    return sb.parse_arguments(argv)


def _yaml():
    import ruamel.yaml

    return ruamel.yaml.YAML()


def recipe_chain(hparams_file: str) -> List[Path]:
    """The recipe files ``hparams_file`` is made of, the base first and ``hparams_file`` last.

    Raises:
        InputError: a file is missing, unreadable, or the chain runs in a circle.
    """
    chain: List[Path] = []
    path = Path(hparams_file)
    while True:
        if not path.is_file():
            raise InputError(f"{path}: no such recipe file" + (f" (extended by {chain[0]})" if chain else ""))
        if path.resolve() in [p.resolve() for p in chain]:
            raise InputError(f"{hparams_file}: the recipes extend each other in a circle ({path})")
        chain.insert(0, path)
        try:
            doc = _yaml().load(path.read_text()) or {}
        except Exception as exc:  # ruamel raises many types for bad YAML
            raise InputError(f"{path}: unreadable recipe ({type(exc).__name__}: {str(exc).splitlines()[0]})") \
                from None
        base = doc.get(EXTENDS) if isinstance(doc, dict) else None
        if base is None:
            return chain
        path = path.parent / str(base)


def _merged(chain: List[Path], overrides: str, with_base: bool):
    """The keys of ``chain``'s recipes (from the first, or from the second when ``with_base`` is false) merged in
    order, then the command line's ``overrides``, as HyperPyYAML merges overrides (a mapping into a mapping key
    by key, anything else replaces). With the base, a command-line key the recipe lacks is refused (a typo)."""
    from hyperpyyaml.core import recursive_update

    merged: Dict[str, Any] = {}
    for path in chain if with_base else chain[1:]:
        doc = _yaml().load(path.read_text()) or {}
        doc.pop(EXTENDS, None)
        recursive_update(merged, doc)
    if overrides:
        recursive_update(merged, _yaml().load(overrides) or {}, must_match=with_base)
    return merged


def _dump(tree: Dict[str, Any]) -> str:
    text = io.StringIO()
    _yaml().dump(tree, text)
    return text.getvalue()


def recipe_overrides(chain: List[Path], overrides: str = "") -> str:
    """What the base recipe of ``chain`` is loaded with, as overrides: the keys of every recipe that extends it, in
    order, then the command line's, as one YAML text."""
    merged = _merged(chain, overrides, with_base=False)
    return _dump(merged) if merged else ""


def load_hparams(hparams_file: str, overrides: str = "") -> Dict[str, Any]:
    """Load a HyperPyYAML recipe (with the recipes it extends) with command-line overrides applied.

    Raises:
        InputError: a recipe file is missing or unreadable, a command-line key names nothing in the recipe, or
            HyperPyYAML cannot build it.
    """
    from hyperpyyaml import load_hyperpyyaml

    chain = recipe_chain(hparams_file)
    try:
        stream = io.StringIO(_dump(_merged(chain, overrides, with_base=True)))
        stream.name = str(chain[0])  # !include paths are relative to the base recipe
        hparams = load_hyperpyyaml(stream)
    except (ValueError, KeyError, AttributeError, TypeError) as exc:
        raise InputError(f"{hparams_file}: cannot load recipe ({type(exc).__name__}: {exc})") from None
    if "stage" in hparams:
        hparams["stage"] = stage_name(hparams["stage"])
    return hparams


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
    try:
        return _train(sb, hparams_file, run_opts, overrides)
    finally:
        _leave_process_group()


def _train(sb: Any, hparams_file: str, run_opts: Any, overrides: str) -> Any:
    hparams = load_hparams(hparams_file, overrides)
    stage = hparams.get("stage")
    if stage not in STAGES:
        raise InputError(f"{hparams_file}: 'stage' must be one of {sorted(STAGES)}, got {stage!r}")
    budget = hparams.get("max_train_minutes")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float))):
        raise InputError(f"{hparams_file}: max_train_minutes must be a number of minutes or null, got {budget!r}")
    module = importlib.import_module(trainer_module(hparams))
    check = getattr(module, "check_hparams", None)
    if check is not None:  # a stage's own options: a one-line error before anything is written
        check(hparams)
    check_model_paths(hparams)
    chain = recipe_chain(hparams_file)
    sb.create_experiment_directory(experiment_directory=hparams["output_folder"], hyperparams_to_save=str(chain[0]),
                                   overrides=recipe_overrides(chain, overrides))
    return module.train(hparams, run_opts)


def trainer_module(hparams: Dict[str, Any]) -> str:
    """The module that trains a recipe: its architecture's own trainer, else its stage's.

    Raises:
        InputError: the recipe's ``arch`` is not a member of its stage's table.
    """
    from l2s.arch import lookup

    stage = hparams["stage"]
    if hparams.get("arch") is None:
        return STAGES[stage]
    return lookup(stage, hparams["arch"], InputError).trainer or STAGES[stage]


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


def _leave_process_group() -> None:
    """Destroy the process group that a torchrun launch joined, so that its communication threads end before
    the interpreter does (left to exit, a rank can abort with "terminate called without an active exception").

    The trainer's objects (a DDP wrapper holds the group) are collected first, so that the group's last
    reference goes now rather than at interpreter finalization.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()
        gc.collect()


def end_launched_process() -> None:
    """Under torchrun (``WORLD_SIZE`` > 1), end this rank's process at once once its run is done and saved.

    Gloo's worker threads can still hold work whose tensors are freed during interpreter finalization, which
    aborts the rank (SIGABRT) after a successful run and fails the whole launch (pytorch/pytorch#179291);
    leaving with ``os._exit`` after flushing skips that finalization. A single process returns normally.
    """
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
