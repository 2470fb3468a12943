"""Frozen config dataclasses to and from plain dicts (YAML, recipes, ``config.yaml``).

One helper for every config of the project: :func:`from_dict` builds a dataclass from a mapping,
recursing into nested dataclass fields, turning YAML lists into the tuples a field is typed with, and
refusing unknown keys and values of the wrong type (a string for a flag) in one line that names them (a typo
must not train or load the wrong model).
:func:`to_dict` is the inverse (tuples become lists, so the result is plain YAML), and :func:`merge`
applies nested overrides to such a dict (a recipe's ``model:`` section over a preset).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Dict, Mapping, Type, TypeVar, Union

from l2s.errors import InputError, L2SError

T = TypeVar("T")

#: what a scalar field accepts (YAML gives ints where floats are meant; a bool is not a number here)
_SCALARS = {
    bool: lambda v: isinstance(v, bool),
    int: lambda v: isinstance(v, int) and not isinstance(v, bool),
    float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    str: lambda v: isinstance(v, str),
}


def _hints(cls: type) -> Dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(kind: Any, value: Any, where: str, error: Type[L2SError]) -> Any:
    """``value`` shaped as the annotation ``kind`` asks: a nested dataclass, a tuple, an optional of them."""
    if value is None:
        return None
    origin = typing.get_origin(kind)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        return _convert(options[0], value, where, error) if len(options) == 1 else value
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        if isinstance(value, kind):
            return value
        if not isinstance(value, Mapping):
            raise error(f"{where}: expected a mapping of {kind.__name__} fields, got {value!r}")
        return from_dict(kind, value, where, error)
    if origin is tuple and isinstance(value, (list, tuple)):
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, where, error) for v in value)
        return tuple(value)
    if kind in _SCALARS and not _SCALARS[kind](value):
        raise error(f"{where}: expected {kind.__name__}, got {value!r}")
    return value


def from_dict(cls: Type[T], data: Mapping[str, Any], where: str = "config",
              error: Type[L2SError] = InputError) -> T:
    """A ``cls`` dataclass from ``data`` (its fields by name; absent ones keep their defaults).

    Args:
        cls: a dataclass type.
        data: field values; nested dataclass fields take mappings, tuple fields take lists.
        where: names the source in error messages (a file, a recipe section).
        error: the :class:`~l2s.errors.L2SError` to raise (``ModelError`` for a checkpoint).

    Raises:
        error: ``data`` is not a mapping, has keys that are not fields of ``cls`` (all of them are named), a
            ``bool``/``int``/``float``/``str`` field has a value of another type, or the dataclass refuses a value
            (its ``__post_init__`` checks).
    """
    if not isinstance(data, Mapping):
        raise error(f"{where}: expected a mapping of {cls.__name__} fields, got {data!r}")
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(str(k) for k in data if k not in names)
    if unknown:
        raise error(f"{where}: unknown {cls.__name__} field{'s' if len(unknown) > 1 else ''} "
                    f"{', '.join(unknown)} (known: {', '.join(names)})")
    hints = _hints(cls)
    values = {k: _convert(hints.get(k), v, f"{where}.{k}", error) for k, v in data.items()}
    try:
        return cls(**values)
    except L2SError as exc:
        raise error(f"{where}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise error(f"{where}: bad {cls.__name__} ({exc})") from None


def to_dict(config: Any) -> Dict[str, Any]:
    """The fields of a dataclass as plain YAML data (nested dataclasses as dicts, tuples as lists)."""
    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> Dict[str, Any]:
    """``base`` with ``overrides`` applied; a mapping over a mapping merges key by key (nested dataclass fields)."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
