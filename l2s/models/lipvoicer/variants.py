"""LipVoicer networks as l2s model directories (``kind: melgen`` / ``kind: guide_asr``, ``arch: lipvoicer``)."""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Mapping, Optional, Tuple, Type, TypeVar, Union

import torch

from l2s.errors import ModelError
from l2s.models.lipvoicer.asr import ASRGuide, ASRGuideConfig
from l2s.models.lipvoicer.melgen import MelGen, MelGenConfig

ARCH = "lipvoicer"
MELGEN_KIND = "melgen"
GUIDE_KIND = "guide_asr"
TOKENIZER_FILE = "tokenizer.model"

C = TypeVar("C")


def config_dict(config: Union[MelGenConfig, ASRGuideConfig]) -> dict:
    """What ``config.yaml`` stores: ``arch`` plus the dataclass fields (tuples as lists)."""
    return {"arch": ARCH, **{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}}


def config_from_dict(cls: Type[C], data: Mapping[str, Any], where: str) -> C:
    if data.get("arch") != ARCH:
        raise ModelError(f"{where}: arch {data.get('arch')!r}, expected {ARCH!r}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names - {"arch"})
    if unknown:
        raise ModelError(f"{where}: unknown config fields {', '.join(unknown)}")
    return cls(**{k: v for k, v in data.items() if k in names})


def save_melgen(path: Union[str, Path], config: MelGenConfig, state_dict: Mapping[str, torch.Tensor]) -> Path:
    from l2s.hub import save_model_dir

    return save_model_dir(path, MELGEN_KIND, config_dict(config), state_dict)


def save_guide(path: Union[str, Path], config: ASRGuideConfig, state_dict: Mapping[str, torch.Tensor],
               tokenizer: Optional[Union[str, Path]] = None) -> Path:
    from l2s.hub import save_model_dir

    extra = {TOKENIZER_FILE: Path(tokenizer)} if tokenizer is not None else None
    return save_model_dir(path, GUIDE_KIND, config_dict(config), state_dict, extra_files=extra)


def _load(path: Union[str, Path], kind: str, cls, model_cls, device) -> Tuple[torch.nn.Module, Path]:
    from l2s.hub import load_model_dir

    stored = load_model_dir(path, kind=kind)
    model = model_cls(config_from_dict(cls, stored.config, str(path)))
    try:
        model.load_state_dict(stored.state_dict, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{path}: weights do not fit the stored config ({str(exc).splitlines()[0]})") from None
    return model.eval().to(device), stored.path


def load_melgen(path: Union[str, Path], device: Union[str, torch.device] = "cpu") -> MelGen:
    """A MelGen model directory, in eval mode."""
    return _load(path, MELGEN_KIND, MelGenConfig, MelGen, device)[0]


def load_guide(path: Union[str, Path], device: Union[str, torch.device] = "cpu") -> ASRGuide:
    """An ASR guide model directory, in eval mode (its tokenizer, if any, is ``path/tokenizer.model``)."""
    return _load(path, GUIDE_KIND, ASRGuideConfig, ASRGuide, device)[0]
