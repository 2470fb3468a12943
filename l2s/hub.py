"""Checkpoint directories: save, load, and resolve a name, a path or a hub repo id.

A model is a directory holding ``config.yaml`` and ``model.safetensors`` (and files its architecture adds,
such as a tokenizer)::

    format_version: 2
    kind: generator          # the stage family (l2s.arch.FAMILIES)
    arch: denoiser           # the family's member whose config class reads ``config``
    config: {...}            # the model's config dataclass fields
    contract: {...}          # the SignalContract it was trained with

A pipeline is a directory with ``pipeline.yaml`` naming component subdirectories
(:mod:`l2s.pipeline.spec`). Loading checks the stored contract against ours and fails with
:class:`~l2s.errors.ContractError` on mismatch; format 1 (the stage names before ``prior``, ``generator``
and ``guide``) is read through :mod:`l2s.compat`. :func:`l2s.arch.load_model` builds the model.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import torch
import yaml

from l2s.compat import stage_name, upgrade_model_meta, upgrade_pipeline
from l2s.config import CONTRACT, SignalContract
from l2s.defaults import DEFAULT_PIPELINE  # noqa: F401  (re-exported: the default of every --model)
from l2s.errors import ContractError, ModelError
from l2s.io.atomic import atomic_dir
from l2s.structs import from_dict, to_dict

FORMAT_VERSION = 2
#: the format the first l2s versions wrote, still read (:mod:`l2s.compat`)
OLD_FORMAT_VERSION = 1
CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "model.safetensors"
PIPELINE_FILE = "pipeline.yaml"
BUNDLED_PACKAGE = "l2s.pretrained"


@dataclass(frozen=True)
class ModelDir:
    """A loaded checkpoint directory.

    Attributes:
        kind: the stage family.
        arch: the family member (architecture) whose config ``config`` holds.
    """

    path: Path
    kind: str
    arch: Optional[str]
    config: Dict[str, Any]
    state_dict: Dict[str, torch.Tensor]
    contract: SignalContract


def _as_dict(config: Any) -> Dict[str, Any]:
    if dataclasses.is_dataclass(config):
        return to_dict(config)
    return dict(config)


def save_model_dir(
    path: Union[str, Path],
    kind: str,
    arch: str,
    config: Any,
    state_dict: Mapping[str, torch.Tensor],
    contract: SignalContract = CONTRACT,
    extra_files: Optional[Mapping[str, Union[str, Path]]] = None,
) -> Path:
    """Write a model directory atomically (a temporary sibling renamed into place).

    :func:`l2s.arch.save_model` is the usual way in: it finds ``kind`` and ``arch`` from the model.

    Args:
        path: destination directory; replaced if it exists.
        kind: the stage family (``vsr``, ``prior``, ``generator``, ``guide``, ``vocoder``).
        arch: the family member (``auto-avsr``, ``denoiser``, ``hifigan``...).
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
            "arch": arch,
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
        theirs = from_dict(SignalContract, dict(stored), f"{where}: contract", ContractError)
    except ContractError as exc:
        raise ContractError(f"unreadable signal contract: {exc}") from None
    if theirs != CONTRACT:
        ours, other = CONTRACT.to_dict(), theirs.to_dict()
        diffs = [f"{sec}.{k}: {other[sec][k]} (ours {ours[sec][k]})"
                 for sec in ours for k in ours[sec] if ours[sec][k] != other[sec][k]]
        raise ContractError(f"{where}: trained with another signal contract: " + "; ".join(diffs))
    return theirs


def read_model_meta(path: Union[str, Path]) -> Dict[str, Any]:
    """The ``config.yaml`` of a model directory in the current format (format 1 upgraded in memory).

    Raises:
        ModelError: no ``config.yaml``, unreadable, or of a format this l2s does not read.
    """
    path = Path(path)
    cfg_file = path / CONFIG_FILE
    if not cfg_file.is_file():
        raise ModelError(f"{path}: not a model directory (no {CONFIG_FILE})")
    try:
        meta = yaml.safe_load(cfg_file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ModelError(f"{cfg_file}: unreadable YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(meta, dict):
        raise ModelError(f"{cfg_file}: expected a mapping")
    version = meta.get("format_version")
    if version == OLD_FORMAT_VERSION:
        meta = {**upgrade_model_meta(meta, str(path)), "format_version": FORMAT_VERSION}
    elif version != FORMAT_VERSION:
        raise ModelError(f"{path}: checkpoint format_version {version!r}, this l2s reads {FORMAT_VERSION} "
                         f"(and {OLD_FORMAT_VERSION})")
    return meta


def read_pipeline_yaml(directory: Union[str, Path]) -> Dict[str, Any]:
    """``directory/pipeline.yaml`` as a mapping in the current format (format 1 upgraded in memory).

    Raises:
        ModelError: no ``pipeline.yaml``, unreadable, or of a format this l2s does not read.
    """
    path = Path(directory) / PIPELINE_FILE
    if not path.is_file():
        raise ModelError(f"{directory}: not a pipeline directory (no {PIPELINE_FILE})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ModelError(f"{path}: unreadable YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a mapping")
    version = data.get("format_version")
    if version == OLD_FORMAT_VERSION:
        data = {**upgrade_pipeline(data, str(path)), "format_version": FORMAT_VERSION}
    elif version != FORMAT_VERSION:
        raise ModelError(f"{path}: pipeline format_version {version!r}, this l2s reads {FORMAT_VERSION} "
                         f"(and {OLD_FORMAT_VERSION})")
    return data


def load_model_dir(path: Union[str, Path], kind: Optional[str] = None) -> ModelDir:
    """Read a model directory written by :func:`save_model_dir`, checking kind and contract.

    Args:
        kind: the stage family it must hold (a format-1 name is accepted too), or None.
    """
    from safetensors.torch import load_file

    path = Path(path)
    weights = path / WEIGHTS_FILE
    if not (path / CONFIG_FILE).is_file() or not weights.is_file():
        raise ModelError(f"{path}: not a model directory (needs {CONFIG_FILE} and {WEIGHTS_FILE})")
    meta = read_model_meta(path)
    kind = stage_name(kind)
    if kind is not None and meta.get("kind") != kind:
        raise ModelError(f"{path}: holds a {meta.get('kind')!r} model, expected {kind!r}")
    contract = check_contract(meta.get("contract", {}), path)
    return ModelDir(path=path, kind=meta["kind"], arch=meta.get("arch"), config=dict(meta.get("config") or {}),
                    state_dict=load_file(str(weights)), contract=contract)


def bundled_dir(name: str) -> Optional[Path]:
    """The directory of a model shipped inside the package, if there is one by that name."""
    root = resources.files(BUNDLED_PACKAGE)
    candidate = Path(str(root)) / name
    return candidate if candidate.is_dir() else None


@dataclass(frozen=True)
class HubOptions:
    """Where and how a Hugging Face repo id is fetched (``huggingface_hub.snapshot_download``'s options).

    Attributes:
        revision: a branch, tag or commit hash (default: the repo's main branch).
        cache_dir: the Hub cache to use (default: ``HF_HUB_CACHE``, ``~/.cache/huggingface/hub``).
        local_files_only: use the cache only, never the network (also set by ``HF_HUB_OFFLINE=1``).
        token: an access token for a private or gated repo (default: the saved login / ``HF_TOKEN``).
    """

    revision: Optional[str] = None
    cache_dir: Optional[Union[str, Path]] = None
    local_files_only: bool = False
    token: Optional[Union[str, bool]] = None


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")


def hub_error(repo_id: str, exc: BaseException, options: HubOptions, action: str = "download") -> ModelError:
    """The one-line reason a repo could not be fetched (or written: ``action="upload"``), for each way the Hub
    or the network says no."""
    from huggingface_hub.utils import (GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError,
                                       RepositoryNotFoundError, RevisionNotFoundError)

    revision = f" at revision {options.revision!r}" if options.revision else ""
    if isinstance(exc, GatedRepoError):  # before RepositoryNotFoundError, its parent class
        return ModelError(f"{repo_id}: a gated repo: accept its conditions on huggingface.co, then log in "
                          "(`hf auth login`) or pass a token")
    if isinstance(exc, RepositoryNotFoundError):
        return ModelError(f"{repo_id}: no such model repo on the Hugging Face Hub, or one this token may not "
                          f"{action} (log in with `hf auth login`, set HF_TOKEN or pass a token)")
    if isinstance(exc, RevisionNotFoundError):
        return ModelError(f"{repo_id}: no revision {options.revision!r} (a branch, tag or commit hash)")
    if isinstance(exc, LocalEntryNotFoundError):
        where = f"the Hub cache {options.cache_dir}" if options.cache_dir else "the local Hub cache"
        if options.local_files_only or _hub_offline():
            why = "offline (local_files_only or HF_HUB_OFFLINE=1)"
        else:
            cause = exc.__cause__ or exc.__context__
            why = "the Hugging Face Hub cannot be reached" + (f" ({type(cause).__name__})" if cause else "")
        return ModelError(f"{repo_id}{revision}: not in {where}, and {why}: connect to the network once to "
                          "download it, or pass a local pipeline directory")
    if isinstance(exc, HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return ModelError(f"{repo_id}{revision}: the Hugging Face Hub refused the {action}"
                          + (f" (HTTP {status})" if status else "") + f": {first}")
    if isinstance(exc, (OSError, ConnectionError, TimeoutError)):
        return ModelError(f"{repo_id}{revision}: the {action} failed, the Hugging Face Hub cannot be reached "
                          f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})")
    return ModelError(f"{repo_id}{revision}: the Hugging Face Hub {action} failed ({type(exc).__name__}: "
                      f"{' '.join(str(exc).split())[:200]})")


def is_repo_id(text: str) -> bool:
    """Whether ``text`` reads as a Hugging Face repo id (``owner/name``), not a path."""
    return text.count("/") == 1 and not text.startswith((".", "/", "~")) and all(text.split("/"))


def resolve(name_or_path: Union[str, Path], hub: HubOptions = HubOptions()) -> Path:
    """A local directory for a bundled name, a local path, or a Hugging Face repo id.

    Hub downloads honour ``HF_HUB_OFFLINE`` (then only the local cache is used) and ``hub``'s revision,
    cache, offline flag and token.

    Raises:
        ModelError: no such directory, bundled name or repo; or the repo cannot be fetched (one line that
            says why: offline and not cached, network down, no such repo or revision, gated, HTTP error).
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
    if is_repo_id(text):
        from huggingface_hub import snapshot_download

        from l2s import __version__

        try:
            return Path(snapshot_download(repo_id=text, revision=hub.revision, cache_dir=hub.cache_dir,
                                          local_files_only=hub.local_files_only or _hub_offline(),
                                          token=hub.token, library_name="l2s", library_version=__version__))
        except Exception as exc:  # the hub raises many types; hub_error says which one in words
            raise hub_error(text, exc, hub) from None
    raise ModelError(f"{text}: no such model (not a directory, not a bundled name, not a hub repo id)")


def component_dir(name_or_path: Union[str, Path], part: str) -> Path:
    """The directory of one stage's model: ``name_or_path`` itself, or a pipeline's ``part`` (``vsr``, ``guide``...)
    when it names a pipeline (a bundled name such as ``synthgrid-small``, a path or a hub id)."""
    model_dir = resolve(name_or_path)
    return model_dir / part if (model_dir / PIPELINE_FILE).is_file() else model_dir


def push_folder_to_hub(folder: Union[str, Path], repo_id: str, token: Optional[Union[str, bool]] = None,
                       private: Optional[bool] = None, branch: Optional[str] = None,
                       commit_message: str = "Upload l2s pipeline", create_pr: bool = False) -> str:
    """Upload a saved directory to a Hugging Face model repo (created if needed) with ``HfApi``.

    Returns:
        The URL of the commit.

    Raises:
        ModelError: the repo cannot be created or written (one line, as for downloads).
    """
    from huggingface_hub import HfApi

    api = HfApi(token=token, library_name="l2s")
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        if branch:
            api.create_branch(repo_id, branch=branch, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model", revision=branch,
                                 commit_message=commit_message, create_pr=create_pr)
    except Exception as exc:
        raise hub_error(repo_id, exc, HubOptions(revision=branch, token=token), action="upload") from None
    return str(getattr(info, "commit_url", info))
