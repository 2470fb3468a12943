"""Batches of clips: which inputs, which outputs, which are done, and which this process takes.

A batch resumes: a clip whose output and JSON sidecar both exist is finished (the sidecar is
written last, atomically) and is skipped. With ``--shard i/n``, under ``torchrun`` or in an ``srun``
step, each process takes its part of the inputs (:mod:`l2s.sharding`), so processes never write the
same file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, TypeVar

from l2s.errors import InputError
from l2s.pipeline.outputs import OUTPUT_SUFFIXES, check_output_path, sidecar_of
from l2s.sharding import Shard, env_shard, resolve_shard

VIDEO_INPUT_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")

T = TypeVar("T")


@dataclass(frozen=True)
class Job:
    """One clip to voice: its input video and output file."""

    input: Path
    output: Path

    def done(self) -> bool:
        return self.output.is_file() and sidecar_of(self.output).is_file()


def expand_inputs(inputs: Sequence[str]) -> List[Path]:
    """Files as given, and the video files directly inside given folders (sorted).

    Raises:
        InputError: a path does not exist, a folder holds no video, or nothing is left.
    """
    out: List[Path] = []
    for text in inputs:
        p = Path(text)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in VIDEO_INPUT_SUFFIXES)
            if not found:
                raise InputError(f"{p}: no video files ({', '.join(VIDEO_INPUT_SUFFIXES)}) in this folder")
            out.extend(found)
        elif not p.exists():
            raise InputError(f"{text}: no such file")
        elif p.stat().st_size == 0:
            raise InputError(f"{text}: empty file")
        else:
            out.append(p)
    if not out:
        raise InputError("no inputs")
    return out


def plan_jobs(inputs: Sequence[str], output: str, fmt: str = "wav") -> Tuple[List[Job], bool]:
    """Pair inputs with outputs.

    Args:
        inputs: files and folders from the command line.
        output: a file (one input) or a folder (several inputs, or a folder input).
        fmt: output extension in folder mode (``wav`` or ``mp4``...).

    Returns:
        The jobs and whether this is folder mode.
    """
    files = expand_inputs(inputs)
    out = Path(output)
    folder_mode = len(files) > 1 or any(Path(i).is_dir() for i in inputs) or out.is_dir() or not out.suffix
    if not folder_mode:
        check_output_path(out)
        return [Job(files[0], out)], False
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: several inputs need an output folder, and this is a file")
    suffix = "." + fmt.lower().lstrip(".")
    if suffix not in OUTPUT_SUFFIXES:
        raise InputError(f"--format {fmt}: expected one of {', '.join(s[1:] for s in OUTPUT_SUFFIXES)}")
    stems = {}
    for f in files:
        if f.stem in stems:
            raise InputError(f"{f} and {stems[f.stem]} would both write {f.stem}{suffix}")
        stems[f.stem] = f
    return [Job(f, out / (f.stem + suffix)) for f in files], True


def dist_rank() -> Tuple[int, int]:
    """``(rank, world_size)`` from ``torchrun`` (or an ``srun`` step, :func:`l2s.sharding.env_shard`), ``(0, 1)``
    outside both."""
    part = env_shard()
    return part.index, part.count


def jobs_of_this_process(jobs: Sequence[Job], shard_option: Optional[str] = None) -> Tuple[List[Job], Shard]:
    """The jobs this process voices: ``--shard i/n`` (if given) split further among the launcher's ranks.

    Raises:
        InputError: a bad ``--shard`` or launcher variable.
    """
    part = resolve_shard(shard_option)
    return part.take(jobs), part


def shard(items: Sequence[T], rank: int, world_size: int) -> List[T]:
    """The items rank ``rank`` of ``world_size`` takes: ``items[rank::world_size]``."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world size {world_size}")
    return list(items[rank::world_size])
