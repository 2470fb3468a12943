"""Finding a vocoder by name or path, and saving our own as model directories.

``get_vocoder`` accepts, in this order:

1. a registered name (``griffinlim``; trained defaults join here when they are bundled);
2. a local path: an l2s vocoder directory (``config.yaml`` + ``model.safetensors``,
   ``kind: vocoder``), an official Vocos directory (``config.yaml`` + ``pytorch_model.bin``),
   or a jik876 HiFi-GAN generator file with ``config.json`` beside it;
3. a bundled model name or a Hugging Face repo id, through :func:`l2s.hub.resolve`
   (which honours ``HF_HUB_OFFLINE``).

Vocoders that do not take the contract mel at the contract rate (an official 24 kHz
Vocos, a 22.05 kHz HiFi-GAN) are refused unless ``allow_foreign=True``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

import torch
import yaml

from l2s.errors import ContractError, ModelError
from l2s.defaults import DEFAULT_PIPELINE, FALLBACK_VOCODER  # the default vocoder is this bundled pipeline's
from l2s.vocoder.base import Vocoder, check_contract_vocoder

VOCODER_KIND = "vocoder"

_REGISTRY: Dict[str, str] = {
    "griffinlim": "l2s.vocoder.griffinlim:GriffinLim",
    "griffinlim-fast": "l2s.vocoder.griffinlim:fast_griffin_lim",
}


def default_vocoder() -> str:
    """The name :func:`get_vocoder` uses when none is given: the bundled default pipeline's vocoder, if bundled."""
    from l2s.hub import bundled_dir

    return DEFAULT_PIPELINE if bundled_dir(DEFAULT_PIPELINE) is not None else FALLBACK_VOCODER


def register_vocoder(name: str, factory: Union[str, Callable[[], Vocoder]]) -> None:
    """Register a vocoder factory (a zero-argument callable, or ``"module:attr"``) under ``name``."""
    _REGISTRY[name] = factory  # type: ignore[assignment]


def available_vocoders() -> List[str]:
    """Registered vocoder names."""
    return sorted(_REGISTRY)


def _from_registry(name: str) -> Vocoder:
    factory: Any = _REGISTRY[name]
    if isinstance(factory, str):
        module_name, attr = factory.split(":")
        factory = getattr(importlib.import_module(module_name), attr)
    return factory()


def build_vocoder(config: Dict[str, Any]) -> torch.nn.Module:
    """An untrained vocoder from a stored config dict (``arch`` plus the architecture's fields)."""
    arch = config.get("arch")
    if arch == "hifigan":
        from l2s.vocoder.hifigan import HiFiGAN, HiFiGANConfig

        return HiFiGAN(HiFiGANConfig.from_dict(config))
    if arch == "vocos":
        from l2s.vocoder.vocos import VocosConfig, VocosVocoder

        return VocosVocoder(VocosConfig.from_dict(config))
    raise ModelError(f"unknown vocoder architecture {arch!r} (known: hifigan, vocos)")


def save_vocoder(model: torch.nn.Module, path: Union[str, Path]) -> Path:
    """Write a :class:`~l2s.vocoder.hifigan.HiFiGAN` or :class:`~l2s.vocoder.vocos.VocosVocoder` as an l2s directory."""
    from l2s.hub import save_model_dir
    from l2s.vocoder.hifigan import HiFiGAN, hifigan_config_dict
    from l2s.vocoder.vocos import VocosVocoder, vocos_config_dict

    if isinstance(model, HiFiGAN):
        config = hifigan_config_dict(model.config)
    elif isinstance(model, VocosVocoder):
        config = vocos_config_dict(model.config)
    else:
        raise ModelError(f"cannot save a {type(model).__name__} as a vocoder directory")
    return save_model_dir(path, VOCODER_KIND, config, model.state_dict())


def load_vocoder_dir(path: Union[str, Path]) -> torch.nn.Module:
    """An l2s vocoder directory (contract checked), weight norm folded, in eval mode."""
    from l2s.hub import load_model_dir
    from l2s.vocoder.checkpoints import load_state
    from l2s.vocoder.weight_norm import remove_weight_norm

    stored = load_model_dir(path, kind=VOCODER_KIND)
    model = build_vocoder(stored.config)
    load_state(model, stored.state_dict, str(path))
    return remove_weight_norm(model).eval()


def _load_path(path: Path) -> Vocoder:
    from l2s.vocoder.vocos import is_official_vocos_dir, load_official_vocos

    if path.is_file():
        from l2s.vocoder.hifigan import load_jik876

        if not (path.parent / "config.json").is_file():
            raise ModelError(f"{path}: a HiFi-GAN generator file needs its jik876 config.json beside it")
        return load_jik876(path)
    if is_official_vocos_dir(path):
        return load_official_vocos(path)
    from l2s.hub import PIPELINE_FILE

    if (path / PIPELINE_FILE).is_file():  # a pipeline: its vocoder component
        from l2s.pipeline.spec import read_spec

        spec = read_spec(path)
        return _load_path(path / spec.components["vocoder"])
    cfg = path / "config.yaml"
    if cfg.is_file():
        meta = yaml.safe_load(cfg.read_text()) or {}
        if isinstance(meta, dict) and meta.get("kind") == VOCODER_KIND:
            return load_vocoder_dir(path)
        raise ModelError(f"{path}: holds a {meta.get('kind')!r} model, not a vocoder")
    raise ModelError(f"{path}: not a vocoder (no config.yaml, and not a HiFi-GAN generator file)")


def takes_contract_mel(vocoder: Vocoder) -> bool:
    """False for vocoders with their own front end (official Vocos checkpoints)."""
    return bool(getattr(vocoder, "takes_contract_mel", True))


def get_vocoder(name_or_path: Optional[Union[str, Path]] = None, device: Union[str, torch.device] = "cpu",
                allow_foreign: bool = False) -> Vocoder:
    """A ready-to-use vocoder (eval mode, on ``device``).

    Args:
        name_or_path: registered name, local path, bundled name or hub repo id;
            a pipeline directory or name (its vocoder component); ``None`` gives :func:`default_vocoder`.
        device: torch device.
        allow_foreign: also return vocoders at another rate or with their own mel front end.

    Raises:
        ModelError: nothing usable by that name.
        ContractError: a foreign vocoder and ``allow_foreign`` is false.
    """
    text = str(name_or_path) if name_or_path is not None else default_vocoder()
    if text in _REGISTRY:
        vocoder = _from_registry(text)
    else:
        path = Path(text).expanduser()
        if not path.exists():
            from l2s.hub import resolve

            try:
                path = resolve(text)
            except ModelError as exc:
                raise ModelError(f"{exc}; registered vocoders: {', '.join(available_vocoders())}") from None
        vocoder = _load_path(path)
    if not allow_foreign:
        if not takes_contract_mel(vocoder):
            raise ContractError(f"{text}: this vocoder has its own mel front end "
                                f"({vocoder.sample_rate} Hz, hop {vocoder.hop_length}), not the contract mel")
        check_contract_vocoder(vocoder, text)
    if isinstance(vocoder, torch.nn.Module):
        vocoder = vocoder.to(device).eval()
    return vocoder
