"""The architecture tables: one per stage family, each member declared once, next to its model.

A stage of the pipeline (``vsr``, ``aligner``, ``prior``, ``generator``, ``guide``, ``vocoder``) has members,
its *architectures*: the lip reader ``auto-avsr``, the generators ``denoiser`` and ``lipvoicer``, the vocoders
``hifigan``, ``vocos`` and ``griffinlim``... An architecture module declares its member as a module-level
:class:`Architecture` beside its model and config classes::

    ARCHITECTURE = Architecture(family="vocoder", name="hifigan", model_cls=HiFiGAN, config_cls=HiFiGANConfig,
                                presets={"v1": HIFIGAN_V1, "tiny": HIFIGAN_TINY})

Everything that needs an architecture by name (loading and saving model directories, training, ``l2s pipeline
build``, ``l2s bench``, the untrained pipelines) looks it up here. Lookups are lazy: the first lookup in a
family imports the modules of the family's package (:data:`FAMILY_PACKAGES`) and collects their members, plus
those of the installed distributions' ``l2s.architectures`` entry points (each names a module), plus those given
to :func:`register` (a module a user imports). Adding a vocoder is one module with its ``ARCHITECTURE``.

Model directories (:mod:`l2s.hub`) store the family as ``kind`` and the member as ``arch``; :func:`load_model`
and :func:`save_model` read and write them through the table.
"""

from __future__ import annotations

import importlib
import pkgutil
import tempfile
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import torch

from l2s.errors import InputError, ModelError
from l2s.structs import from_dict, merge, to_dict

#: The stage families, in pipeline order.
FAMILIES = ("vsr", "aligner", "prior", "generator", "guide", "vocoder")
#: The package whose modules declare each family's members.
FAMILY_PACKAGES = {
    "vsr": "l2s.models.vsr",
    "aligner": "l2s.models.aligner",
    "prior": "l2s.models.prior",
    "generator": "l2s.models.generator",
    "guide": "l2s.models.guide",
    "vocoder": "l2s.vocoder",
}
#: Entry-point group of third-party architecture modules.
ENTRY_POINT_GROUP = "l2s.architectures"

PathLike = Union[str, Path]


@dataclass(frozen=True)
class Architecture:
    """A member of a stage family.

    Attributes:
        family: one of :data:`FAMILIES`.
        name: the member's name (``arch`` in ``config.yaml`` and in recipes).
        model_cls: the ``nn.Module`` class; ``model_cls(config)`` builds an untrained model.
        config_cls: its frozen config dataclass (stored as ``config`` in ``config.yaml``).
        presets: named configs (``tiny``, ``base``...): recipes start from one, the untrained pipelines use them.
        needs_weights: False for a member that is used without a model directory of ours (it is named in
            ``pipeline.yaml`` instead, like the training-free ``griffinlim`` vocoder); :meth:`create` builds it
            from its ``default`` preset (or the config's defaults).
        init: builds an untrained model from a config, when ``model_cls(config)`` is not all (a random draw
            the network needs, weights from elsewhere).
        load: ``(config, stored ModelDir) -> model`` when the weights need more than a strict
            ``load_state_dict`` (a tokenizer, a language model, weight norm to fold).
        files: ``(model, scratch dir) -> {file name: path}``: files saved beside the weights.
        stage: ``(model, **context) -> the object the pipeline runs`` for families whose stage is more than the
            network: a generator with its sampler settings, a guide with its tokenizer.
        settings_cls: the frozen dataclass of a generator's sampler settings (``pipeline.yaml``'s ``generator:``).
        trainer: the module whose ``train(hparams, run_opts)`` trains it, when it is not its stage's
            (``l2s.train.<family>``): ``l2s train`` picks it from the recipe's ``arch``.
        description: one line for listings.
    """

    family: str
    name: str
    model_cls: type
    config_cls: type
    presets: Mapping[str, Any] = field(default_factory=dict)
    needs_weights: bool = True
    init: Optional[Callable[[Any], torch.nn.Module]] = None
    load: Optional[Callable[[Any, Any], torch.nn.Module]] = None
    files: Optional[Callable[[torch.nn.Module, Path], Mapping[str, Path]]] = None
    stage: Optional[Callable[..., Any]] = None
    settings_cls: Optional[type] = None
    trainer: Optional[str] = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"architecture {self.name!r}: unknown family {self.family!r}; expected one of {FAMILIES}")

    def configure(self, preset: Optional[str] = None, overrides: Optional[Mapping[str, Any]] = None,
                  where: str = "model", error=InputError, derived: Optional[Mapping[str, Any]] = None,
                  reserved: Tuple[str, ...] = ()) -> Any:
        """A config: a preset (None: the config's defaults) with field overrides (nested mappings merge into
        nested configs), then the fields the caller derives (a feature width that follows the lip reader).

        Args:
            derived: field values the caller sets (nested mappings for nested configs).
            reserved: more dotted field paths (``f0.feature_dim``) the overrides may not set.

        Raises:
            InputError: an unknown preset, an unknown field, or an override of a derived or reserved field.
        """
        if preset is None:
            base = self.config_cls()
        elif preset in self.presets:
            base = self.presets[preset]
        else:
            raise error(f"{where}: {self.family} architecture {self.name!r} has no preset {preset!r} "
                        f"(presets: {', '.join(self.presets) or 'none'})")
        overrides, derived = dict(overrides or {}), dict(derived or {})
        clash = sorted(set(_leaves(overrides)) & (set(_leaves(derived)) | set(reserved)))
        if clash:
            raise error(f"{where}: {', '.join(clash)} cannot be set here: it follows from the other stages")
        data = merge(merge(to_dict(base), overrides), derived)
        return from_dict(self.config_cls, data, where, error)

    def build(self, config: Any) -> torch.nn.Module:
        """An untrained model of ``config`` (for a member without weights: the ready one)."""
        return self.init(config) if self.init is not None else self.model_cls(config)

    def create(self, preset: Optional[str] = None, **overrides: Any) -> torch.nn.Module:
        """:meth:`build` of a preset (None: the ``default`` preset if there is one, else the config's defaults)
        with field overrides."""
        if preset is None and "default" in self.presets:
            preset = "default"
        return self.build(self.configure(preset, overrides))


def _leaves(data: Mapping[str, Any], prefix: str = "") -> List[str]:
    """The dotted paths of the non-mapping values of a nested mapping."""
    out: List[str] = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        out.extend(_leaves(value, path + ".") if isinstance(value, Mapping) else [path])
    return out


# ---------------------------------------------------------------------------------------------------- the table

_registered: Dict[str, Dict[str, Architecture]] = {f: {} for f in FAMILIES}
_scanned: Dict[str, Dict[str, Architecture]] = {}


def _members(module: ModuleType) -> List[Architecture]:
    """The architectures a module declares: its ``Architecture`` values and the items of tuples of them
    (``ARCHITECTURES``, for a module with several members)."""
    found: List[Architecture] = []
    for value in vars(module).values():
        if isinstance(value, Architecture):
            found.append(value)
        elif isinstance(value, tuple) and value and all(isinstance(v, Architecture) for v in value):
            found.extend(value)
    return found


def _add(table: Dict[str, Architecture], entry: Architecture, source: str) -> None:
    have = table.get(entry.name)
    if have is not None and have is not entry:
        raise ModelError(f"two {entry.family} architectures are named {entry.name!r} (the second from {source})")
    table[entry.name] = entry


def _entry_point_modules() -> List[str]:
    return [ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)]


def _scan(family: str) -> Dict[str, Architecture]:
    """The members declared in the family's package and in the entry-point modules (imported once)."""
    if family in _scanned:
        return _scanned[family]
    table: Dict[str, Architecture] = {}
    package = importlib.import_module(FAMILY_PACKAGES[family])
    names = [package.__name__] + [f"{package.__name__}.{info.name}"
                                  for info in pkgutil.iter_modules(package.__path__) if not info.name.startswith("_")]
    for name in names + _entry_point_modules():
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            if name in names:
                raise
            raise ModelError(f"architecture module {name} ({ENTRY_POINT_GROUP} entry point) does not import: "
                             f"{exc}") from None
        for entry in _members(module):
            if entry.family == family:
                _add(table, entry, name)
    _scanned[family] = table
    return table


def register(*entries: Union[Architecture, ModuleType]) -> None:
    """Add architectures (or every member a module declares) to their families' tables.

    Registering the same object twice is harmless; another object under a taken name is refused.
    """
    for item in entries:
        for entry in ([item] if isinstance(item, Architecture) else _members(item)):
            _add(_registered[entry.family], entry, "register()")


def unregister(family: str, name: str) -> None:
    """Remove a member added with :func:`register` (tests clean up with it)."""
    _registered[family].pop(name, None)


def architectures(family: str) -> Dict[str, Architecture]:
    """Every member of ``family``, by name."""
    if family not in FAMILIES:
        raise InputError(f"unknown stage family {family!r}; expected one of {', '.join(FAMILIES)}")
    table = dict(_scan(family))
    for name, entry in _registered[family].items():
        _add(table, entry, "register()")
    return table


def lookup(family: str, name: Optional[str], error=ModelError) -> Architecture:
    """The member ``name`` of ``family``.

    Raises:
        error: no such member (the known ones are listed).
    """
    table = architectures(family)
    if name not in table:
        raise error(f"unknown {family} architecture {name!r} (known: {', '.join(sorted(table))})")
    return table[name]


def architecture_of(model: torch.nn.Module, family: Optional[str] = None) -> Architecture:
    """The member whose model class ``model`` is an instance of (the most specific one).

    Raises:
        ModelError: no member builds such a model.
    """
    families = FAMILIES if family is None else (family,)
    found: List[Tuple[int, Architecture]] = []
    for fam in families:
        for entry in architectures(fam).values():
            if isinstance(model, entry.model_cls):
                found.append((type(model).__mro__.index(entry.model_cls), entry))
    if not found:
        raise ModelError(f"no architecture builds a {type(model).__name__}"
                         + (f" in the {family} family" if family else ""))
    return min(found, key=lambda pair: pair[0])[1]


def named_members(family: str) -> List[str]:
    """The members of ``family`` that a ``pipeline.yaml`` may name instead of a model directory."""
    return sorted(name for name, entry in architectures(family).items() if not entry.needs_weights)


# --------------------------------------------------------------------------------------- model directories

def _load(name_or_path: PathLike, family: str, device: Union[str, torch.device]) -> Tuple[torch.nn.Module,
                                                                                          Architecture]:
    from l2s.hub import load_model_dir, resolve

    stored = load_model_dir(resolve(name_or_path), kind=family)
    entry = lookup(family, stored.arch)
    config = from_dict(entry.config_cls, stored.config, f"{stored.path}: config", ModelError)
    try:
        if entry.load is not None:
            model = entry.load(config, stored)
        else:
            model = entry.model_cls(config)
            model.load_state_dict(stored.state_dict, strict=True)
    except (TypeError, RuntimeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"{stored.path}: not a loadable {family} checkpoint ({reason})") from None
    return model.to(device).eval(), entry


def load_model(name_or_path: PathLike, family: str, device: Union[str, torch.device] = "cpu") -> torch.nn.Module:
    """A trained model from a model directory (a path, bundled name or hub id), in eval mode on ``device``.

    Raises:
        ModelError: not a ``family`` model directory, an unknown architecture, a config or weights that do not fit.
        ContractError: trained with another signal contract.
    """
    return _load(name_or_path, family, device)[0]


def save_model(model: torch.nn.Module, path: PathLike, family: Optional[str] = None) -> Path:
    """Write ``model`` (its ``config`` and weights, and its architecture's files) as a model directory."""
    from l2s.hub import save_model_dir

    entry = architecture_of(model, family)
    if not entry.needs_weights:
        raise ModelError(f"the {entry.name} {entry.family} has no weights of ours to save: name it instead")
    with tempfile.TemporaryDirectory() as tmp:
        extra = dict(entry.files(model, Path(tmp))) if entry.files is not None else {}
        return save_model_dir(path, entry.family, entry.name, model.config, model.state_dict(), extra_files=extra)


def load_member(source: PathLike, family: str, device: Union[str, torch.device] = "cpu"
                ) -> Tuple[torch.nn.Module, Architecture]:
    """A model and its architecture: a member named by ``source`` (a ``str`` naming a member without weights,
    e.g. ``griffinlim``), else the model directory at ``source``."""
    if isinstance(source, str) and source in named_members(family):
        entry = lookup(family, source)
        return entry.create().to(device).eval(), entry
    return _load(source, family, device)


def load_stage(source: PathLike, family: str, device: Union[str, torch.device] = "cpu", **context: Any) -> Any:
    """What the pipeline runs for a stage: the model of :func:`load_member`, wrapped by its architecture's
    ``stage`` (given ``context``: a generator's settings, a guide's tokenizer...) when it has one."""
    model, entry = load_member(source, family, device)
    return entry.stage(model, **context) if entry.stage is not None else model


def settings_of(entry: Architecture, data: Optional[Mapping[str, Any]], where: str) -> Any:
    """A generator's sampler settings from ``pipeline.yaml`` (missing fields: its defaults).

    Raises:
        ModelError: settings for an architecture that takes none, or fields its settings class does not have.
    """
    if entry.settings_cls is None:
        if data:
            raise ModelError(f"{where}: the {entry.name} {entry.family} takes no settings, got {', '.join(data)}")
        return None
    return from_dict(entry.settings_cls, dict(data or {}), where, ModelError)


def with_options(settings: Any, options: Mapping[str, Any], who: str) -> Any:
    """``settings`` with the options a user gave (``--steps``, ``--solver``...; None values are not given).

    A settings class with an ``override`` method gets the options through it (it knows what one option implies
    for another), others through :func:`dataclasses.replace`.

    Raises:
        InputError: an option ``who`` (e.g. "the denoiser generator") does not know, in one line naming it.
    """
    given = {k: v for k, v in options.items() if v is not None}
    if not given:
        return settings
    known = set() if settings is None else set(settings.__dataclass_fields__)
    unknown = sorted(set(given) - known)
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        listing = f" (its settings: {', '.join(sorted(known))})" if known else ""
        raise InputError(f"{who} has no option {flags}{listing}")
    override = getattr(settings, "override", None)
    return override(**given) if override is not None else replace(settings, **given)
