"""Honest file checks: why an input cannot be read, whether an output can be written, and which
output path an ``OSError`` is about.

Inputs: :func:`check_input_file` says exactly what is wrong (no such file, a broken symbolic link,
a symbolic-link loop, no permission, a directory, empty). Outputs: :func:`check_writable` creates and
removes a temporary file where an output will go, so a read-only folder fails before the work, and
:func:`output_errors` turns an ``OSError`` while writing into an :class:`~l2s.errors.OutputError`
that names the output, never the input.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterator, Optional, Union

from l2s.errors import InputError, OutputError

PathLike = Union[str, "os.PathLike[str]"]

#: ``OSError`` numbers only writing gives (a read-only or full file system, a quota, a size limit).
WRITE_ERRNOS = frozenset({errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: ``OSError`` numbers that describe the place being written (not a bug, not the input).
OUTPUT_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT, errno.EFBIG,
                           errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.EIO})

__all__ = ["check_input_file", "input_problem", "same_file", "check_writable", "output_errors", "output_error",
           "OUTPUT_ERRNOS", "WRITE_ERRNOS"]


def input_problem(path: PathLike) -> Optional[str]:
    """Why ``path`` cannot be opened, in a few words, or None when it can be stat'ed.

    ``Path.exists()`` says False for a missing file, a broken symbolic link and a symbolic-link loop
    alike; this tells them apart.
    """
    p = Path(path)
    try:
        p.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
        if exc.errno == errno.ENOENT and p.is_symlink():
            return f"broken symbolic link (to {os.readlink(p)})"
        if exc.errno == errno.ENOENT:
            return "no such file"
        return (exc.strerror or str(exc)).lower()
    return None


def check_input_file(path: PathLike, what: str = "input") -> Path:
    """``path`` as a :class:`~pathlib.Path` if it is a readable, non-empty regular file.

    Raises:
        InputError: one line saying what is wrong (missing, broken link, link loop, a directory,
            not a regular file, empty, unreadable).
    """
    p = Path(path)
    problem = input_problem(p)
    if problem is not None:
        raise InputError(f"{path}: {problem}")
    mode = p.stat().st_mode
    if stat.S_ISDIR(mode):
        raise InputError(f"{path}: is a directory, expected a {what} file")
    if not stat.S_ISREG(mode):
        raise InputError(f"{path}: not a regular file")
    if p.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    if not os.access(p, os.R_OK):
        raise InputError(f"{path}: permission denied")
    return p


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether two paths name one file: the same path once links are resolved, or the same inode."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): then they are not the same file
        return False


def output_error(path: PathLike, exc: BaseException) -> OutputError:
    """An :class:`OutputError` naming ``path`` and the system's reason (e.g. "No space left on device")."""
    reason = getattr(exc, "strerror", None) or " ".join(str(exc).split()) or type(exc).__name__
    return OutputError(f"{path}: cannot write the output: {reason}")


@contextlib.contextmanager
def output_errors(path: PathLike, errnos: Optional[frozenset] = None) -> Iterator[None]:
    """Turn an ``OSError`` raised while writing ``path`` into an :class:`OutputError` about ``path``.

    Args:
        path: the output.
        errnos: convert only these error numbers (a block that also reads an input passes
            :data:`WRITE_ERRNOS`); None converts every ``OSError``.
    """
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        if errnos is not None and exc.errno not in errnos:
            raise
        raise output_error(path, exc) from exc


def _existing_ancestor(folder: Path) -> Path:
    for candidate in (folder, *folder.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(os.curdir)


def check_writable(folder: PathLike, output: Optional[PathLike] = None) -> None:
    """Fail now, not after the work, if files cannot be created in ``folder``.

    A temporary file is created and removed in ``folder``, or, when ``folder`` does not exist yet,
    a temporary directory in its nearest existing parent (so a refused run leaves no empty folder).

    Args:
        folder: where the outputs go.
        output: the output file to name in the message (default: the folder).

    Raises:
        OutputError: read-only file system, no permission, full disk or quota, a file in the way.
    """
    folder = Path(folder)
    where = f"{output}: cannot write the output in {folder}" if output is not None else \
        f"{folder}: cannot write the output"
    base = _existing_ancestor(folder)
    if not base.is_dir():
        raise OutputError(f"{where}: {base} is not a folder")
    try:
        if base == folder:
            fd, name = tempfile.mkstemp(prefix=".l2s-write-check.", dir=folder)
            os.close(fd)
            os.unlink(name)
        else:
            os.rmdir(tempfile.mkdtemp(prefix=".l2s-write-check.", dir=base))
    except OSError as exc:
        raise OutputError(f"{where}: {exc.strerror or exc}") from exc
