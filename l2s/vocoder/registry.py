"""Finding a vocoder by name or path, and saving our own as model directories.

``get_vocoder`` accepts, in this order:

1. the name of a training-free member of the vocoder table (``griffinlim``, ``griffinlim-fast``;
   :func:`l2s.arch.named_members`);
2. a local path: an l2s vocoder directory (``config.yaml`` + ``model.safetensors``, ``kind: vocoder``, any
   architecture of the table), a pipeline directory (its vocoder), an official Vocos directory
   (``config.yaml`` + ``pytorch_model.bin``), or a jik876 HiFi-GAN generator file with ``config.json`` beside it;
3. a bundled model name or a Hugging Face repo id, through :func:`l2s.hub.resolve`
   (which honours ``HF_HUB_OFFLINE``).

Vocoders that do not take the contract mel at the contract rate (an official 24 kHz
Vocos, a 22.05 kHz HiFi-GAN) are refused unless ``allow_foreign=True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Union

import torch

from l2s.arch import load_model, lookup, named_members, save_model
from l2s.defaults import DEFAULT_PIPELINE, FALLBACK_VOCODER  # the default vocoder is this bundled pipeline's
from l2s.errors import ContractError, ModelError
from l2s.hub import CONFIG_FILE, PIPELINE_FILE, read_model_meta, read_pipeline_yaml
from l2s.vocoder.base import Vocoder, check_contract_vocoder

VOCODER_KIND = "vocoder"


def default_vocoder() -> str:
    """The name :func:`get_vocoder` uses when none is given: the bundled default pipeline's vocoder, if bundled."""
    from l2s.hub import bundled_dir

    return DEFAULT_PIPELINE if bundled_dir(DEFAULT_PIPELINE) is not None else FALLBACK_VOCODER


def available_vocoders() -> List[str]:
    """The vocoders usable by name alone (the training-free members of the table)."""
    return named_members(VOCODER_KIND)


def save_vocoder(model: torch.nn.Module, path: Union[str, Path]) -> Path:
    """Write a vocoder of the table (:class:`~l2s.vocoder.hifigan.HiFiGAN`, :class:`~l2s.vocoder.vocos.VocosVocoder`...)
    as an l2s model directory."""
    return save_model(model, path, VOCODER_KIND)


def _load_path(path: Path) -> Vocoder:
    from l2s.vocoder.vocos import is_official_vocos_dir, load_official_vocos

    if path.is_file():
        from l2s.vocoder.hifigan import load_jik876

        if not (path.parent / "config.json").is_file():
            raise ModelError(f"{path}: a HiFi-GAN generator file needs its jik876 config.json beside it")
        return load_jik876(path)
    if is_official_vocos_dir(path):
        return load_official_vocos(path)
    if (path / PIPELINE_FILE).is_file():  # a pipeline: its vocoder component
        component = str(read_pipeline_yaml(path)["components"].get(VOCODER_KIND) or "")
        if not component:
            raise ModelError(f"{path}: the pipeline names no vocoder")
        return get_vocoder(component, allow_foreign=True) if component in available_vocoders() and \
            not (path / component).exists() else _load_path(path / component)
    if (path / CONFIG_FILE).is_file():
        kind = read_model_meta(path).get("kind")
        if kind != VOCODER_KIND:
            raise ModelError(f"{path}: holds a {kind!r} model, not a vocoder")
        return load_model(path, VOCODER_KIND)
    raise ModelError(f"{path}: not a vocoder (no config.yaml, and not a HiFi-GAN generator file)")


def takes_contract_mel(vocoder: Vocoder) -> bool:
    """False for vocoders with their own front end (official Vocos checkpoints)."""
    return bool(getattr(vocoder, "takes_contract_mel", True))


def get_vocoder(name_or_path: Optional[Union[str, Path]] = None, device: Union[str, torch.device] = "cpu",
                allow_foreign: bool = False) -> Vocoder:
    """A ready-to-use vocoder (eval mode, on ``device``).

    Args:
        name_or_path: a training-free vocoder's name, local path, bundled name or hub repo id;
            a pipeline directory or name (its vocoder component); ``None`` gives :func:`default_vocoder`.
        device: torch device.
        allow_foreign: also return vocoders at another rate or with their own mel front end.

    Raises:
        ModelError: nothing usable by that name.
        ContractError: a foreign vocoder and ``allow_foreign`` is false.
    """
    text = str(name_or_path) if name_or_path is not None else default_vocoder()
    if text in available_vocoders():
        vocoder = lookup(VOCODER_KIND, text).create()
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
