"""Assemble a pipeline directory from trained component model directories.

Each stage trainer exports an l2s model directory (``<output_folder>/model``); a pipeline is those
directories side by side plus ``pipeline.yaml`` (:mod:`l2s.pipeline.spec`)::

    build_pipeline("l2s/pretrained/synthgrid-small",
                   {"vsr": "runs/vsr/model", "f0_ddsp": "runs/f0/model", "melgen": "runs/melgen/model",
                    "guide_asr": "runs/guide/model", "vocoder": "runs/vocoder/model"},
                   name="synthgrid-small", trained_on="synthgrid")

The directory is assembled beside ``out_dir`` and renamed into place, and it is loaded once with
:meth:`~l2s.pipeline.Lip2Speech.from_pretrained` before the rename, so a directory that appears is
one that loads.

``half=True`` stores the float parameters as float16 (about half the size). Every component loader
copies the stored tensors into a module built in float32 (``load_state_dict``), so the weights come
back as float32 transparently; buffers (batch-norm statistics, fixed tables) stay float32.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Dict, Mapping, Optional, Set, Union

import torch

from l2s.diffusion.sampler import SamplerConfig
from l2s.errors import InputError
from l2s.hub import CONFIG_FILE, PIPELINE_FILE, WEIGHTS_FILE, load_model_dir
from l2s.io.atomic import atomic_dir
from l2s.pipeline.card import CardText, write_card
from l2s.pipeline.spec import CHAR_TOKENIZER, COMPONENTS, REQUIRED_COMPONENTS, ChunkSpec, PipelineSpec, write_spec

PathLike = Union[str, Path]

#: The ``kind`` each component's saver writes into ``config.yaml``.
COMPONENT_KINDS = {"vsr": "vsr", "aligner": "aligner", "f0_ddsp": "f0_ddsp", "melgen": "melgen",
                   "guide_asr": "guide_asr", "vocoder": "vocoder"}
#: The subdirectory the trainers export their best checkpoint to (accepted in place of it).
EXPORT_SUBDIR = "model"


def model_dir_of(path: PathLike, component: str) -> Path:
    """The model directory given for ``component``: the path itself, or a trainer's ``<run>/model``.

    Raises:
        InputError: no such directory, or neither it nor ``<it>/model`` holds a ``config.yaml``.
    """
    p = Path(path).expanduser()
    if not p.is_dir():
        raise InputError(f"--{component.replace('_', '-')} {path}: not a directory")
    if (p / CONFIG_FILE).is_file():
        return p
    if (p / EXPORT_SUBDIR / CONFIG_FILE).is_file():
        return p / EXPORT_SUBDIR
    raise InputError(f"--{component.replace('_', '-')} {path}: not a model directory (no {CONFIG_FILE}, "
                     f"nor {EXPORT_SUBDIR}/{CONFIG_FILE})")


def check_replaceable(out_dir: PathLike, marker: str) -> None:
    """Refuse to replace an existing directory that is not empty and holds no ``marker`` file.

    Atomic directory writers replace ``out_dir`` whole; this keeps ``-o ~`` from wiping a home folder.

    Raises:
        InputError: ``out_dir`` is a file, or a non-empty directory without ``marker``.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / marker).is_file():
        raise InputError(f"{out}: exists and is not an output of this command (no {marker}); "
                         "refusing to replace it: choose another folder")


def directory_size(path: PathLike) -> int:
    """Bytes of all regular files under ``path``."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def _guide_tokenizer(guide_dir: Path) -> Optional[str]:
    """``pipeline.yaml``'s ``guide_tokenizer`` for a guide directory (relative to the pipeline)."""
    from l2s.models.lipvoicer.variants import TOKENIZER_FILE
    from l2s.pipeline.generators import LIPVOICER_ARCH, model_arch
    from l2s.text.tokenizer import CharTokenizer

    if (guide_dir / TOKENIZER_FILE).is_file():
        return f"guide_asr/{TOKENIZER_FILE}"
    if model_arch(guide_dir) != LIPVOICER_ARCH:
        return CHAR_TOKENIZER  # our guide reads characters
    # a LipVoicer-architecture guide without its SentencePiece model: characters if its vocabulary is theirs
    vocab = load_model_dir(guide_dir).config.get("vocab_size")
    return CHAR_TOKENIZER if vocab == len(CharTokenizer().token_list) else None


def _component_buffers(pipe, component: str) -> Set[str]:
    """State-dict names of the buffers (not parameters) of one loaded component."""
    generator = pipe.generator
    modules = {"vsr": pipe.vsr, "f0_ddsp": pipe.prior_model, "vocoder": pipe.vocoder,
               "aligner": None if pipe.aligner is None else pipe.aligner.model,
               "guide_asr": None if pipe.guide is None else pipe.guide.model,
               "melgen": generator.melgen if hasattr(generator, "melgen") else getattr(generator, "model", None)}
    module = modules.get(component)
    if not isinstance(module, torch.nn.Module):
        return set()
    return {name for name, _ in module.named_buffers()}


def store_half(model_dir: Path, keep_float32: Set[str]) -> None:
    """Rewrite ``model_dir/model.safetensors`` with float32 tensors as float16, except ``keep_float32``."""
    from safetensors.torch import load_file, save_file

    weights = model_dir / WEIGHTS_FILE
    tensors = load_file(str(weights))
    half = {k: (v.half() if v.dtype == torch.float32 and k not in keep_float32 else v) for k, v in tensors.items()}
    save_file(half, str(weights), metadata={"l2s_storage": "float16"})


def build_pipeline(out_dir: PathLike, components: Mapping[str, PathLike], name: str,
                   trained_on: Optional[str] = None, sampler: SamplerConfig = SamplerConfig(),
                   vsr_beam_size: int = 0, chunking: ChunkSpec = ChunkSpec(), half: bool = False,
                   card: Optional[CardText] = None) -> Path:
    """Write a pipeline directory (``weights: trained``) from component model directories.

    Args:
        out_dir: destination; replaced whole if it is a pipeline directory already.
        components: component name (:data:`~l2s.pipeline.spec.COMPONENTS`) -> model directory (or a
            trainer's output folder holding ``model/``); the vocoder may also be a registered
            training-free vocoder (``griffinlim``). ``melgen`` and ``vocoder`` are required.
        name: the pipeline's model id.
        trained_on: corpus family (``"synthgrid"`` makes the pipeline warn on real-world video), or None.
        sampler: default sampler settings.
        vsr_beam_size: 0 for greedy CTC lip reading, else the joint CTC/attention beam width.
        chunking: long-input chunking.
        half: store float parameters as float16.
        card: prose and results for the model card (``README.md``, always written; see
            :mod:`l2s.pipeline.card`).

    Returns:
        ``out_dir``, loadable by :meth:`~l2s.pipeline.Lip2Speech.from_pretrained`.

    Raises:
        InputError: unknown or missing components, a path that is not a model directory, an output
            folder that is not a pipeline.
        ModelError: a component holds another kind of model, or does not load.
    """
    from l2s.pipeline.pipeline import Lip2Speech

    unknown = sorted(set(components) - set(COMPONENTS))
    missing = [c for c in REQUIRED_COMPONENTS if c not in components]
    if unknown or missing:
        raise InputError("pipeline components " + (f"unknown: {', '.join(unknown)} " if unknown else "")
                         + (f"missing: {', '.join(missing)}" if missing else ""))
    if vsr_beam_size < 0:
        raise InputError(f"beam size must be >= 0, got {vsr_beam_size}")
    from l2s.vocoder.registry import available_vocoders

    # a registered training-free vocoder (griffinlim) is named in pipeline.yaml, not copied
    vocoder = str(components["vocoder"])
    named = {"vocoder": vocoder} if vocoder in available_vocoders() and not Path(vocoder).expanduser().is_dir() else {}
    sources: Dict[str, Path] = {c: model_dir_of(components[c], c) for c in COMPONENTS
                                if c in components and c not in named}
    for component, src in sources.items():
        load_model_dir(src, kind=COMPONENT_KINDS[component])  # kind and signal contract, before any copy
    out = Path(out_dir)
    check_replaceable(out, PIPELINE_FILE)
    with atomic_dir(out) as tmp:
        for component, src in sources.items():
            shutil.copytree(src, tmp / component)
        tokenizer = _guide_tokenizer(tmp / "guide_asr") if "guide_asr" in sources else None
        spec = PipelineSpec(name=name, components={**{c: c for c in sources}, **named}, weights="trained",
                            trained_on=trained_on,
                            sampler=sampler, guide_tokenizer=tokenizer, vsr_beam_size=vsr_beam_size,
                            chunking=chunking)
        write_spec(tmp, spec)
        pipe = Lip2Speech.from_pretrained(tmp, device="cpu")  # every component loads, the weights fit
        if half:
            for component in sources:
                store_half(tmp / component, _component_buffers(pipe, component))
            del pipe
            Lip2Speech.from_pretrained(tmp, device="cpu")
        write_card(tmp, spec, card or CardText())
    return out
