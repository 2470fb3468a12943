"""Per-clip feature preparation for a manifest: the mouth ROI, written once per clip.

``prepare_manifest`` runs the same ROI code as ``l2s roi`` on every utterance
(using a landmark sidecar when the manifest names one), writes ``<id>.roi.npy``
under the output folder, and writes a new manifest whose entries point at them.
It is resumable (finished clips are skipped) and a failing clip (no face, broken
file) is logged with its reason in ``rejects.jsonl`` instead of aborting the run.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

import numpy as np

from l2s.data.manifest import Utterance, read_manifest, write_manifest
from l2s.errors import L2SError
from l2s.io.atomic import atomic_path, atomic_write_text

logger = logging.getLogger(__name__)

REJECTS_FILE = "rejects.jsonl"


@dataclass(frozen=True)
class PrepareResult:
    """Counts of one preparation run."""

    done: int
    skipped: int
    rejected: int
    manifest: Path


def roi_file(out_dir: Path, utt: Utterance) -> Path:
    safe = utt.id.replace("/", "__")
    return out_dir / "roi" / f"{safe}.roi.npy"


def _prepare_one(args: Tuple[Utterance, Path]) -> Tuple[Utterance, Optional[str]]:
    """ROI for one utterance; returns the updated utterance, or the reason it failed."""
    from l2s.vision.roi import extract_roi

    utt, dest = args
    try:
        if utt.video is None:
            raise L2SError("no 'video' in the manifest entry")
        result = extract_roi(utt.video, sidecar=utt.landmarks)
        with atomic_path(dest) as tmp:
            with open(tmp, "wb") as fout:
                np.save(fout, np.ascontiguousarray(result.roi, dtype=np.uint8))
        return replace(utt, roi=dest, num_frames=int(len(result.roi))), None
    except L2SError as exc:
        return utt, str(exc)
    except Exception as exc:  # a broken clip must not abort a corpus-sized run
        return utt, f"{type(exc).__name__}: {exc}"


def prepare_manifest(manifest: Path, out_dir: Path, jobs: int = 1, out_manifest: Optional[Path] = None,
                     progress=None) -> PrepareResult:
    """Compute the ROI of every utterance of ``manifest`` into ``out_dir``.

    Args:
        manifest: input manifest (needs ``video``; ``landmarks`` is used when present).
        out_dir: where ``roi/<id>.roi.npy``, the new manifest and ``rejects.jsonl`` go.
        jobs: worker processes.
        out_manifest: path of the written manifest (default ``out_dir / manifest.name``).
        progress: optional wrapper ``(iterable, total) -> iterable`` (a progress bar).
    """
    utts = read_manifest(manifest)
    out_dir = Path(out_dir)
    out_manifest = out_manifest or out_dir / Path(manifest).with_suffix(".jsonl").name
    todo: List[Tuple[Utterance, Path]] = []
    ready: dict = {}
    for u in utts:
        dest = roi_file(out_dir, u)
        if dest.is_file():
            n = int(np.load(dest, mmap_mode="r").shape[0])
            ready[u.id] = replace(u, roi=dest, num_frames=n)
        else:
            todo.append((u, dest))
    skipped = len(ready)
    rejects = []
    results: Iterable[Tuple[Utterance, Optional[str]]]
    if jobs > 1 and len(todo) > 1:
        pool = ProcessPoolExecutor(max_workers=jobs)
        results = pool.map(_prepare_one, todo, chunksize=4)
    else:
        pool = None
        results = map(_prepare_one, todo)
    if progress is not None:
        results = progress(results, len(todo))
    try:
        for utt, reason in results:
            if reason is None:
                ready[utt.id] = utt
            else:
                logger.warning("rejected %s: %s", utt.id, reason)
                rejects.append({"id": utt.id, "video": str(utt.video), "reason": reason})
    finally:
        if pool is not None:
            pool.shutdown()
    kept = [ready[u.id] for u in utts if u.id in ready]
    write_manifest(out_manifest, kept)
    rejects_path = out_dir / REJECTS_FILE
    old = rejects_path.read_text().splitlines() if rejects_path.is_file() else []
    old_ids = {json.loads(line)["id"] for line in old if line.strip()}
    lines = [line for line in old if line.strip() and json.loads(line)["id"] not in ready]
    lines += [json.dumps(r) for r in rejects if r["id"] not in old_ids]
    atomic_write_text(rejects_path, "\n".join(lines) + ("\n" if lines else ""))
    return PrepareResult(done=len(todo) - len(rejects), skipped=skipped, rejected=len(rejects),
                         manifest=out_manifest)
