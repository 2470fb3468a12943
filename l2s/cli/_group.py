"""The click group class behind ``l2s``: lazy sub-commands, shared options and one-line errors.

Sub-commands are imported only when used, so ``l2s --help`` stays fast and a
command whose optional dependencies are missing does not break the others.
Every command (nested ones included) gets ``-v/--verbose`` and ``-q/--quiet``
(:mod:`l2s.cli._options`), and a folder argument (``click.Path(file_okay=False)``)
refuses ``-``, which would otherwise become a folder named ``-``.

Errors: :class:`~l2s.errors.L2SError` and click's usage errors become one line on
stderr and exit code 2 (:class:`~l2s.errors.Interrupted`: 130); Ctrl-C anywhere
else is ``l2s: interrupted``, exit 130; an ``OSError`` about the file system
(read-only, full, no permission) names its file, exit 2, and a missing extra or a
torchaudio whose extension does not load says what to install; anything else is reported
as an internal error (exit 1). ``--debug`` (or ``L2S_DEBUG=1``) re-raises instead,
with the traceback.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import logging
import os
import sys
import time
from typing import Dict, List, Optional

import click

from l2s.errors import EXIT_ERROR, EXIT_INTERRUPTED, Interrupted, L2SError

EXIT_INPUT = EXIT_ERROR
EXIT_INTERNAL = 1
STDIO = "-"
_AUGMENTED = "_l2s_augmented"

# When a command's process ends, leave torch's and MediaPipe's object graphs out of the interpreter's last
# cyclic collection: it costs ~0.6 s of CPU at every exit and collects nothing of ours (outputs are closed
# and renamed before). Registered first, so it runs after every other exit handler.
atexit.register(gc.freeze)


def _debug_requested(args: Optional[List[str]]) -> bool:
    argv = sys.argv[1:] if args is None else list(args)
    return "--debug" in argv or os.environ.get("L2S_DEBUG", "") not in ("", "0")


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


class _FolderPath(click.Path):
    """A folder path that is not ``-`` (stdin/stdout cannot be a folder)."""

    def convert(self, value, param, ctx):
        if value == STDIO:
            self.fail("'-' (stdin/stdout) cannot be used here: this is a folder", param, ctx)
        return super().convert(value, param, ctx)


def _no_dash_folder(param: click.Parameter) -> None:
    kind = param.type
    if isinstance(kind, click.Path) and not kind.file_okay and not isinstance(kind, _FolderPath):
        folder = _FolderPath.__new__(_FolderPath)
        folder.__dict__.update(kind.__dict__)  # the same checks (exists, writable...), plus the '-' refusal
        param.type = folder


def augment(command: click.Command) -> click.Command:
    """Add the shared options to ``command`` (and, for a group, to its sub-commands), once."""
    if getattr(command, _AUGMENTED, False):
        return command
    from l2s.cli._options import verbosity_options

    names = {opt for p in command.params for opt in getattr(p, "opts", [])}
    if not ({"-v", "--verbose", "-q", "--quiet"} & names):
        command.params.extend(verbosity_options())
    for param in command.params:
        _no_dash_folder(param)
    setattr(command, _AUGMENTED, True)
    if isinstance(command, click.Group) and not isinstance(command, LazyGroup):
        for sub in command.commands.values():
            augment(sub)
    return command


class LazyGroup(click.Group):
    """A group whose commands live in other modules, named ``"module:attribute"``."""

    def __init__(self, *args, lazy_commands: Optional[Dict[str, str]] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> List[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> Optional[click.Command]:
        if cmd_name in self.lazy_commands:
            module_name, attr = self.lazy_commands[cmd_name].split(":")
            return augment(getattr(importlib.import_module(module_name), attr))
        command = super().get_command(ctx, cmd_name)
        return None if command is None else augment(command)


class L2SGroup(LazyGroup):
    """The top-level group: maps expected failures to a one-line message and exit 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        debug = _debug_requested(args)
        name = "l2s"
        start = time.perf_counter()
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            logging.getLogger("l2s.cli").info("done in %.2f s", time.perf_counter() - start)
        except click.ClickException as exc:
            click.echo(f"{name}: error: {_one_line(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort as exc:
            if isinstance(exc.__cause__, KeyboardInterrupt) or isinstance(exc.__context__, KeyboardInterrupt):
                click.echo(f"{name}: interrupted", err=True)
                sys.exit(EXIT_INTERRUPTED)
            click.echo(f"{name}: aborted", err=True)
            sys.exit(EXIT_INTERNAL)
        except L2SError as exc:
            if debug:
                raise
            kind = "" if isinstance(exc, Interrupted) else "error: "
            click.echo(f"{name}: {kind}{_one_line(exc)}", err=True)
            sys.exit(exc.exit_code)
        except (ImportError, OSError) as exc:  # an extra not installed, torchaudio's extension, the file system
            if debug:
                raise
            expected = _environment_error(exc, self._command_of(args))
            if expected is None:
                _internal(name, exc)
            click.echo(f"{name}: error: {_one_line(expected)}", err=True)
            sys.exit(EXIT_INPUT)
        except Exception as exc:  # a bug: say so in one line, keep the traceback for --debug
            if debug:
                raise
            _internal(name, exc)
        sys.exit(rv if isinstance(rv, int) else 0)

    def _command_of(self, args: Optional[List[str]]) -> str:
        """``l2s NAME`` for the sub-command on the command line (``l2s`` when there is none)."""
        argv = sys.argv[1:] if args is None else list(args)
        return next((f"l2s {a}" for a in argv if a in self.lazy_commands), "l2s")


def _internal(name: str, exc: BaseException) -> None:
    click.echo(f"{name}: internal error: {type(exc).__name__}: {_one_line(exc)} "
               "(rerun with --debug for the traceback)", err=True)
    sys.exit(EXIT_INTERNAL)


def _environment_error(exc: BaseException, what: str) -> Optional[str]:
    """The one-line reason for a failure of the installation or the file system, or None (a bug)."""
    from l2s.extras import dependency_error, torchaudio_error
    from l2s.io.files import OUTPUT_ERRNOS

    if isinstance(exc, ImportError):
        missing = dependency_error(exc, what)
        if missing is not None:
            return str(missing)
    broken = torchaudio_error(exc)
    if broken is not None:
        return str(broken)
    if isinstance(exc, OSError) and exc.errno in OUTPUT_ERRNOS and exc.filename:
        # the file system refused (read-only, full, no permission): the user's to fix, not a bug
        return f"{exc.filename}: {exc.strerror}"
    return None
