"""Convert an Auto-AVSR VSR checkpoint (github.com/mpc001/auto_avsr, ``vsr_*.pth``) to an l2s model directory.

:class:`~l2s.models.vsr.VSRModel` uses Auto-AVSR's parameter names, so conversion is the identity on
current checkpoints, plus what Auto-AVSR's own loading hooks do for old ones:

* encoder ``input_layer.*`` -> ``embed.*`` and ``norm.*`` -> ``after_norm.*``; decoder ``output_norm.*`` ->
  ``after_norm.*``;
* positional tables (``*.pe``) are dropped (they are recomputed);
* a Lightning checkpoint's ``state_dict`` is unwrapped and its ``model.`` prefix removed (also ``module.``
  from DDP);
* BatchNorm ``num_batches_tracked`` counters missing from very old files are filled with 0.

The sizes are read from the tensor shapes, so the small and the full model both convert. The token ids
are Auto-AVSR's: pass its ``unigram5000.model`` and ``unigram5000_units.txt`` to get text out.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple, Union

import torch

from l2s.errors import InputError, ModelError
from l2s.models.vsr.model import VSRConfig
from l2s.text.tokenizer import SPM_MODEL_FILE, SPM_UNITS_FILE, SentencePieceTokenizer

LEGACY_PREFIXES = (
    ("encoder.input_layer.", "encoder.embed."),
    ("encoder.norm.", "encoder.after_norm."),
    ("decoder.output_norm.", "decoder.after_norm."),
)
WRAPPER_PREFIXES = ("model.", "module.")
ShapeMap = Mapping[str, Tuple[int, ...]]


def load_checkpoint(path: Union[str, Path]) -> Dict[str, torch.Tensor]:
    """The tensors of a ``.pth``/``.ckpt`` (torch, read with ``weights_only``) or ``.safetensors`` file."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # safetensors raises several types for a damaged file
            raise InputError(f"{path}: unreadable safetensors file ({type(exc).__name__})") from None
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors, or objects weights_only refuses
        raise InputError(f"{path}: not a readable torch checkpoint ({type(exc).__name__})") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
            break
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise InputError(f"{path}: does not hold a state_dict")
    return data


def convert_state_dict(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Auto-AVSR keys -> l2s keys (see the module docstring); tensors are not copied."""
    keys = list(state_dict)
    prefix = next((p for p in WRAPPER_PREFIXES if keys and all(k.startswith(p) for k in keys)), "")
    out: Dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        key = key[len(prefix):]
        if key.endswith(".pe") or key == "pe":
            continue
        for old, new in LEGACY_PREFIXES:
            if key.startswith(old):
                key = new + key[len(old):]
        out[key] = value
    for key in [k for k in out if k.endswith(".running_mean")]:
        counter = key[:-len("running_mean")] + "num_batches_tracked"
        out.setdefault(counter, torch.tensor(0, dtype=torch.long))
    return out


def _count(shapes: ShapeMap, pattern: str) -> int:
    found = {m.group(1) for key in shapes if (m := re.match(pattern, key))}
    return len(found)


def infer_config(shapes: ShapeMap, tokenizer: str = "sentencepiece") -> VSRConfig:
    """The :class:`~l2s.config.VSRConfig` of converted weights, from their shapes.

    Args:
        shapes: ``{key: shape}`` of a converted state_dict.
        tokenizer: the tokenizer kind to record.
    """
    try:
        widths = tuple(shapes[f"frontend.trunk.layer{i}.0.conv1.weight"][0] for i in range(1, 5))
        blocks = tuple(_count(shapes, rf"frontend\.trunk\.layer{i}\.(\d+)\.") for i in range(1, 5))
        return VSRConfig(
            vocab_size=shapes["ctc.ctc_lo.weight"][0],
            frontend_widths=widths,
            frontend_blocks=blocks,
            d_model=shapes["proj_encoder.weight"][0],
            heads=shapes["encoder.encoders.0.self_attn.pos_bias_u"][0],
            encoder_ffn=shapes["encoder.encoders.0.feed_forward.w_1.weight"][0],
            encoder_layers=_count(shapes, r"encoder\.encoders\.(\d+)\."),
            conv_kernel=shapes["encoder.encoders.0.conv_module.depthwise_conv.weight"][2],
            decoder_ffn=shapes["decoder.decoders.0.feed_forward.w_1.weight"][0],
            decoder_layers=_count(shapes, r"decoder\.decoders\.(\d+)\."),
            tokenizer=tokenizer,
        )
    except KeyError as exc:
        raise ModelError(f"not an Auto-AVSR VSR checkpoint: no {exc.args[0]}") from None


def model_shapes(config: VSRConfig) -> Dict[str, Tuple[int, ...]]:
    """``{key: shape}`` of the state_dict of a model with ``config``, built on the meta device (no memory)."""
    from l2s.models.vsr.model import build_vsr

    model = build_vsr(config, device="meta")
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def check_keys(shapes: ShapeMap, expected: ShapeMap) -> None:
    """Raise :class:`ModelError` naming missing, unexpected and mis-shaped keys."""
    missing = [k for k in expected if k not in shapes]
    unexpected = [k for k in shapes if k not in expected]
    wrong = [f"{k} {tuple(shapes[k])} (expected {tuple(expected[k])})"
             for k in expected if k in shapes and tuple(shapes[k]) != tuple(expected[k])]
    problems = []
    for what, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if items:
            problems.append(f"{len(items)} {what} (e.g. {', '.join(items[:3])})")
    if problems:
        raise ModelError("weights do not fit an Auto-AVSR VSR model: " + "; ".join(problems))


def convert_auto_avsr(checkpoint: Union[str, Path], out: Union[str, Path], spm: Optional[Union[str, Path]] = None,
                      units: Optional[Union[str, Path]] = None) -> Path:
    """Convert ``checkpoint`` into the l2s model directory ``out``.

    Args:
        checkpoint: Auto-AVSR VSR weights (``.pth``, Lightning ``.ckpt`` or ``.safetensors``).
        out: destination directory (replaced if it exists).
        spm: Auto-AVSR's SentencePiece model (``spm/unigram/unigram5000.model``).
        units: its units file (``spm/unigram/unigram5000_units.txt``); needed together with ``spm``.

    Returns:
        ``out``. Without ``spm``/``units`` the model only gives token ids.
    """
    from l2s.hub import save_model_dir
    from l2s.models.vsr.model import ARCHITECTURE

    if (spm is None) != (units is None):
        raise InputError("give both the SentencePiece model and the units file, or neither")
    state_dict = convert_state_dict(load_checkpoint(checkpoint))
    shapes = {key: tuple(value.shape) for key, value in state_dict.items()}
    config = infer_config(shapes)
    check_keys(shapes, model_shapes(config))
    extra = {}
    if spm is not None and units is not None:
        tokenizer = SentencePieceTokenizer(spm, units)
        if tokenizer.vocab_size != config.vocab_size:
            raise InputError(f"{units}: {tokenizer.vocab_size} tokens, but the model has {config.vocab_size} outputs")
        extra = {SPM_MODEL_FILE: Path(spm), SPM_UNITS_FILE: Path(units)}
    return save_model_dir(out, ARCHITECTURE.family, ARCHITECTURE.name, config, state_dict, extra_files=extra)
