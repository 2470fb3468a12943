"""Atomic file creation: write to a temporary sibling, rename on success.

A reader never sees a half-written output, and a failed or interrupted write
leaves nothing behind. A folder that cannot be created or written is an
:class:`~l2s.errors.OutputError` naming the output.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, List, Sequence, Union

from l2s.errors import InputError

PathLike = Union[str, "os.PathLike[str]"]


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def _temporary_beside(dest: Path) -> Iterator[Path]:
    """A new empty file beside ``dest`` (same suffix, hidden name), removed on exit unless moved away."""
    from l2s.io.files import output_errors

    with output_errors(dest):  # a folder that cannot be made or written: an error about the output
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=f".tmp{dest.suffix}", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _move_in(tmp: Path, dest: Path) -> None:
    from l2s.io.files import output_errors

    with output_errors(dest):
        os.replace(tmp, dest)


@contextlib.contextmanager
def atomic_path(dest: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; move it onto ``dest`` on success.

    The temporary file keeps ``dest``'s suffix, so writers that pick a format
    from the extension (PyAV, soundfile, numpy) behave as for ``dest``. On any
    exception the temporary file is removed and ``dest`` is left untouched.
    """
    dest = Path(dest)
    with _temporary_beside(dest) as tmp:
        yield tmp
        _move_in(tmp, dest)


@contextlib.contextmanager
def atomic_paths(dests: Sequence[PathLike]) -> Iterator[List[Path]]:
    """Several files as one unit: yield a temporary path beside each; on success move them in, in order.

    Put the file whose presence marks the whole unit as finished (a sidecar) last: it appears only
    once every other file is in place. On any exception, inside the block or while moving, the
    temporary files are removed, and so are the files already moved in by this call, so the unit
    is either complete or absent (files of an earlier unit stay where no new one replaced them).
    """
    targets = [Path(d) for d in dests]
    with contextlib.ExitStack() as stack:
        temps = [stack.enter_context(_temporary_beside(t)) for t in targets]
        yield temps
        moved: List[Path] = []
        try:
            for tmp, dest in zip(temps, targets):
                _move_in(tmp, dest)
                moved.append(dest)
        except BaseException:
            for dest in moved:
                with contextlib.suppress(OSError):
                    dest.unlink()
            raise


@contextlib.contextmanager
def atomic_dir(dest: PathLike) -> Iterator[Path]:
    """Yield a temporary directory beside ``dest``; on success it replaces ``dest`` whole.

    Readers see either the old directory or the complete new one; on any exception the
    temporary directory is removed and ``dest`` is left untouched.
    """
    from l2s.io.files import output_errors

    dest = Path(dest)
    with output_errors(dest):
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700; outputs get the usual permissions
    try:
        yield tmp
        if dest.is_dir():
            shutil.rmtree(dest)
        elif dest.exists():
            dest.unlink()
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_bytes(dest: PathLike, data: bytes) -> None:
    """Write ``data`` to ``dest`` atomically; a full or read-only disk is an :class:`~l2s.errors.OutputError`."""
    from l2s.io.files import output_errors

    with output_errors(dest), atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(dest: PathLike, text: str) -> None:
    atomic_write_bytes(dest, text.encode("utf-8"))


def check_replaceable(out_dir: PathLike, marker: str) -> None:
    """Refuse to replace an existing directory that is not empty and holds no ``marker`` file.

    Atomic directory writers replace ``out_dir`` whole; this keeps ``-o ~`` from wiping a home folder.

    Raises:
        InputError: ``out_dir`` is a file, or a non-empty directory without ``marker``.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / marker).is_file():
        raise InputError(f"{out}: exists and is not an output of this command (no {marker}); "
                         "refusing to replace it: choose another folder")
