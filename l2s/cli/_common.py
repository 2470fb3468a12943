"""Helpers shared by the CLI commands: input checks, progress bars, and ``-`` for stdin/stdout."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Optional, TypeVar

from l2s.errors import InputError, L2SError, OutputError

T = TypeVar("T")
#: ``-`` as a file name: read from stdin, or write to stdout (as whisper, ffmpeg and sox do).
STDIO = "-"
STDIN_NAME = "<stdin>"


def existing_file(path: str, what: str = "input") -> Path:
    """A path that exists, is a readable regular file and is not empty, or an :class:`InputError`."""
    from l2s.io.files import check_input_file

    return check_input_file(path, what)


class _Stderr:
    """``sys.stderr`` as it is when written to (the CLI moves it away from native log lines, tests swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    @property
    def encoding(self) -> str:
        return getattr(sys.stderr, "encoding", None) or "utf-8"


def progress(items: Iterable[T], desc: str, total: Optional[int] = None, unit: str = "it") -> Iterable[T]:
    """A tqdm progress bar on stderr: off with ``--quiet``, and when stderr is not a terminal unless
    ``L2S_PROGRESS`` is set."""
    from tqdm.auto import tqdm

    from l2s.cli._options import is_quiet

    disable = is_quiet() or not (sys.stderr.isatty() or os.environ.get("L2S_PROGRESS"))
    return tqdm(items, desc=desc, total=total, unit=unit, disable=disable, file=_Stderr())


def vsr_model_dir(model: str) -> Path:
    """The lip reader's directory of ``model`` (a VSR directory, or a pipeline's ``vsr`` part)."""
    from l2s.hub import component_dir

    return component_dir(model, "vsr")


# ---------------------------------------------------------------------------------------- stdin/stdout


def _binary_stream(name: str):
    stream = getattr(sys, name)
    return getattr(stream, "buffer", stream)


@contextlib.contextmanager
def input_path(path: str, what: str = "video") -> Iterator[Path]:
    """``path`` itself, or for ``-`` a temporary copy of all of stdin (removed afterwards).

    Errors about the temporary copy name ``<stdin>`` instead of its path.

    Raises:
        InputError: stdin is a terminal or empty.
    """
    if path != STDIO:
        yield Path(path)
        return
    stream = _binary_stream("stdin")
    if stream.isatty():
        raise InputError(f"{STDIN_NAME}: is a terminal: pipe a {what} into l2s, or give a file")
    with tempfile.TemporaryDirectory(prefix="l2s-stdin-") as tmp:
        copy = Path(tmp) / "stdin"
        with open(copy, "wb") as fh:
            shutil.copyfileobj(stream, fh, 1 << 20)
        if copy.stat().st_size == 0:
            raise InputError(f"{STDIN_NAME}: empty, expected a {what}")
        try:
            yield copy
        except L2SError as exc:
            if str(copy) not in str(exc):
                raise
            raise type(exc)(str(exc).replace(str(copy), STDIN_NAME)) from exc


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (identifies an input that has no path, such as stdin)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_stdout_pipe(what: str = "audio") -> None:
    """Refuse to write binary ``what`` to a terminal: ``-o -`` is for a pipe or a redirection."""
    if _binary_stream("stdout").isatty():
        raise OutputError(f"-: stdout is a terminal: pipe or redirect the {what} (e.g. `-o - | aplay`), "
                          "or give a file name")


def write_stdout(data: bytes) -> None:
    """Write bytes to stdout and flush (``-o -``)."""
    stream = _binary_stream("stdout")
    try:
        stream.write(data)
        stream.flush()
    except BrokenPipeError:
        raise OutputError("-: the program reading stdout closed the pipe") from None
