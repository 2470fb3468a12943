"""Reading foreign state dicts and loading them strictly, with the mismatches named."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Union

import torch
from torch import nn

from l2s.errors import ModelError
from l2s.vocoder.weight_norm import remove_weight_norm


def read_state_dict(path: Union[str, Path]) -> Dict[str, torch.Tensor]:
    """Tensors from a ``.safetensors`` file or a torch pickle (``{'generator': sd}`` or a bare state dict)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such checkpoint file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch and safetensors raise many types for a bad file
        raise ModelError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})") from None
    if isinstance(data, Mapping) and isinstance(data.get("generator"), Mapping):
        data = data["generator"]
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ModelError(f"{path}: not a HiFi-GAN generator state dict (expected {{'generator': state_dict}})")
    return dict(data)


def load_state(model: nn.Module, state_dict: Mapping[str, torch.Tensor], where: str) -> None:
    """Strict load that names the missing and unexpected keys in a :class:`ModelError`.

    A state dict without ``weight_g``/``weight_v`` keys (already folded) is loaded
    into the folded model.
    """
    if not any(k.endswith(".weight_v") for k in state_dict):
        remove_weight_norm(model)
    ours, theirs = set(model.state_dict()), set(state_dict)
    missing, unexpected = sorted(ours - theirs), sorted(theirs - ours)
    if missing or unexpected:
        raise ModelError(f"{where}: key mismatch: {len(missing)} missing (e.g. {missing[:3]}), "
                         f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
    shapes = [k for k, v in model.state_dict().items() if tuple(v.shape) != tuple(state_dict[k].shape)]
    if shapes:
        k = shapes[0]
        raise ModelError(f"{where}: {len(shapes)} shape mismatches, e.g. {k}: checkpoint "
                         f"{tuple(state_dict[k].shape)} vs model {tuple(model.state_dict()[k].shape)}")
    model.load_state_dict(state_dict, strict=True, assign=any(p.is_meta for p in model.parameters()))


def load_folded(model_cls: Callable[[Any], nn.Module]) -> Callable[[Any, Any], nn.Module]:
    """The architecture ``load`` of a vocoder: the weights of a model directory (weight norm kept or already
    folded) strictly into ``model_cls(config)``, weight norm folded for inference."""
    def load(config: Any, stored: Any) -> nn.Module:
        model = model_cls(config)
        load_state(model, stored.state_dict, str(stored.path))
        return remove_weight_norm(model)

    return load
