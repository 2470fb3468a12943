"""Errors l2s raises on purpose.

The CLI turns every :class:`L2SError` into a one-line message on stderr and
exit code 2 (``--debug`` shows the traceback). Anything else is a bug.
"""


class L2SError(Exception):
    """Base class of expected failures (bad input, missing model...)."""


class InputError(L2SError):
    """A user-supplied file or argument cannot be used."""


class NoFaceError(InputError):
    """No face was found in any frame of a clip."""


class ModelError(L2SError):
    """A model or checkpoint cannot be found, loaded or converted."""


class ContractError(ModelError):
    """A checkpoint was trained with another signal contract than ours."""


class DependencyError(L2SError):
    """An optional dependency (extra) needed by this command is not installed."""
