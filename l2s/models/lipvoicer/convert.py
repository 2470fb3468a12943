"""LipVoicer checkpoints -> l2s state dicts, with every key accounted for.

LipVoicer's MelGen checkpoint (``exp/LRS*/.../1000000.pkl``, loaded strictly by LipVoicer) holds
alias keys (two names for one tensor) and an unused classifier head; its ASR checkpoint
(``checkpoints_ft_lrs*.ckpt``) is loaded by LipVoicer with ``strict=False``, so problems pass
silently there. Here every key is either mapped, verified as an alias, ignored *by name* (known to
be unused), or reported as unexpected; every parameter our model needs and the checkpoint lacks is
reported as missing. Weight norm (``weight_g``/``weight_v``) is folded into plain weights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import torch

from l2s.errors import ModelError
from l2s.models.lipvoicer.asr import ASRGuide, ASRGuideConfig
from l2s.models.lipvoicer.melgen import MelGen, MelGenConfig

StateDict = Dict[str, torch.Tensor]
Rule = Tuple[str, str]  # (regex on their key, replacement giving ours)


@dataclass(frozen=True)
class KeyMap:
    """How one LipVoicer model's keys become ours.

    Attributes:
        rules: regex -> replacement, first match wins (full-key match).
        aliases: regex -> replacement naming the canonical key the alias duplicates.
        ignored: regexes of keys known to be unused by inference.
    """

    rules: Tuple[Rule, ...]
    aliases: Tuple[Rule, ...] = ()
    ignored: Tuple[str, ...] = ()


@dataclass(frozen=True)
class ConversionReport:
    """What happened to every key of one checkpoint."""

    model: str
    converted: int
    aliases: Tuple[Tuple[str, str], ...] = ()
    ignored: Tuple[str, ...] = ()
    unexpected: Tuple[str, ...] = ()
    missing: Tuple[str, ...] = ()
    notes: Tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not self.unexpected and not self.missing

    def lines(self) -> List[str]:
        out = [f"{self.model}: {self.converted} tensors converted, {len(self.aliases)} alias keys verified "
               f"identical, {len(self.ignored)} unused keys dropped, {len(self.unexpected)} unexpected, "
               f"{len(self.missing)} missing"]
        out += [f"  note: {n}" for n in self.notes]
        out += [f"  unexpected: {k}" for k in self.unexpected]
        out += [f"  missing: {k}" for k in self.missing]
        return out

    def to_dict(self) -> Dict[str, object]:
        return {"model": self.model, "converted": self.converted, "aliases": [list(a) for a in self.aliases],
                "ignored": list(self.ignored), "unexpected": list(self.unexpected), "missing": list(self.missing),
                "notes": list(self.notes)}


MELGEN_KEYS = KeyMap(
    rules=(
        (r"mouthroi_null", "null_roi"),
        (r"face_null", "null_face"),
        (r"net_lipreading\.frontend3D\.(\d)\.(.+)", r"lip.frontend.\1.\2"),
        (r"net_lipreading\.trunk\.0\.(\d+)\.banch1\.(.+)", r"lip.trunk.\1.side.\2"),
        (r"net_lipreading\.trunk\.0\.(\d+)\.banch2\.(.+)", r"lip.trunk.\1.main.\2"),
        (r"net_lipreading\.trunk\.1\.(\d)\.(.+)", r"lip.trunk_out.\1.\2"),
        (r"net_lipreading\.tcn\.tcn_trunk\.network\.(\d+)\.batchnorm(\d)\.(.+)", r"lip.tcn.\1.bn\2.\3"),
        (r"net_lipreading\.tcn\.tcn_trunk\.network\.(\d+)\.relu(\d)\.(.+)", r"lip.tcn.\1.act\2.\3"),
        (r"net_lipreading\.tcn\.tcn_trunk\.network\.(\d+)\.relu\.(.+)", r"lip.tcn.\1.act.\2"),
        (r"net_lipreading\.tcn\.tcn_trunk\.network\.(\d+)\.(conv\d|downsample)\.(.+)", r"lip.tcn.\1.\2.\3"),
        (r"net_facial\.feature_extraction\.([01])\.(.+)", r"face.stem.\1.\2"),
        (r"net_facial\.feature_extraction\.4\.(.+)", r"face.stages.0.\1"),
        (r"net_facial\.feature_extraction\.5\.(.+)", r"face.stages.1.\1"),
        (r"net_facial\.feature_extraction\.6\.(.+)", r"face.stages.2.\1"),
        (r"net_facial\.feature_extraction\.7\.(.+)", r"face.stages.3.\1"),
        (r"net_facial\.fc\.(.+)", r"face.fc.\1"),
        (r"net_diffwave\.init_conv\.0\.conv\.(.+)", r"denoiser.input_proj.\1"),
        (r"net_diffwave\.residual_layer\.fc_t(\d)\.(.+)", r"denoiser.step_mlp.fc\1.\2"),
        (r"net_diffwave\.residual_layer\.residual_blocks\.(\d+)\.fc_t\.(.+)", r"denoiser.layers.\1.step_proj.\2"),
        (r"net_diffwave\.residual_layer\.residual_blocks\.(\d+)\.dilated_conv_layer\.conv\.(.+)",
         r"denoiser.layers.\1.conv.\2"),
        (r"net_diffwave\.residual_layer\.residual_blocks\.(\d+)\.upsample_conv2d\.(\d+)\.(.+)",
         r"denoiser.layers.\1.cond_upsample.\2.\3"),
        (r"net_diffwave\.residual_layer\.residual_blocks\.(\d+)\.mel_conv\.conv\.(.+)",
         r"denoiser.layers.\1.cond_proj.\2"),
        (r"net_diffwave\.residual_layer\.residual_blocks\.(\d+)\.res_conv\.(.+)", r"denoiser.layers.\1.res_proj.\2"),
        (r"net_diffwave\.residual_layer\.residual_blocks\.(\d+)\.skip_conv\.(.+)",
         r"denoiser.layers.\1.skip_proj.\2"),
        (r"net_diffwave\.final_conv\.0\.conv\.(.+)", r"denoiser.output_hidden.\1"),
        (r"net_diffwave\.final_conv\.2\.conv\.(.+)", r"denoiser.output.\1"),
    ),
    aliases=(
        (r"net_facial\.conv1\.(.+)", r"net_facial.feature_extraction.0.\1"),
        (r"(net_lipreading\.tcn\.tcn_trunk\.network\.\d+)\.net\.0\.(.+)", r"\1.conv1.\2"),
        (r"(net_lipreading\.tcn\.tcn_trunk\.network\.\d+)\.net\.1\.(.+)", r"\1.batchnorm1.\2"),
        (r"(net_lipreading\.tcn\.tcn_trunk\.network\.\d+)\.net\.3\.(.+)", r"\1.relu1.\2"),
        (r"(net_lipreading\.tcn\.tcn_trunk\.network\.\d+)\.net\.5\.(.+)", r"\1.conv2.\2"),
        (r"(net_lipreading\.tcn\.tcn_trunk\.network\.\d+)\.net\.6\.(.+)", r"\1.batchnorm2.\2"),
        (r"(net_lipreading\.tcn\.tcn_trunk\.network\.\d+)\.net\.8\.(.+)", r"\1.relu2.\2"),
    ),
    # the lip-reading word classifier (500 LRW classes) is not used to extract features
    ignored=(r"net_lipreading\.tcn\.tcn_output\..+",),
)

_BLOCK = r"encoder\.back_end\.conformer_blocks\.(\d+)"
ASR_KEYS = KeyMap(
    rules=(
        (r"fc_t(\d)\.(.+)", r"step_mlp.fc\1.\2"),
        (r"encoder\.subsampling_module\.layers\.0\.(\d)\.(.+)", r"stem.\1.\2"),
        (r"encoder\.fc_t\.(.+)", r"stem_step.\1"),
        (r"encoder\.linear\.(.+)", r"stem_proj.\1"),
        (r"encoder\.back_end\.diff_step_layers\.(\d+)\.(.+)", r"blocks.\1.step_proj.\2"),
        (_BLOCK + r"\.ff_module(\d)\.layers\.0\.(.+)", r"blocks.\1.ff\2.norm.\3"),
        (_BLOCK + r"\.ff_module(\d)\.layers\.1\.(.+)", r"blocks.\1.ff\2.fc1.\3"),
        (_BLOCK + r"\.ff_module(\d)\.layers\.4\.(.+)", r"blocks.\1.ff\2.fc2.\3"),
        (_BLOCK + r"\.self_att_module\.norm\.(.+)", r"blocks.\1.attn_norm.\2"),
        (_BLOCK + r"\.self_att_module\.attention\.(q|k|v|pos)[a-z]*_layer\.(.+)", r"blocks.\1.attn.ATT.\2.\3"),
        (_BLOCK + r"\.self_att_module\.attention\.output_layer\.(.+)", r"blocks.\1.attn.ATT.out.\2"),
        (_BLOCK + r"\.conv_module\.layers\.0\.(.+)", r"blocks.\1.conv.norm.\2"),
        (_BLOCK + r"\.conv_module\.layers\.1\.(.+)", r"blocks.\1.conv.pw_in.\2"),
        (_BLOCK + r"\.conv_module\.layers\.3\.(.+)", r"blocks.\1.conv.dw.\2"),
        (_BLOCK + r"\.conv_module\.layers\.4\.(.+)", r"blocks.\1.conv.bn.\2"),
        (_BLOCK + r"\.conv_module\.layers\.6\.(.+)", r"blocks.\1.conv.pw_out.\2"),
        (_BLOCK + r"\.conv_res\.(.+)", r"blocks.\1.res.\2"),
        (_BLOCK + r"\.norm\.(.+)", r"blocks.\1.norm.\2"),
        (r"encoder\.head\.(.+)", r"head.\1"),
    ),
    # torchaudio waveform front-end buffers: the guide reads model-space mels directly
    ignored=(r"encoder\.audio_preprocessing\..+",),
)


def fold_weight_norm(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``g * v / ||v||`` with the norm over every dim but 0 (legacy ``torch.nn.utils.weight_norm``, dim 0)."""
    norm = v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))
    return v * (g / norm)


def _same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.is_meta or b.is_meta:  # a key listing without values: only shapes can be compared
        return a.shape == b.shape and a.dtype == b.dtype
    return a.shape == b.shape and torch.equal(a, b)


def _first_match(key: str, rules: Iterable[Rule]) -> Optional[str]:
    for pattern, repl in rules:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, repl, key)
    return None


def map_state_dict(theirs: Mapping[str, torch.Tensor], keymap: KeyMap, expected: Mapping[str, torch.Size],
                   model: str, post=None) -> Tuple[StateDict, ConversionReport]:
    """Rename, de-alias and weight-norm-fold ``theirs`` onto the keys/shapes of ``expected``.

    Args:
        theirs: the LipVoicer state dict.
        keymap: the renaming rules.
        expected: our model's state dict shapes (built on the meta device: nothing is allocated).
        model: a name for the report.
        post: optional ``fn(our_key) -> our_key`` applied after the rules.

    Raises:
        ModelError: an alias differs from its canonical tensor, or a shape differs from ours.
    """
    ours: StateDict = {}
    wn: Dict[str, Dict[str, torch.Tensor]] = {}
    aliases, ignored, unexpected = [], [], []
    for key, value in theirs.items():
        canonical = _first_match(key, keymap.aliases)
        if canonical is not None:
            if canonical not in theirs:
                unexpected.append(key)
            elif not _same_tensor(theirs[canonical], value):
                raise ModelError(f"{model}: alias key {key} differs from {canonical}; the checkpoint is inconsistent")
            else:
                aliases.append((key, canonical))
            continue
        if any(re.fullmatch(p, key) for p in keymap.ignored):
            ignored.append(key)
            continue
        mine = _first_match(key, keymap.rules)
        if mine is None:
            unexpected.append(key)
            continue
        mine = post(mine) if post else mine
        if mine.endswith((".weight_g", ".weight_v")):
            wn.setdefault(mine[: -len("_g")], {})[mine[-1]] = value
        else:
            ours[mine] = value
    for base, parts in wn.items():
        if set(parts) != {"g", "v"}:
            unexpected.extend(f"{base}_{p} (its weight-norm partner is absent)" for p in parts)
            continue
        ours[base] = fold_weight_norm(parts["g"], parts["v"])
    extra = sorted(k for k in ours if k not in expected)
    unexpected.extend(f"{k} (mapped to {k!r}, which our model does not have)" for k in extra)
    for k in extra:
        del ours[k]
    for k, v in ours.items():
        if tuple(v.shape) != tuple(expected[k]):
            raise ModelError(f"{model}: {k} has shape {tuple(v.shape)}, the model needs {tuple(expected[k])}")
        if v.dtype.is_floating_point:
            ours[k] = v.to(torch.float32)
    missing = sorted(k for k in expected if k not in ours)
    report = ConversionReport(model=model, converted=len(ours), aliases=tuple(aliases), ignored=tuple(ignored),
                              unexpected=tuple(sorted(unexpected)), missing=tuple(missing))
    return ours, report


def _count(theirs: Mapping[str, torch.Tensor], pattern: str) -> int:
    found = {int(m.group(1)) for k in theirs for m in [re.fullmatch(pattern, k)] if m}
    return max(found) + 1 if found else 0


def _shape(theirs: Mapping[str, torch.Tensor], *keys: str) -> Tuple[int, ...]:
    for k in keys:
        if k in theirs:
            return tuple(theirs[k].shape)
    raise ModelError(f"not a LipVoicer checkpoint: it has none of {', '.join(keys)}")


def melgen_config(theirs: Mapping[str, torch.Tensor]) -> MelGenConfig:
    """Read MelGen's hyper-parameters off the tensor shapes of a LipVoicer state dict."""
    tcn = r"net_lipreading\.tcn\.tcn_trunk\.network\.(\d+)\.conv1\.weight"
    n_tcn = _count(theirs, tcn)
    tcn_shapes = [_shape(theirs, f"net_lipreading.tcn.tcn_trunk.network.{i}.conv1.weight") for i in range(n_tcn)]
    wave = "net_diffwave.residual_layer."
    n_layers = _count(theirs, re.escape(wave) + r"residual_blocks\.(\d+)\.fc_t\.weight")
    n_up = _count(theirs, re.escape(wave) + r"residual_blocks\.0\.upsample_conv2d\.(\d+)\.bias")
    up = tuple(_shape(theirs, f"{wave}residual_blocks.0.upsample_conv2d.{j}.weight_v",
                      f"{wave}residual_blocks.0.upsample_conv2d.{j}.weight")[-1] // 2 for j in range(n_up))
    fc1, fc2 = _shape(theirs, f"{wave}fc_t1.weight"), _shape(theirs, f"{wave}fc_t2.weight")
    if not tcn_shapes or not n_layers:
        raise ModelError("not a LipVoicer MelGen checkpoint (no TCN or no WaveNet layers)")
    return MelGenConfig(
        tcn_channels=tuple(s[0] for s in tcn_shapes), tcn_kernel_size=tcn_shapes[0][-1],
        face_widths=tuple(_shape(theirs, f"net_facial.feature_extraction.{4 + i}.0.conv1.weight")[0]
                          for i in range(4)),
        face_dim=_shape(theirs, "net_facial.fc.weight")[0],
        res_channels=_shape(theirs, "net_diffwave.init_conv.0.conv.weight_v",
                            "net_diffwave.init_conv.0.conv.weight")[0],
        skip_channels=_shape(theirs, f"{wave}residual_blocks.0.skip_conv.weight_v",
                             f"{wave}residual_blocks.0.skip_conv.weight")[0],
        num_layers=n_layers, step_embed_in=fc1[1], step_embed_mid=fc1[0], step_embed_out=fc2[0],
        cond_upsample=up)


def asr_config(theirs: Mapping[str, torch.Tensor], num_heads: int = 4) -> ASRGuideConfig:
    """Read the ASR guide's hyper-parameters off a LipVoicer state dict (heads are not in the shapes:
    LipVoicer hard-codes 4)."""
    n_blocks = _count(theirs, r"encoder\.back_end\.diff_step_layers\.(\d+)\.weight")
    if not n_blocks:
        raise ModelError("not a LipVoicer ASR checkpoint (no encoder.back_end.diff_step_layers)")
    widths = [_shape(theirs, f"encoder.back_end.diff_step_layers.{i}.weight")[0] for i in range(n_blocks)]
    down = [i for i in range(n_blocks) if f"encoder.back_end.conformer_blocks.{i}.conv_res.weight" in theirs]
    bounds = [-1] + down + [n_blocks - 1]
    num_blocks = tuple(b - a for a, b in zip(bounds[:-1], bounds[1:]))
    dims = tuple(widths[a + 1] for a in bounds[:-1])
    fc1, fc2 = _shape(theirs, "fc_t1.weight"), _shape(theirs, "fc_t2.weight")
    return ASRGuideConfig(
        vocab_size=_shape(theirs, "encoder.head.weight")[0],
        stem_channels=_shape(theirs, "encoder.subsampling_module.layers.0.0.weight")[0],
        dims=dims, num_blocks=num_blocks, num_heads=num_heads,
        kernel_size=_shape(theirs, "encoder.back_end.conformer_blocks.0.conv_module.layers.3.weight")[-1],
        step_embed_in=fc1[1], step_embed_mid=fc1[0], step_embed_out=fc2[0])


def _expected(module: torch.nn.Module) -> Dict[str, torch.Size]:
    return {k: v.shape for k, v in module.state_dict().items()}


def convert_melgen(theirs: Mapping[str, torch.Tensor]) -> Tuple[MelGenConfig, StateDict, ConversionReport]:
    """LipVoicer ``model_state_dict`` -> (our config, our state dict, report). Raises on missing keys."""
    cfg = melgen_config(theirs)
    with torch.device("meta"):
        expected = _expected(MelGen(cfg))
    ours, report = map_state_dict(theirs, MELGEN_KEYS, expected, "generator")
    if report.missing:
        raise ModelError("generator (MelGen): checkpoint lacks " + ", ".join(report.missing[:5])
                         + (f" and {len(report.missing) - 5} more" if len(report.missing) > 5 else ""))
    return cfg, ours, report


def convert_asr(theirs: Mapping[str, torch.Tensor], notes: Sequence[str] = ()
                ) -> Tuple[ASRGuideConfig, StateDict, ConversionReport]:
    """LipVoicer ASR ``model_state_dict`` -> (our config, our state dict, report).

    LipVoicer loads this checkpoint non-strictly; we report unexpected keys (the caller prints them)
    and refuse missing ones (a guide with uninitialised layers would steer toward noise).
    """
    cfg = asr_config(theirs)
    patch_blocks = {i for i, (stage, *_rest) in enumerate(cfg.block_plan()) if stage == 0 and cfg.patch_size > 1}

    def post(key: str) -> str:
        m = re.fullmatch(r"blocks\.(\d+)\.attn\.ATT\.(.+)", key)
        if not m:
            return key
        inner = "attention." if int(m.group(1)) in patch_blocks else ""
        return f"blocks.{m.group(1)}.attn.{inner}{m.group(2)}"

    with torch.device("meta"):
        expected = _expected(ASRGuide(cfg))
    ours, report = map_state_dict(theirs, ASR_KEYS, expected, "guide", post=post)
    if notes:
        report = ConversionReport(**{**report.__dict__, "notes": tuple(notes) + report.notes})
    if report.missing:
        raise ModelError("guide (ASR): checkpoint lacks " + ", ".join(report.missing[:5])
                         + (f" and {len(report.missing) - 5} more" if len(report.missing) > 5 else ""))
    return cfg, ours, report


def read_checkpoint(path: Union[str, Path], inner_key: str) -> Tuple[StateDict, List[str]]:
    """A state dict from a LipVoicer ``.pkl``/``.ckpt`` (``torch.load``, weights only) or a ``.safetensors`` file.

    Args:
        path: the checkpoint.
        inner_key: the entry holding the weights (``model_state_dict``, ``generator``); a file that is
            already a flat state dict is accepted as is.

    Returns:
        The state dict and notes on what was done to read it (``.module.`` prefixes removed...).
    """
    path = Path(path)
    notes: List[str] = []
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            obj: object = load_file(str(path))
        else:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file; all mean "unreadable"
        raise ModelError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(obj, dict):
        raise ModelError(f"{path}: expected a dict checkpoint, found {type(obj).__name__}")
    state = obj.get(inner_key, obj) if inner_key else obj
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path}: no {inner_key!r} state dict in the checkpoint (keys: {', '.join(list(obj)[:8])})")
    if obj.get("is_distributed") or any(".module." in k or k.startswith("module.") for k in state):
        # LipVoicer's ASR loader turns '.module.' into '.' for checkpoints saved under DDP
        state = {re.sub(r"(^|\.)module\.", r"\1", k): v for k, v in state.items()}
        notes.append("'module.' prefixes from distributed training removed")
    return dict(state), notes


__all__ = ["ConversionReport", "KeyMap", "MELGEN_KEYS", "ASR_KEYS", "convert_melgen", "convert_asr",
           "melgen_config", "asr_config", "map_state_dict", "fold_weight_norm", "read_checkpoint"]
