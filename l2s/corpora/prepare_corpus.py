"""Prepare a real corpus once: mouth ROI, 16 kHz audio, contract mel and F0 per clip, and manifests.

For every clip of a :class:`~l2s.corpora.layout.CorpusLayout` (read by the corpus's reader):

* ``<out>/roi/<id>.roi.npy``: ``(T, 96, 96)`` uint8 mouth crops, by the same code as ``l2s roi``
  (:func:`l2s.vision.roi.extract_roi`; a ``<clip>.landmarks.npz`` beside the video replaces face
  detection); an utterance with ``extra['segment'] = [start_s, end_s]`` (a cut of a long LRS
  pretrain clip) gets the frames and audio of that span only;
* ``<out>/audio/<id>.wav``: 16 kHz mono, from the corpus's separate audio when it has one (GRID's
  ``audio_25k``) else from the video's audio track, starting at the first video frame and cut or
  zero-padded to exactly ``640 * T`` samples (the contract's frame ratio), scaled down only if it
  would clip the 16-bit file;
* ``<out>/mel/<id>.npy``: ``(4T, 80)`` float32 contract mel in model space
  (:func:`l2s.features.mel.wav_to_mel`), time first like the manifest dataset's ``mel`` field;
* ``<out>/f0/<id>.npy``: ``(4T,)`` float32 F0 in Hz, 0 where unvoiced (:func:`l2s.features.pitch.extract_f0`);
* ``<out>/<split>.jsonl``: one manifest per split (``video``, ``roi``, ``wav``, ``mel``, ``f0``, ``text``...),
  ``<out>/lists/<name>.txt``: the official split lists, ``<out>/rejects.jsonl``: clips that failed,
  with the reason.

(``<id>`` is the clip id with ``/`` written ``__``.) With a shard (``l2s prepare ... --shard i/n``, or
the ranks of ``torchrun``/``srun``: :mod:`l2s.sharding`), a run prepares only its part of the clips and
lists its failures in ``rejects.shard-<i>-of-<n>.jsonl``; one unsharded run afterwards finds their clips
done and writes the manifests. A clip whose four files exist is not
redone, so an interrupted run resumes where it stopped; a clip that fails (no face, broken or
missing file, no transcript, no audio) is rejected and the run goes on. Rejected clips are tried
again on the next run. ``prepare.json`` records the F0 tracker
(:data:`l2s.features.pitch.F0_TRACKER`); when it differs from the installed one, the F0 files of
the clips already done are recomputed from their stored audio (nothing else is redone).
"""

from __future__ import annotations

import importlib
import json
import logging
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from l2s.config import FPS, MEL_FRAMES_PER_VIDEO_FRAME, SAMPLES_PER_VIDEO_FRAME
from l2s.corpora.layout import CorpusLayout
from l2s.data.manifest import Utterance, write_manifest
from l2s.errors import InputError, L2SError
from l2s.features.pitch import F0_TRACKER
from l2s.io.atomic import atomic_path, atomic_write_text
from l2s.sharding import Shard

logger = logging.getLogger(__name__)

#: corpus name -> its reader, ``module:function`` taking the corpus root.
READERS = {
    "grid": "l2s.corpora.grid:read_grid",
    "lrs2": "l2s.corpora.lrs:read_lrs2",
    "lrs3": "l2s.corpora.lrs:read_lrs3",
    "lrw": "l2s.corpora.lrw:read_lrw",
    "synthgrid": "l2s.corpora.manifests:read_manifest_corpus",
}

REJECTS_FILE = "rejects.jsonl"

#: Seconds by which a video may end before its last aligned word (rounding of the alignment).
WORD_END_SLACK = 0.1
#: Frames by which a segment may run past the end of its video (rounding of the word times).
LENGTH_SLACK_FRAMES = 2

Progress = Callable[[Iterable, int], Iterable]
#: One clip's work in a worker: ``(utterance, files) -> (utterance, reject reason or None)``.
Task = Callable[[Tuple["Utterance", "ClipFiles"]], Tuple["Utterance", Optional[str]]]


@dataclass(frozen=True)
class CorpusPrepareResult:
    """Counts of one preparation run.

    Attributes:
        done: clips prepared in this run.
        skipped: clips already prepared by an earlier run.
        rejected: clips that failed (listed in ``rejects``).
        splits: split name -> clips in its manifest (none for a shard: an unsharded run writes them).
        out_dir: the output folder.
        rejects_name: the file listing the clips that failed, in ``out_dir``.
    """

    done: int
    skipped: int
    rejected: int
    splits: Dict[str, int]
    out_dir: Path
    rejects_name: str = REJECTS_FILE

    @property
    def rejects(self) -> Path:
        return self.out_dir / self.rejects_name


@dataclass(frozen=True)
class ClipFiles:
    """Where one clip's prepared files go."""

    roi: Path
    wav: Path
    mel: Path
    f0: Path

    @classmethod
    def of(cls, out_dir: Path, utt: Utterance) -> "ClipFiles":
        safe = utt.id.replace("/", "__")
        return cls(roi=out_dir / "roi" / f"{safe}.roi.npy", wav=out_dir / "audio" / f"{safe}.wav",
                   mel=out_dir / "mel" / f"{safe}.npy", f0=out_dir / "f0" / f"{safe}.npy")

    def complete(self) -> bool:
        return all(p.is_file() for p in (self.roi, self.wav, self.mel, self.f0))

    def attach(self, utt: Utterance, num_frames: int) -> Utterance:
        return replace(utt, roi=self.roi, wav=self.wav, mel=self.mel, f0=self.f0, num_frames=num_frames,
                       duration=round(num_frames / FPS, 4))


def read_corpus(name: str, root: Path) -> CorpusLayout:
    """Read corpus ``name`` (a key of :data:`READERS`) from ``root``."""
    if name not in READERS:
        raise InputError(f"unknown corpus {name!r}; known: {', '.join(READERS)}")
    module, func = READERS[name].split(":")
    return getattr(importlib.import_module(module), func)(Path(root))


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fout:
            np.save(fout, np.ascontiguousarray(array))


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    """Cut or zero-pad the first axis of ``x`` to ``n``."""
    if len(x) >= n:
        return x[:n]
    return np.concatenate([x, np.zeros((n - len(x),) + x.shape[1:], dtype=x.dtype)])


def _check_covers_words(utt: Utterance, num_frames: int) -> None:
    """Refuse a video that ends before its last aligned word (a truncated GRID ``.mpg`` still decodes).

    Raises:
        InputError: the video is more than :data:`WORD_END_SLACK` seconds shorter than its alignment.
    """
    words = utt.extra.get("words") or []
    if words:
        last_end = max(float(w[2]) for w in words)
        if num_frames / FPS + WORD_END_SLACK < last_end:
            raise InputError(f"the video lasts {num_frames / FPS:.2f} s but its last aligned word ends at "
                             f"{last_end:.2f} s (truncated?)")


def _segment_frames(utt: Utterance, num_frames: int) -> Tuple[int, int]:
    """``[first, end)`` video frames of the utterance: all of them, or its ``extra['segment']``.

    Raises:
        InputError: the segment lies outside the video.
    """
    seg = utt.extra.get("segment")
    if not seg:
        return 0, num_frames
    first, end = int(np.floor(float(seg[0]) * FPS)), int(np.ceil(float(seg[1]) * FPS))
    if end > num_frames + LENGTH_SLACK_FRAMES or end - first < 1:
        raise InputError(f"segment {seg[0]}-{seg[1]} s lies outside the video ({num_frames / FPS:.2f} s)")
    return max(first, 0), min(end, num_frames)


def _cut_segment(utt: Utterance, frames: np.ndarray, wav: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The frames ``(T', H, W, 3)`` and samples of the utterance's segment (the audio starts at frame 0)."""
    first, end = _segment_frames(utt, len(frames))
    return frames[first:end], wav[first * SAMPLES_PER_VIDEO_FRAME:end * SAMPLES_PER_VIDEO_FRAME]


def _cut_track(track, utt: Utterance, num_frames: int):
    """The landmark track restricted to the utterance's segment."""
    from l2s.vision.face import FaceTrack

    first, end = _segment_frames(utt, num_frames)
    if (first, end) == (0, num_frames):
        return track
    return FaceTrack(landmarks=track.landmarks[first:end], found=track.found[first:end],
                     boxes=track.boxes[first:end], layout=track.layout)


def prepare_clip(utt: Utterance, files: ClipFiles) -> int:
    """Compute and write the four files of one clip; returns its number of video frames.

    Raises:
        L2SError: the clip cannot be used (the reason is the message).
    """
    import torch

    from l2s.features.mel import wav_to_mel
    from l2s.io.audio import read_audio, write_wav
    from l2s.io.video import read_video
    from l2s.vision.face import load_sidecar
    from l2s.vision.roi import extract_roi, mouth_roi

    if not utt.text:
        raise InputError("no transcript")
    if utt.video is None or not Path(utt.video).is_file():
        raise InputError(f"missing video file {utt.video}")
    # separate audio (GRID's audio_25k, a synthetic corpus's wav) wins over the video's track
    source = utt.extra.get("audio_source") or utt.wav
    seg = utt.extra.get("segment")
    # a segment of a long pretrain clip needs the frames up to its end only (memory: clips last minutes)
    max_frames = int(np.ceil(float(seg[1]) * FPS)) + LENGTH_SLACK_FRAMES if seg else None
    clip = read_video(utt.video, with_audio=source is None, max_frames=max_frames)
    _check_covers_words(utt, clip.num_frames)
    if source is not None:
        wav = read_audio(source)
    elif clip.audio is None:
        raise InputError("the video has no audio track")
    else:
        wav = clip.audio
    frames, wav = _cut_segment(utt, clip.frames, np.asarray(wav, dtype=np.float32))
    if utt.landmarks is not None:
        track = _cut_track(load_sidecar(utt.landmarks), utt, len(clip.frames))
        roi = mouth_roi(frames, track).roi  # what extract_roi does with a sidecar, on the segment's frames
    else:
        roi = extract_roi(frames).roi
    num_frames = int(len(roi))
    wav = _fit(np.asarray(wav, dtype=np.float32), num_frames * SAMPLES_PER_VIDEO_FRAME)
    if not np.any(wav):
        raise InputError("silent audio")
    peak = float(np.abs(wav).max())
    if peak > 1.0:  # decoded AAC can overshoot; scale rather than let the 16-bit file clip
        wav = wav * (0.99 / peak)
    write_wav(files.wav, wav)
    # features from the stored 16-bit file, so they equal what a loader computes from it
    wav = read_audio(files.wav)
    n_mel = num_frames * MEL_FRAMES_PER_VIDEO_FRAME
    mel = wav_to_mel(torch.from_numpy(wav)).T.numpy().astype(np.float32)
    _save_npy(files.mel, _fit(mel, n_mel))
    write_f0(files, wav, n_mel)
    _save_npy(files.roi, np.ascontiguousarray(roi, dtype=np.uint8))  # last: its presence marks the clip done
    return num_frames


def write_f0(files: ClipFiles, wav: np.ndarray, n_mel: int) -> None:
    """F0 of a clip's stored audio, fitted to its ``n_mel`` mel frames."""
    from l2s.features.pitch import extract_f0

    _save_npy(files.f0, _fit(extract_f0(wav).f0.astype(np.float32), n_mel))


def refresh_f0(files: ClipFiles) -> None:
    """Recompute a prepared clip's F0 file from its stored audio (after a tracker change)."""
    from l2s.io.audio import read_audio

    write_f0(files, read_audio(files.wav), int(np.load(files.mel, mmap_mode="r").shape[0]))


def _refresh_task(args: Tuple[Utterance, ClipFiles]) -> Tuple[Utterance, Optional[str]]:
    utt, files = args
    try:
        refresh_f0(files)
    except Exception as exc:  # as in _task: one broken file must not abort the run
        return utt, f"{type(exc).__name__}: {exc}"
    return utt, None


def _task(args: Tuple[Utterance, ClipFiles]) -> Tuple[Utterance, Optional[str]]:
    utt, files = args
    try:
        return files.attach(utt, prepare_clip(utt, files)), None
    except L2SError as exc:
        return utt, str(exc)
    except Exception as exc:  # a broken clip must never abort a corpus-sized run
        return utt, f"{type(exc).__name__}: {exc}"


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _run_pool(todo: List[Tuple[Utterance, ClipFiles]], jobs: int,
              task: Task = _task) -> Iterator[Tuple[Utterance, Optional[str]]]:
    """``task`` (a clip's preparation by default) over ``todo`` in ``jobs`` worker processes, results in order.

    A worker that dies (a crash in a native decoder or detector) breaks the whole pool; the
    clips that were in flight are then run again one by one, each in a pool of its own, so the
    culprit is found and rejected and the others are kept. Then the run goes on in a new pool.
    At most ``4 * jobs`` clips are in flight, so memory does not grow with the corpus.
    """
    pending = list(todo)
    while pending:
        pool = ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker)
        window: "deque[Tuple[Tuple[Utterance, ClipFiles], Future]]" = deque()
        broken = False
        try:
            while pending or window:
                while pending and len(window) < 4 * jobs:
                    item = pending.pop(0)
                    window.append((item, pool.submit(task, item)))
                item, future = window[0]
                try:
                    result = future.result()
                except BrokenProcessPool:
                    broken = True
                    break
                window.popleft()
                yield result
        finally:
            pool.shutdown(wait=not broken, cancel_futures=broken)
        if broken:
            for item, future in window:
                finished = future.done() and not future.cancelled() and future.exception() is None
                yield future.result() if finished else _isolated(item, task)


def _isolated(item: Tuple[Utterance, ClipFiles], task: Task = _task) -> Tuple[Utterance, Optional[str]]:
    """Run one clip in a pool of its own; a dead worker rejects it instead of stopping the run."""
    with ProcessPoolExecutor(max_workers=1, initializer=_init_worker) as pool:
        try:
            return pool.submit(task, item).result()
        except BrokenProcessPool:
            return item[0], "the worker process died on this clip (a crash in a native decoder or detector?)"


def _merge_rejects(path: Path, new: List[dict], ready: Dict[str, Utterance]) -> None:
    """Keep earlier rejects that are still not prepared, replace those tried again, add new ones."""
    new_ids = {r["id"] for r in new}
    old = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                if rec["id"] not in ready and rec["id"] not in new_ids:
                    old.append(rec)
    lines = [json.dumps(r, ensure_ascii=False) for r in old + new]
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))


def _recorded_f0_tracker(out_dir: Path) -> Optional[str]:
    """The F0 tracker named by an earlier run's ``prepare.json`` (None: no record, or written before the field)."""
    path = out_dir / "prepare.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("f0_tracker")
    except (json.JSONDecodeError, AttributeError):
        return None


def _map(items: List[Tuple[Utterance, ClipFiles]], jobs: int, task: Task,
         progress: Optional[Progress]) -> Iterable[Tuple[Utterance, Optional[str]]]:
    """``task`` over ``items``, in a worker pool when ``jobs > 1``, behind the progress wrapper if any."""
    results: Iterable[Tuple[Utterance, Optional[str]]] = (
        _run_pool(items, jobs, task) if jobs > 1 and len(items) > 1 else map(task, items))
    return progress(results, len(items)) if progress is not None else results


def shard_rejects_name(shard: Shard) -> str:
    """``rejects.shard-2-of-4.jsonl``: where one shard lists its failed clips (shards run at the same time)."""
    return f"rejects.shard-{shard.index + 1}-of-{shard.count}.jsonl"


def _prepare_part(clips: List[Utterance], out_dir: Path, jobs: int, progress: Optional[Progress],
                  shard: Shard) -> CorpusPrepareResult:
    """One shard's run: prepare its clips that are not done yet. The manifests, ``prepare.json``, the F0
    refresh and ``rejects.jsonl`` are left to one unsharded run afterwards (the shards may run at once)."""
    mine = shard.take(sorted(clips, key=lambda u: u.id))
    todo = [(u, files) for u, files in ((u, ClipFiles.of(out_dir, u)) for u in mine) if not files.complete()]
    rejects = [{"id": utt.id, "video": str(utt.video), "reason": reason}
               for utt, reason in _map(todo, jobs, _task, progress) if reason is not None]
    name = shard_rejects_name(shard)
    atomic_write_text(out_dir / name, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rejects))
    return CorpusPrepareResult(done=len(todo) - len(rejects), skipped=len(mine) - len(todo), rejected=len(rejects),
                               splits={}, out_dir=out_dir, rejects_name=name)


def prepare_corpus(layout: CorpusLayout, out_dir: Path, jobs: int = 1,
                   progress: Optional[Progress] = None, shard: Shard = Shard()) -> CorpusPrepareResult:
    """Prepare every clip of ``layout`` into ``out_dir`` and write the manifests (see the module docstring).

    Args:
        layout: the corpus, from :func:`read_corpus`.
        out_dir: output folder (created).
        jobs: worker processes (each single-threaded).
        progress: optional wrapper ``(iterable, total) -> iterable`` over the clips to do (a progress bar).
        shard: prepare only this part of the clips (sorted by id; :mod:`l2s.sharding`), and write no manifest:
            run the shards (e.g. a SLURM job array), then once unsharded, which finds their clips done and
            writes the manifests.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    unique: Dict[str, Utterance] = {}
    for utts in layout.splits.values():  # LRS3's train repeats pretrain and trainval clips
        for u in utts:
            unique.setdefault(u.id, u)
    if shard.count > 1:
        return _prepare_part(list(unique.values()), out_dir, jobs, progress, shard)
    ready: Dict[str, Utterance] = {}
    todo: List[Tuple[Utterance, ClipFiles]] = []
    for u in unique.values():
        files = ClipFiles.of(out_dir, u)
        if files.complete():
            ready[u.id] = files.attach(u, int(np.load(files.roi, mmap_mode="r").shape[0]))
        else:
            todo.append((u, files))
    skipped = len(ready)
    if ready and _recorded_f0_tracker(out_dir) != F0_TRACKER:
        logger.info("%s: F0 targets from another tracker; recomputing them for %d prepared clips", out_dir, skipped)
        stale = [(u, ClipFiles.of(out_dir, u)) for u in ready.values()]
        for utt, reason in _map(stale, jobs, _refresh_task, progress):
            if reason is not None:  # the stored audio went missing or is broken: prepare the clip again
                del ready[utt.id]
                todo.append((unique[utt.id], ClipFiles.of(out_dir, utt)))
        skipped = len(ready)
    results = _map(todo, jobs, _task, progress)
    rejects: List[dict] = []
    for utt, reason in results:
        if reason is None:
            ready[utt.id] = utt
        else:
            logger.info("rejected %s: %s", utt.id, reason)
            rejects.append({"id": utt.id, "video": str(utt.video), "reason": reason})
    counts = {}
    for split, utts in layout.splits.items():
        kept = [ready[u.id] for u in utts if u.id in ready]
        write_manifest(out_dir / f"{split}.jsonl", kept)
        counts[split] = len(kept)
    for name, lines in layout.lists.items():
        atomic_write_text(out_dir / "lists" / f"{name}.txt", "".join(line + "\n" for line in lines))
    _merge_rejects(out_dir / REJECTS_FILE, rejects, ready)
    summary = {"corpus": layout.name, "root": str(layout.root), "splits": counts,
               "clips": len(unique), "rejected": len(rejects), "f0_tracker": F0_TRACKER}
    atomic_write_text(out_dir / "prepare.json", json.dumps(summary, indent=1) + "\n")
    return CorpusPrepareResult(done=len(todo) - len(rejects), skipped=skipped, rejected=len(rejects),
                               splits=counts, out_dir=out_dir)
