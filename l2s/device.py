"""Torch devices by name: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``, the one resolver every command and
:meth:`~l2s.pipeline.Lip2Speech.from_pretrained` use.

:func:`parse_device` checks the spelling without importing torch (the CLI calls it while parsing
arguments); :func:`resolve_device` turns it into a :class:`torch.device` on this machine, and says in
one line (:class:`~l2s.errors.InputError`) when CUDA is asked for where there is none.
"""

from __future__ import annotations

import re
from typing import Union

from l2s.errors import InputError

AUTO = "auto"
_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")

__all__ = ["AUTO", "parse_device", "resolve_device"]


def parse_device(text: str) -> str:
    """``text`` normalised (``" CUDA:1 "`` -> ``"cuda:1"``) if it names a device l2s runs on.

    Raises:
        ValueError: anything but ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    """
    name = str(text).strip().lower()
    if not _PATTERN.match(name):
        raise ValueError(f"{text!r} is not a device: expected auto, cpu, cuda or cuda:N")
    return name


def resolve_device(device: Union[str, "torch.device"]) -> "torch.device":  # noqa: F821
    """The :class:`torch.device` ``device`` names on this machine (``auto``: the first GPU, else the CPU).

    Raises:
        InputError: a misspelt device, CUDA asked for on a CPU-only torch build or a machine without a
            GPU, or a GPU index beyond those present.
    """
    import torch

    if isinstance(device, torch.device):
        device = str(device)
    try:
        name = parse_device(device)
    except ValueError as exc:
        raise InputError(f"--device {exc}") from None
    if name == AUTO:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda":
        if torch.version.cuda is None:
            raise InputError(f"--device {name}: this torch is a CPU-only build (torch {torch.__version__}); "
                             "use --device cpu, or install a CUDA build of torch")
        if not torch.cuda.is_available():
            raise InputError(f"--device {name}: no CUDA device is available on this machine")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            last = "cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}"
            raise InputError(f"--device {name}: this machine has {count} CUDA device(s) ({last})")
    return dev
