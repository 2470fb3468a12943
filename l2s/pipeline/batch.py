"""Batches of clips: which inputs, which outputs, which are done, and which this process takes.

Before any work a batch is checked whole: no output may be an input (the same path, a symbolic
link to it or a hard link of it), every output folder must be writable, and a file in the way that
l2s did not write is refused unless ``--overwrite`` (beside an output l2s made, a plot or transcript
its sidecar does not list is someone else's). A clip is finished when its output and the sidecar l2s
wrote for it both exist, the sidecar's ``request`` (the input's path, size and modification time, or a
stdin input's SHA-256, and the settings asked for) equals this run's, and the plot and transcripts
asked for are there (subtitles written with the ``--word-timestamps`` asked for); a clip made from
another input or with other settings, or missing one of those files, is made again. With ``--shard i/n``, under
``torchrun`` or in an ``srun`` step, each process takes its part of the inputs (:mod:`l2s.sharding`),
so processes never write the same file.
"""

from __future__ import annotations

import enum
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, TypeVar

from l2s.errors import InputError, OutputError
from l2s.pipeline.outputs import (OUTPUT_SUFFIXES, TIMED_TRANSCRIPTS, check_output_path, plot_of, read_sidecar,
                                  sidecar_of, transcript_of)
from l2s.sharding import Shard, env_shard, resolve_shard

VIDEO_INPUT_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
#: Suffixes that name a media file, not a folder: several inputs with ``-o x.wav`` are refused.
MEDIA_SUFFIXES = tuple(dict.fromkeys(OUTPUT_SUFFIXES + VIDEO_INPUT_SUFFIXES))

T = TypeVar("T")


class State(enum.Enum):
    """Where a job's output stands before the run."""

    NEW = "new"  # nothing there
    DONE = "done"  # l2s made it from this input with these settings
    STALE = "stale"  # l2s made it, from another input or with other settings, or it is incomplete
    FOREIGN = "foreign"  # a file l2s did not write is in the way


@dataclass(frozen=True)
class Job:
    """One clip to voice: its input video and output file.

    Attributes:
        input: the video.
        output: the file to write (its sidecar and plot go beside it).
        request: the input's identity and the settings asked for (see :func:`job_request`).
        label: how messages name the input (``<stdin>`` for a copy of stdin).
    """

    input: Path
    output: Path
    request: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or str(self.input)

    def outputs(self, plot: bool = False, transcripts: Sequence[str] = ()) -> List[Path]:
        """Every file this job writes (``transcripts``: the formats written beside the output), the sidecar last."""
        return ([self.output] + ([plot_of(self.output)] if plot else [])
                + [transcript_of(self.output, fmt) for fmt in transcripts] + [sidecar_of(self.output)])

    def state(self, plot: bool = False, transcripts: Sequence[str] = (),
              word_timestamps: bool = False) -> Tuple[State, str]:
        """Whether the output is new, finished, stale or someone else's, and why (for messages).

        Args:
            plot: the PNG is asked for.
            transcripts: the transcript formats asked for (``txt``, ``srt``...).
            word_timestamps: the subtitles (srt, vtt, tsv) are asked for with one cue per word.
        """
        targets = self.outputs(plot, transcripts)
        record = read_sidecar(self.output)
        if record is None:
            others = [p for p in targets if p.exists() or p.is_symlink()]
            if others:
                return State.FOREIGN, f"{others[0]} exists and was not written by l2s (no l2s sidecar beside it)"
            return State.NEW, ""
        listed = record.get("files")
        if isinstance(listed, list):  # an l2s that lists its files: any other one beside them is someone else's
            others = [p for p in targets[1:-1] if (p.exists() or p.is_symlink()) and p.name not in listed]
            if others:
                return State.FOREIGN, (f"{others[0]} exists and was not written by l2s (the sidecar beside it "
                                       "does not list it)")
        if not self.output.is_file():
            return State.STALE, "its sidecar is there but not the output"
        why = request_difference(record.get("request"), self.request)
        if why:
            return State.STALE, why
        if plot and not plot_of(self.output).is_file():
            return State.STALE, "it has no plot yet"
        missing = [fmt for fmt in transcripts if not transcript_of(self.output, fmt).is_file()]
        if missing:
            return State.STALE, f"it has no {', '.join(missing)} yet"
        recorded = bool((record.get("request") or {}).get("word_timestamps"))
        if set(transcripts) & set(TIMED_TRANSCRIPTS) and recorded != word_timestamps:
            return State.STALE, f"its subtitles were written {'with' if recorded else 'without'} --word-timestamps"
        return State.DONE, ""

    def done(self) -> bool:
        return self.state()[0] is State.DONE


def _stat_identity(path: Path) -> Dict[str, Any]:
    st = path.stat()
    return {"path": os.path.realpath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def input_identity(path: Path, digest: Optional[str] = None) -> Dict[str, Any]:
    """What identifies an input between runs: its resolved path, size and modification time, or the
    SHA-256 of its bytes when it has no path of its own (stdin)."""
    if digest is not None:
        return {"path": "-", "sha256": digest}
    return _stat_identity(path)


def file_identity(path: Optional[Path]) -> Optional[Dict[str, Any]]:
    """:func:`input_identity` of an optional side input (a transcript, a reference recording); None if absent."""
    if path is None or not path.is_file():
        return None
    return _stat_identity(path)


def job_request(job: Job, settings: Mapping[str, Any], digest: Optional[str] = None) -> Dict[str, Any]:
    """The request a sidecar records: the input's identity and the settings, as JSON would give them back."""
    request = {"input": input_identity(job.input, digest), "settings": dict(settings)}
    return json.loads(json.dumps(request))


def request_difference(recorded: Optional[Mapping[str, Any]], wanted: Mapping[str, Any]) -> str:
    """Why a recorded request does not match this run's ('' when it does)."""
    if not isinstance(recorded, Mapping):
        return "its sidecar does not say what it was made from (an older l2s)"
    if recorded.get("input") != wanted.get("input"):
        before, now = recorded.get("input") or {}, wanted.get("input") or {}
        if before.get("path") != now.get("path"):
            return f"it was made from another input ({before.get('path')})"
        return "its input has changed since"
    before, now = recorded.get("settings") or {}, wanted.get("settings") or {}
    changed = [f"{k} {json.dumps(before.get(k))} -> {json.dumps(now.get(k))}"
               for k in sorted(set(before) | set(now)) if before.get(k) != now.get(k)]
    return f"it was made with other settings ({', '.join(changed)})" if changed else ""


def _listed_videos(folder: Path) -> List[Path]:
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        raise InputError(f"{folder}: cannot list this folder ({(exc.strerror or str(exc)).lower()})") from None
    return sorted(f for f in entries if f.suffix.lower() in VIDEO_INPUT_SUFFIXES and f.is_file())


def expand_inputs(inputs: Sequence[str]) -> List[Path]:
    """Files as given, and the video files directly inside given folders (sorted).

    Raises:
        InputError: a path does not exist (or is a broken link, a link loop), a folder holds no
            video, or nothing is left.
    """
    from l2s.io.files import check_input_file, input_problem

    out: List[Path] = []
    for text in inputs:
        p = Path(text)
        problem = input_problem(p)
        if problem is None and p.is_dir():
            found = _listed_videos(p)
            if not found:
                raise InputError(f"{p}: no video files ({', '.join(VIDEO_INPUT_SUFFIXES)}) in this folder")
            out.extend(found)
        else:
            out.append(check_input_file(p, "video"))
    if not out:
        raise InputError("no inputs")
    return out


def plan_jobs(inputs: Sequence[str], output: str, fmt: str = "wav") -> Tuple[List[Job], bool]:
    """Pair inputs with outputs.

    Args:
        inputs: files and folders from the command line.
        output: a file (one input) or a folder (several inputs, or a folder input).
        fmt: output extension in folder mode (``wav``, ``mp4``...).

    Returns:
        The jobs and whether this is folder mode.

    Raises:
        InputError: no usable input, an output type l2s does not write, several inputs and an
            output named like a media file, two inputs that would write the same file.
    """
    files = expand_inputs(inputs)
    out = Path(output)
    folder_mode = len(files) > 1 or any(Path(i).is_dir() for i in inputs) or out.is_dir() or not out.suffix
    if not folder_mode:
        check_output_path(out)
        return [Job(files[0], out)], False
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: several inputs need an output folder, and this is a file")
    if not out.exists() and out.suffix.lower() in MEDIA_SUFFIXES:
        raise InputError(f"-o {out}: {len(files)} inputs need an output folder, and this names a "
                         f"{out.suffix} file; give a folder (each input writes <name>.{fmt.lstrip('.')} in it)")
    suffix = "." + fmt.lower().lstrip(".")
    if suffix not in OUTPUT_SUFFIXES:
        raise InputError(f"--format {fmt}: expected one of {', '.join(s[1:] for s in OUTPUT_SUFFIXES)}")
    stems: Dict[str, Path] = {}
    for f in files:
        if f.stem in stems:
            raise InputError(f"{f} and {stems[f.stem]} would both write {f.stem}{suffix}")
        stems[f.stem] = f
    return [Job(f, out / (f.stem + suffix)) for f in files], True


def _file_keys(paths: Iterable[Path]) -> Tuple[Dict[str, Path], Dict[Tuple[int, int], Path]]:
    by_path, by_inode = {}, {}
    for p in paths:
        by_path[os.path.realpath(p)] = p
        try:
            st = p.stat()
        except OSError:
            continue
        by_inode[(st.st_dev, st.st_ino)] = p
    return by_path, by_inode


def check_not_inputs(jobs: Sequence[Job], protected: Iterable[Path] = (), plot: bool = False,
                     transcripts: Sequence[str] = ()) -> None:
    """Refuse, before any work, an output that is one of the inputs (or another protected file).

    The same path, a symbolic link to it, or a hard link of it (the same inode) all count; even
    ``--overwrite`` does not allow it.

    Raises:
        OutputError: naming the output and the input it would destroy.
    """
    by_path, by_inode = _file_keys([j.input for j in jobs] + list(protected))
    for job in jobs:
        for target in job.outputs(plot, transcripts):
            same = by_path.get(os.path.realpath(target))
            if same is None:
                try:
                    st = target.stat()
                    same = by_inode.get((st.st_dev, st.st_ino))
                except OSError:
                    same = None
            if same is None:
                continue
            if str(same) == str(target):
                raise OutputError(f"{target}: is one of the inputs; l2s never writes over its inputs, "
                                  "choose another output")
            raise OutputError(f"{target}: is the input {same} (the same file under another name); l2s never "
                              "writes over its inputs, choose another output")


def check_output_folders(jobs: Sequence[Job]) -> None:
    """Create and remove a temporary file in every output folder, so an unwritable one fails now.

    Raises:
        OutputError: naming the output (one job) or the folder (read-only, no permission, full, a file
            in the way).
    """
    from l2s.io.files import check_writable

    folders: Dict[Path, List[Job]] = {}
    for job in jobs:
        folders.setdefault(job.output.parent, []).append(job)
    for folder, members in sorted(folders.items()):
        check_writable(folder, members[0].output if len(members) == 1 else None)


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
