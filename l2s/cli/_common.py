"""Helpers shared by the CLI commands: input checks and progress bars."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterable, Optional, TypeVar

from l2s.errors import InputError

T = TypeVar("T")


def existing_file(path: str, what: str = "input") -> Path:
    """A path that exists, is a regular file and is not empty, or an :class:`InputError`."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file")
    if p.is_dir():
        raise InputError(f"{path}: is a directory, expected a {what} file")
    if p.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    return p


def progress(items: Iterable[T], desc: str, total: Optional[int] = None, unit: str = "it") -> Iterable[T]:
    """A tqdm progress bar on stderr (silent when stderr is not a terminal and L2S_PROGRESS is unset)."""
    from tqdm.auto import tqdm

    disable = not (sys.stderr.isatty() or os.environ.get("L2S_PROGRESS"))
    return tqdm(items, desc=desc, total=total, unit=unit, disable=disable, file=sys.stderr)


def vsr_model_dir(model: str) -> Path:
    """The lip reader's directory of ``model`` (a VSR directory, or a pipeline's ``vsr`` part)."""
    from l2s.hub import PIPELINE_FILE, resolve

    model_dir = resolve(model)
    return model_dir / "vsr" if (model_dir / PIPELINE_FILE).is_file() else model_dir
