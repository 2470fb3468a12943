"""Clips and corpora: plan the splits, make each clip, write files and manifests.

Layout: ``<root>/<split>/<speaker>/<utt>.{mp4,wav,txt,align.json,landmarks.npz}``
with ``<root>/<split>.jsonl`` manifests and ``<root>/corpus.json`` (options,
speakers, viseme table). Splits: ``train``, ``valid`` and ``test-seen`` hold the
seen speakers, on disjoint sentence sets (the grammar's hash partitions);
``test-unseen`` holds the held-out speakers, on test sentences.

Every clip has its own seed derived from the corpus seed, its speaker and its
index, so a clip's bytes do not depend on ``jobs`` or on which clips already
exist; a rerun skips clips whose five files are present.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from l2s.config import FPS, SAMPLE_RATE
from l2s.corpora.synthgrid import grammar, speech
from l2s.corpora.synthgrid.encode import write_h264
from l2s.corpora.synthgrid.face import FaceRenderer, sample_nuisance
from l2s.corpora.synthgrid.mouth import mouth_track
from l2s.corpora.synthgrid.phonemes import VISEMES, viseme_of
from l2s.corpora.synthgrid.speakers import Speaker, make_speakers
from l2s.io.atomic import atomic_path, atomic_write_text
from l2s.io.audio import write_wav

SPLITS = ("train", "valid", "test-seen", "test-unseen")
_SUFFIXES = (".wav", ".txt", ".align.json", ".landmarks.npz", ".mp4")  # the .mp4 is written last
FORMAT_VERSION = 1


@dataclass(frozen=True)
class CorpusOptions:
    """What to generate.

    Attributes:
        speakers: number of speakers, held-out ones included.
        unseen_speakers: the last ``unseen_speakers`` speakers form ``test-unseen``.
        clips_per_speaker: clips of every speaker (seen speakers: split 80/10/10 into train/valid/test-seen).
        seed: everything derives from it.
        size: video side in pixels (even).
        fps: video frame rate.
    """

    speakers: int = 24
    unseen_speakers: int = 4
    clips_per_speaker: int = 125
    seed: int = 0
    size: int = 160
    fps: int = FPS

    def validate(self) -> None:
        from l2s.errors import InputError

        if self.speakers < 1 or not 0 <= self.unseen_speakers < self.speakers:
            raise InputError(f"need at least one seen speaker: speakers={self.speakers}, "
                             f"unseen_speakers={self.unseen_speakers}")
        if self.clips_per_speaker < 1:
            raise InputError(f"clips_per_speaker must be >= 1, got {self.clips_per_speaker}")
        if self.size < 32 or self.size % 2:
            raise InputError(f"size must be an even number >= 32, got {self.size}")


@dataclass(frozen=True)
class ClipSpec:
    """One clip to make: who says what, in which split, with which seed."""

    split: str
    speaker: Speaker
    words: Tuple[str, ...]
    seed: int

    @property
    def utt_id(self) -> str:
        return f"{self.speaker.id}_{grammar.sentence_code(self.words)}"

    @property
    def text(self) -> str:
        return " ".join(self.words)

    def stem(self, root: Path) -> Path:
        return Path(root) / self.split / self.speaker.id / self.utt_id


@dataclass(frozen=True)
class Clip:
    """A made clip in memory.

    Attributes:
        wav: (N,) float32 at 16 kHz, N = num_frames * 640.
        frames: (T, S, S, 3) uint8 RGB at ``fps``.
        landmarks: sidecar arrays (see :mod:`~l2s.corpora.synthgrid.face`).
        align: the ``.align.json`` content.
        crf: H.264 quality to encode with.
    """

    wav: np.ndarray
    frames: np.ndarray
    landmarks: Dict[str, np.ndarray]
    align: Dict[str, Any]
    crf: int


@dataclass(frozen=True)
class CorpusSummary:
    root: str
    clips: int
    made: int
    skipped: int
    splits: Dict[str, int]
    seconds: float
    seconds_banks: float
    speakers: List[str] = field(default_factory=list)


def _frame_span(start: float, end: float, fps: int) -> Tuple[int, int]:
    return int(np.floor(start * fps + 1e-6)), int(np.ceil(end * fps - 1e-6))


def make_clip(spec: ClipSpec, size: int = 160, fps: int = FPS) -> Clip:
    """Synthesise the speech and render the face of one clip."""
    rng = np.random.default_rng(spec.seed)
    audio = speech.speak(spec.speaker, spec.words, rng)
    num_frames = len(audio.wav) * fps // SAMPLE_RATE
    visemes = [(viseme_of(u), s, e) for u, s, e in audio.phonemes]
    poses = mouth_track(visemes, (np.arange(num_frames) + 0.5) / fps)
    nuisance = sample_nuisance(rng, num_frames, fps)
    frames, marks = FaceRenderer(spec.speaker.face, size).render(poses, nuisance, fps)
    align = {
        "id": spec.utt_id,
        "text": spec.text,
        "speaker": spec.speaker.id,
        "duration": len(audio.wav) / SAMPLE_RATE,
        "num_frames": num_frames,
        "fps": fps,
        "sample_rate": SAMPLE_RATE,
        "words": [{"word": w, "start": round(s, 4), "end": round(e, 4),
                   "start_frame": _frame_span(s, e, fps)[0], "end_frame": _frame_span(s, e, fps)[1]}
                  for w, s, e in audio.words],
        "phonemes": [{"phoneme": u, "viseme": VISEMES[v], "start": round(s, 4), "end": round(e, 4),
                      "start_frame": _frame_span(s, e, fps)[0], "end_frame": _frame_span(s, e, fps)[1]}
                     for (u, s, e), (v, _, _) in zip(audio.phonemes, visemes)],
    }
    return Clip(wav=audio.wav, frames=frames, landmarks=marks, align=align, crf=nuisance.crf)


def _manifest_row(spec: ClipSpec, root: Path, align: Dict[str, Any]) -> Dict[str, Any]:
    rel = spec.stem(root).relative_to(root).as_posix()
    return {"id": spec.utt_id, "video": rel + ".mp4", "wav": rel + ".wav", "txt": rel + ".txt",
            "align": rel + ".align.json", "landmarks": rel + ".landmarks.npz", "duration": align["duration"],
            "num_frames": align["num_frames"], "speaker": spec.speaker.id, "text": spec.text}


def is_finished(spec: ClipSpec, root: Path) -> bool:
    stem = spec.stem(root)
    return all(stem.with_name(stem.name + s).exists() for s in _SUFFIXES)


def write_clip(spec: ClipSpec, root: Path, size: int = 160, fps: int = FPS,
               exact_video: bool = False) -> Tuple[Dict[str, Any], bool]:
    """Make and write one clip unless it is already there; returns (manifest row, made)
    (``exact_video``: byte-reproducible H.264, slower; see :func:`~l2s.corpora.synthgrid.encode.write_h264`)."""
    root = Path(root)
    stem = spec.stem(root)
    path = lambda suffix: stem.with_name(stem.name + suffix)  # noqa: E731
    if is_finished(spec, root):
        return _manifest_row(spec, root, json.loads(path(".align.json").read_text())), False
    clip = make_clip(spec, size, fps)
    write_wav(path(".wav"), clip.wav, SAMPLE_RATE)
    atomic_write_text(path(".txt"), spec.text + "\n")
    atomic_write_text(path(".align.json"), json.dumps(clip.align, indent=1) + "\n")
    with atomic_path(path(".landmarks.npz")) as tmp:
        np.savez(tmp, **clip.landmarks)
    write_h264(path(".mp4"), clip.frames, fps, clip.crf, exact=exact_video)
    return _manifest_row(spec, root, clip.align), True


def plan_corpus(opts: CorpusOptions) -> Tuple[List[Speaker], List[ClipSpec]]:
    """The speakers and every clip of a corpus, in a fixed order."""
    opts.validate()
    speakers = make_speakers(opts.speakers, opts.seed, opts.unseen_speakers)
    n_seen = opts.speakers - opts.unseen_speakers
    c = opts.clips_per_speaker
    n_valid = n_test = int(round(0.1 * c)) if c >= 3 else 0
    specs: List[ClipSpec] = []
    for i, spk in enumerate(speakers):
        rng = np.random.default_rng(np.random.SeedSequence([opts.seed, 1, i]))
        if i < n_seen:
            plan = [("train", "train", c - n_valid - n_test), ("valid", "valid", n_valid),
                    ("test-seen", "test", n_test)]
        else:
            plan = [("test-unseen", "test", c)]
        k = 0
        for split, partition, count in plan:
            for words in grammar.sample_sentences(rng, count, partition) if count else []:
                seed = int(np.random.SeedSequence([opts.seed, 2, i, k]).generate_state(1)[0])
                specs.append(ClipSpec(split, spk, words, seed))
                k += 1
    return speakers, specs


def _bank_task(args: Tuple[str, Tuple[str, ...]]) -> Tuple[str, Dict[str, speech.BankWord]]:
    key, words = args
    return key, speech.build_bank(key, words)


def _prebuild_banks(specs: Sequence[ClipSpec], jobs: int) -> None:
    """Build the word banks these clips need, one task per base voice, before any clip is made."""
    needed: Dict[str, set] = {}
    for s in specs:
        if s.speaker.engine == "piper":  # Piper says every sentence whole: no bank
            continue
        have = speech._BANKS.get(s.speaker.voice_key, {})
        needed.setdefault(s.speaker.voice_key, set()).update(w for w in s.words if w not in have)
    tasks = [(k, tuple(sorted(w))) for k, w in sorted(needed.items()) if w]
    if not tasks:
        return
    # Each voice in a fresh interpreter: espeak-ng keeps some state of the previous voice
    # in-process, which made a bank depend on the voices built before it.
    with multiprocessing.get_context("spawn").Pool(max(1, min(jobs, len(tasks))), maxtasksperchild=1) as pool:
        speech.install_banks(dict(pool.map(_bank_task, tasks, chunksize=1)))


def _clip_task(args) -> Tuple[Dict[str, Any], bool]:
    spec, root, size, fps = args
    return write_clip(spec, root, size, fps)


def write_corpus(root: Path, opts: CorpusOptions, jobs: int = 1,
                 wrap: Optional[Callable[[Iterable, int], Iterable]] = None) -> CorpusSummary:
    """Generate (or complete) a corpus under ``root``.

    Args:
        root: output folder.
        opts: what to generate.
        jobs: worker processes (each single-threaded).
        wrap: wraps the per-clip result iterator, e.g. with a progress bar: ``wrap(iterable, total)``.
    """
    t0 = time.perf_counter()
    root = Path(root)
    speakers, specs = plan_corpus(opts)
    _prebuild_banks([s for s in specs if not is_finished(s, root)], jobs)
    ctx = multiprocessing.get_context("fork")
    t_banks = time.perf_counter() - t0
    args = [(s, root, opts.size, opts.fps) for s in specs]
    rows: List[Tuple[Dict[str, Any], bool]] = []
    if jobs > 1:
        with ctx.Pool(jobs) as pool:
            it = pool.imap(_clip_task, args, chunksize=2)
            rows = list(wrap(it, len(args)) if wrap else it)
    else:
        it = map(_clip_task, args)
        rows = list(wrap(it, len(args)) if wrap else it)
    by_split: Dict[str, List[Dict[str, Any]]] = {s: [] for s in SPLITS}
    for spec, (row, _) in zip(specs, rows):
        by_split[spec.split].append(row)
    for split, split_rows in by_split.items():
        atomic_write_text(root / f"{split}.jsonl", "".join(json.dumps(r) + "\n" for r in split_rows))
    meta = {
        "name": "synthgrid", "format_version": FORMAT_VERSION, "options": asdict(opts),
        "signal": {"fps": opts.fps, "sample_rate": SAMPLE_RATE, "size": opts.size},
        "visemes": list(VISEMES),
        "speakers": [s.to_dict() for s in speakers],
        "unseen_speakers": [s.id for s in speakers[opts.speakers - opts.unseen_speakers:]],
        "splits": {k: len(v) for k, v in by_split.items()},
    }
    atomic_write_text(root / "corpus.json", json.dumps(meta, indent=1) + "\n")
    made = sum(m for _, m in rows)
    return CorpusSummary(root=str(root), clips=len(rows), made=made, skipped=len(rows) - made,
                         splits=meta["splits"], seconds=time.perf_counter() - t0, seconds_banks=t_banks,
                         speakers=[s.id for s in speakers])


def make_clips(out_dir: Path, n: int = 4, seed: int = 0, speakers: int = 2, size: int = 160,
               jobs: int = 1) -> List[Dict[str, Any]]:
    """A handful of clips for tests and demos: ``n`` clips spread over ``speakers`` (all in ``train``).

    Returns:
        The manifest rows (paths relative to ``out_dir``).
    """
    per = -(-n // speakers)
    opts = CorpusOptions(speakers=speakers, unseen_speakers=0, clips_per_speaker=per, seed=seed, size=size)
    _, specs = plan_corpus(opts)
    specs = specs[:n]
    _prebuild_banks(specs, jobs=1)
    return [write_clip(s, Path(out_dir), size, opts.fps)[0] for s in specs]


def read_manifest(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
