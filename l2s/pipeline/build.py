"""Assemble a pipeline directory from trained component model directories.

Each stage trainer exports an l2s model directory (``<output_folder>/model``); a pipeline is those
directories side by side plus ``pipeline.yaml`` (:mod:`l2s.pipeline.spec`)::

    build_pipeline("l2s/pretrained/synthgrid-small",
                   {"vsr": "runs/vsr/model", "prior": "runs/prior/model", "generator": "runs/generator/model",
                    "guide": "runs/guide/model", "vocoder": "runs/vocoder/model"},
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
from typing import Any, Dict, Mapping, Optional, Set, Union

import torch

from l2s.arch import lookup, named_members, settings_of
from l2s.diffusion.guidance import Guidance
from l2s.errors import InputError
from l2s.hub import CONFIG_FILE, PIPELINE_FILE, WEIGHTS_FILE, load_model_dir
from l2s.io.atomic import atomic_dir, check_replaceable
from l2s.models.guide.base import CHAR_TOKENIZER
from l2s.pipeline.card import CardText, write_card
from l2s.pipeline.spec import COMPONENTS, REQUIRED_COMPONENTS, ChunkSpec, PipelineSpec, write_spec
from l2s.structs import to_dict

PathLike = Union[str, Path]

#: The file a guide's SentencePiece model has inside its model directory (a converted LipVoicer guide).
GUIDE_TOKENIZER_FILE = "tokenizer.model"
#: The subdirectory the trainers export their best checkpoint to (accepted in place of it).
EXPORT_SUBDIR = "model"


def model_dir_of(path: PathLike, component: str) -> Path:
    """The model directory given for ``component``: the path itself, or a trainer's ``<run>/model``.

    Raises:
        InputError: no such directory, or neither it nor ``<it>/model`` holds a ``config.yaml``.
    """
    p = Path(path).expanduser()
    if not p.is_dir():
        raise InputError(f"--{component} {path}: not a directory")
    if (p / CONFIG_FILE).is_file():
        return p
    if (p / EXPORT_SUBDIR / CONFIG_FILE).is_file():
        return p / EXPORT_SUBDIR
    raise InputError(f"--{component} {path}: not a model directory (no {CONFIG_FILE}, "
                     f"nor {EXPORT_SUBDIR}/{CONFIG_FILE})")


def directory_size(path: PathLike) -> int:
    """Bytes of all regular files under ``path``."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def _guide_tokenizer(guide_dir: Path) -> Optional[str]:
    """``pipeline.yaml``'s ``guide_tokenizer`` for a guide directory (relative to the pipeline): its SentencePiece
    file when it has one, else characters when its vocabulary is the character tokenizer's, else None."""
    from l2s.text.tokenizer import CharTokenizer

    if (guide_dir / GUIDE_TOKENIZER_FILE).is_file():
        return f"{guide_dir.name}/{GUIDE_TOKENIZER_FILE}"
    vocab = load_model_dir(guide_dir).config.get("vocab_size")
    return CHAR_TOKENIZER if vocab == len(CharTokenizer().token_list) else None


def store_half(model_dir: Path, keep_float32: Set[str]) -> None:
    """Rewrite ``model_dir/model.safetensors`` with float32 tensors as float16, except ``keep_float32``."""
    from safetensors.torch import load_file, save_file

    weights = model_dir / WEIGHTS_FILE
    tensors = load_file(str(weights))
    half = {k: (v.half() if v.dtype == torch.float32 and k not in keep_float32 else v) for k, v in tensors.items()}
    save_file(half, str(weights), metadata={"l2s_storage": "float16"})


def build_pipeline(out_dir: PathLike, components: Mapping[str, PathLike], name: str,
                   trained_on: Optional[str] = None, generator: Optional[Mapping[str, Any]] = None,
                   guidance: Guidance = Guidance(), vsr_beam_size: int = 0, chunking: ChunkSpec = ChunkSpec(),
                   half: bool = False, card: Optional[CardText] = None) -> Path:
    """Write a pipeline directory (``weights: trained``) from component model directories.

    Args:
        out_dir: destination; replaced whole if it is a pipeline directory already.
        components: component name (:data:`~l2s.pipeline.spec.COMPONENTS`) -> model directory (or a
            trainer's output folder holding ``model/``), or the name of a member of that stage's table that
            needs no directory (``griffinlim``, ``whisper``). ``generator`` and ``vocoder`` are required.
        name: the pipeline's model id.
        trained_on: corpus family (``"synthgrid"`` makes the pipeline warn on real-world video), or None.
        generator: the generator's default settings (a dataclass of its architecture's settings, or a mapping
            of some of its fields; None: its defaults).
        guidance: the default guidance weights.
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
        ModelError: a component holds another kind of model, or does not load; settings the generator does
            not have.
    """
    from l2s.pipeline.pipeline import Lip2Speech

    unknown = sorted(set(components) - set(COMPONENTS))
    missing = [c for c in REQUIRED_COMPONENTS if c not in components]
    if unknown or missing:
        raise InputError("pipeline components " + (f"unknown: {', '.join(unknown)} " if unknown else "")
                         + (f"missing: {', '.join(missing)}" if missing else ""))
    if vsr_beam_size < 0:
        raise InputError(f"beam size must be >= 0, got {vsr_beam_size}")
    # a member that needs no directory (griffinlim, whisper) is named in pipeline.yaml, not copied
    named = {c: str(v) for c, v in components.items()
             if str(v) in named_members(c) and not Path(str(v)).expanduser().is_dir()}
    sources: Dict[str, Path] = {c: model_dir_of(components[c], c) for c in COMPONENTS
                                if c in components and c not in named}
    stored = {c: load_model_dir(src, kind=c) for c, src in sources.items()}  # kind and contract, before any copy
    if "generator" in stored:
        entry = lookup("generator", stored["generator"].arch)
    else:
        entry = lookup("generator", named["generator"])
    given = generator if generator is None or isinstance(generator, Mapping) else to_dict(generator)
    parsed = settings_of(entry, given, f"the {entry.name} generator's settings")  # checked before any copy
    settings = {} if parsed is None else to_dict(parsed)
    out = Path(out_dir)
    check_replaceable(out, PIPELINE_FILE)
    with atomic_dir(out) as tmp:
        for component, src in sources.items():
            shutil.copytree(src, tmp / component)
        tokenizer = _guide_tokenizer(tmp / "guide") if "guide" in sources else None
        spec = PipelineSpec(name=name, components={**{c: c for c in sources}, **named}, weights="trained",
                            trained_on=trained_on, generator=settings, guidance=guidance, guide_tokenizer=tokenizer,
                            vsr_beam_size=vsr_beam_size, chunking=chunking)
        write_spec(tmp, spec)
        pipe = Lip2Speech.from_pretrained(tmp, device="cpu")  # every component loads, the weights fit
        if half:
            networks = pipe.networks()
            for component in sources:
                buffers = {n for n, _ in networks[component].named_buffers()} if component in networks else set()
                store_half(tmp / component, buffers)
            del pipe
            Lip2Speech.from_pretrained(tmp, device="cpu")
        write_card(tmp, spec, card or CardText())
    return out
