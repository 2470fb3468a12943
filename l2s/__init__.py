"""l2s: lip-to-speech. Silent talking-face video in, speech out."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("l2s")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
