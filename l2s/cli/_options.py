"""Options every command shares, defined once: ``-v/--verbose``, ``-q/--quiet`` and ``--device``.

:class:`~l2s.cli._group.L2SGroup` adds the verbosity options to every command (nested groups
included), so ``l2s -v synthesize ...`` and ``l2s synthesize -v ...`` mean the same. ``--verbose``
logs the stages, the model's path and the timings (the ``l2s`` logger at INFO) and lets native
libraries (MediaPipe, absl) print their own log lines; ``--quiet`` hides progress bars. Commands
that take a torch device use :func:`device_option`; the value is checked here without importing
torch (so argument errors stay fast) and resolved by :func:`l2s.device.resolve_device`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from typing import Callable, Iterator, Optional

import click

VERBOSE_KEY = "l2s.verbose"
QUIET_KEY = "l2s.quiet"
DEBUG_KEY = "l2s.debug"
DEVICE_METAVAR = "auto|cpu|cuda[:N]"


# ---------------------------------------------------------------------------------------- verbosity


def _root_meta() -> dict:
    ctx = click.get_current_context(silent=True)
    return ctx.find_root().meta if ctx is not None else {}


def is_verbose() -> bool:
    """Whether ``-v`` (or ``--debug``) was given to the running command."""
    meta = _root_meta()
    return bool(meta.get(VERBOSE_KEY) or meta.get(DEBUG_KEY))


def is_quiet() -> bool:
    """Whether ``-q`` was given to the running command."""
    return bool(_root_meta().get(QUIET_KEY))


class _CurrentStderr(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is when a record is emitted (the CLI and its tests swap it)."""

    def __init__(self):
        super().__init__()

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # logging.StreamHandler.__init__ assigns one; the property wins
        pass


class _Formatter(logging.Formatter):
    """``l2s: message`` for l2s's own loggers (``l2s: warning: ...`` above INFO), the logger's name otherwise."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.name == "l2s" or record.name.startswith("l2s."):
            level = "" if record.levelno <= logging.INFO else f"{record.levelname.lower()}: "
            return f"l2s: {level}{message}"
        return f"{record.levelname} {record.name}: {message}"


def configure_logging(verbose: bool, debug: bool) -> None:
    """Route log records to stderr: l2s's at INFO with ``-v`` (DEBUG with ``--debug``), other libraries' at WARNING."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _CurrentStderr)]:
        root.removeHandler(handler)
    handler = _CurrentStderr()
    handler.setFormatter(_Formatter())
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.getLogger("l2s").setLevel(logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING)


def _verbosity_callback(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    meta = ctx.find_root().meta
    key = VERBOSE_KEY if param.name == "verbose" else QUIET_KEY
    meta[key] = bool(meta.get(key)) or bool(value)  # given to the group or to the command: either counts
    configure_logging(bool(meta.get(VERBOSE_KEY)), bool(meta.get(DEBUG_KEY)))


def debug_callback(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """``l2s --debug``: tracebacks (the group reads argv itself) and l2s's debug log."""
    meta = ctx.find_root().meta
    meta[DEBUG_KEY] = bool(meta.get(DEBUG_KEY)) or bool(value)
    configure_logging(bool(meta.get(VERBOSE_KEY)), bool(meta.get(DEBUG_KEY)))


def verbosity_options() -> list:
    """Fresh ``-v/--verbose`` and ``-q/--quiet`` parameters for one command."""
    return [
        click.Option(["-v", "--verbose"], is_flag=True, expose_value=False, callback=_verbosity_callback,
                     help="Log the stages, the model's path and the timings; show native library logs."),
        click.Option(["-q", "--quiet"], is_flag=True, expose_value=False, callback=_verbosity_callback,
                     help="No progress bars."),
    ]


@contextlib.contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Send what native code writes to file descriptor 2 (MediaPipe's and absl's log lines) to /dev/null.

    Python's own stderr (errors, warnings, progress bars, logging) is moved to a copy of the
    terminal's descriptor for the duration, so it still shows, and never mixes with those lines.
    A no-op with ``-v``/``--debug`` or when stderr is not the process's descriptor 2 (tests).
    """
    try:
        real = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        real = False
    if is_verbose() or not real or os.environ.get("L2S_DEBUG", "") not in ("", "0"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    python_stderr = sys.stderr
    sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(saved), "wb", buffering=0), encoding=python_stderr.encoding,
                                  errors="backslashreplace", line_buffering=True, write_through=True)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        replacement, sys.stderr = sys.stderr, python_stderr
        replacement.close()


# ---------------------------------------------------------------------------------------- device


def _check_device(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[str]:
    from l2s.device import parse_device

    if value is None:
        return None
    try:
        return parse_device(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def device_option(help_text: str = "Where the networks run") -> Callable:
    """``--device auto|cpu|cuda|cuda:N`` (default ``auto``: CUDA when available), the same in every command."""
    return click.option("--device", default="auto", show_default=True, metavar=DEVICE_METAVAR,
                        callback=_check_device,
                        help=f"{help_text}: auto (CUDA when available, else CPU), cpu, cuda or cuda:N.")
