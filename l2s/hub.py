"""Checkpoint directories: save, load, and resolve a name, a path or a hub repo id.

A model is a directory holding ``config.yaml`` and ``model.safetensors``::

    format_version: 1
    kind: vsr                # which builder reads ``config``
    config: {...}            # the model's dataclass fields
    contract: {...}          # the SignalContract it was trained with

A pipeline is a directory with ``pipeline.yaml`` naming component subdirectories.
Loading checks the stored contract against ours and fails with
:class:`~l2s.errors.ContractError` on mismatch.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Union

import torch
import yaml

from l2s.config import CONTRACT, SignalContract
from l2s.errors import ContractError, ModelError
from l2s.io.atomic import atomic_dir

FORMAT_VERSION = 1
CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "model.safetensors"
PIPELINE_FILE = "pipeline.yaml"
BUNDLED_PACKAGE = "l2s.pretrained"


@dataclass(frozen=True)
class ModelDir:
    """A loaded checkpoint directory."""

    path: Path
    kind: str
    config: Dict[str, Any]
    state_dict: Dict[str, torch.Tensor]
    contract: SignalContract


def _as_dict(config: Any) -> Dict[str, Any]:
    if dataclasses.is_dataclass(config):
        return dataclasses.asdict(config)
    return dict(config)


def save_model_dir(
    path: Union[str, Path],
    kind: str,
    config: Any,
    state_dict: Mapping[str, torch.Tensor],
    contract: SignalContract = CONTRACT,
    extra_files: Optional[Mapping[str, Union[str, Path]]] = None,
) -> Path:
    """Write a model directory atomically (a temporary sibling renamed into place).

    Args:
        path: destination directory; replaced if it exists.
        kind: the model family (``vsr``, ``f0_ddsp``, ``melgen``, ``guide_asr``, ``vocoder``...).
        config: a dataclass (or mapping) of the model's hyper-parameters.
        state_dict: tensors to store (made contiguous; shared storage is copied).
        extra_files: files to copy in beside the weights (a tokenizer model, say), by name.
    """
    from safetensors.torch import save_file

    path = Path(path)
    with atomic_dir(path) as tmp:
        meta = {
            "format_version": FORMAT_VERSION,
            "kind": kind,
            "config": _as_dict(config),
            "contract": contract.to_dict(),
        }
        (tmp / CONFIG_FILE).write_text(yaml.safe_dump(meta, sort_keys=False))
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}
        save_file(tensors, str(tmp / WEIGHTS_FILE))
        for name, src in (extra_files or {}).items():
            shutil.copyfile(src, tmp / name)
    return path


def check_contract(stored: Mapping[str, Any], where: Union[str, Path]) -> SignalContract:
    """Refuse a checkpoint whose signal contract differs from ours."""
    try:
        theirs = SignalContract.from_dict(dict(stored))
    except TypeError as exc:
        raise ContractError(f"{where}: unreadable signal contract ({exc})") from None
    if theirs != CONTRACT:
        ours, other = CONTRACT.to_dict(), theirs.to_dict()
        diffs = [f"{sec}.{k}: {other[sec][k]} (ours {ours[sec][k]})"
                 for sec in ours for k in ours[sec] if ours[sec][k] != other[sec][k]]
        raise ContractError(f"{where}: trained with another signal contract: " + "; ".join(diffs))
    return theirs


def load_model_dir(path: Union[str, Path], kind: Optional[str] = None) -> ModelDir:
    """Read a model directory written by :func:`save_model_dir`, checking kind and contract."""
    from safetensors.torch import load_file

    path = Path(path)
    cfg_file, weights = path / CONFIG_FILE, path / WEIGHTS_FILE
    if not cfg_file.is_file() or not weights.is_file():
        raise ModelError(f"{path}: not a model directory (needs {CONFIG_FILE} and {WEIGHTS_FILE})")
    meta = yaml.safe_load(cfg_file.read_text()) or {}
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelError(f"{path}: checkpoint format_version {version!r}, this l2s reads {FORMAT_VERSION}")
    if kind is not None and meta.get("kind") != kind:
        raise ModelError(f"{path}: holds a {meta.get('kind')!r} model, expected {kind!r}")
    contract = check_contract(meta.get("contract", {}), path)
    return ModelDir(path=path, kind=meta["kind"], config=meta.get("config", {}),
                    state_dict=load_file(str(weights)), contract=contract)


def load_module(name_or_path: Union[str, Path], kind: str, build: Callable[[Dict[str, Any]], torch.nn.Module],
                device: Union[str, torch.device] = "cpu") -> torch.nn.Module:
    """Rebuild a model from a model directory, bundled name or hub repo id, in eval mode.

    Args:
        kind: the model kind the directory must hold.
        build: makes the (untrained) module from the stored config dict.

    Raises:
        ModelError: the directory is not a loadable ``kind`` checkpoint (bad config, weights that
            do not fit it), with the reason.
    """
    loaded = load_model_dir(resolve(name_or_path), kind=kind)
    try:
        model = build(loaded.config)
        model.load_state_dict(loaded.state_dict, strict=True)
    except (TypeError, RuntimeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"{loaded.path}: not a loadable {kind} checkpoint ({reason})") from None
    return model.to(device).eval()


#: the pipeline bundled inside the package: the default of every command that takes --model
DEFAULT_PIPELINE = "synthgrid-small"


def bundled_dir(name: str) -> Optional[Path]:
    """The directory of a model shipped inside the package, if there is one by that name."""
    root = resources.files(BUNDLED_PACKAGE)
    candidate = Path(str(root)) / name
    return candidate if candidate.is_dir() else None


def resolve(name_or_path: Union[str, Path]) -> Path:
    """A local directory for a bundled name, a local path, or a Hugging Face repo id.

    Hub downloads honour ``HF_HUB_OFFLINE`` (then only the local cache is used).
    """
    text = str(name_or_path)
    local = Path(text).expanduser()
    if local.exists():
        if not local.is_dir():
            raise ModelError(f"{local}: a model must be a directory")
        return local
    bundled = bundled_dir(text)
    if bundled is not None:
        return bundled
    if text.count("/") == 1 and not text.startswith((".", "/")):
        try:
            from huggingface_hub import snapshot_download
        except ImportError:  # pragma: no cover - huggingface_hub ships with diffusers
            raise ModelError(f"{text}: not a local path, and huggingface_hub is not installed") from None
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")
        try:
            return Path(snapshot_download(repo_id=text, local_files_only=offline))
        except Exception as exc:  # the hub raises many types; all mean "cannot have it"
            reason = "offline and not in the local cache" if offline else type(exc).__name__
            raise ModelError(f"{text}: cannot fetch from the hub ({reason})") from None
    raise ModelError(f"{text}: no such model (not a directory, not a bundled name, not a hub repo id)")
