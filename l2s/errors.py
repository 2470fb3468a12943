"""Errors l2s raises on purpose.

The CLI turns every :class:`L2SError` into a one-line message on stderr and its
``exit_code`` (2, or 130 for :class:`Interrupted`); ``--debug`` shows the traceback.
Anything else is a bug.
"""

#: Exit status of an expected failure (bad input, unwritable output, missing model...).
EXIT_ERROR = 2
#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


class L2SError(Exception):
    """Base class of expected failures (bad input, missing model...)."""

    exit_code = EXIT_ERROR


class InputError(L2SError):
    """A user-supplied file or argument cannot be used."""


class NoFaceError(InputError):
    """No face was found in any frame of a clip (or, with ``--strict``, in too few of them)."""


class OutputError(L2SError):
    """An output cannot be written: a read-only or full disk, no permission, or a file l2s must not replace."""


class ModelError(L2SError):
    """A model or checkpoint cannot be found, loaded or converted."""


class ContractError(ModelError):
    """A checkpoint was trained with another signal contract than ours."""


class DependencyError(L2SError):
    """An optional dependency (extra) needed by this command is not installed."""


class Interrupted(L2SError):
    """The user pressed Ctrl-C (SIGINT); the message says what was finished."""

    exit_code = EXIT_INTERRUPTED
