"""Utterance manifests: one JSON object per line (``.jsonl``) or a CSV with a header.

Required fields: ``id``. Common fields: ``video``, ``wav``, ``roi``, ``text``, ``speaker``,
``duration`` (s), ``num_frames`` (video frames at 25 fps). Paths may be relative: they are
resolved against the manifest's folder. Unknown fields are kept in ``extra``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Union

from l2s.errors import InputError
from l2s.io.atomic import atomic_write_text

PATH_FIELDS = ("video", "wav", "roi", "txt", "landmarks", "align", "mel", "f0")
CORE_FIELDS = ("id", "text", "speaker", "duration", "num_frames") + PATH_FIELDS


@dataclass(frozen=True)
class Utterance:
    """One entry of a manifest, with paths made absolute."""

    id: str
    text: str = ""
    speaker: str = ""
    duration: float = 0.0
    num_frames: int = 0
    video: Optional[Path] = None
    wav: Optional[Path] = None
    roi: Optional[Path] = None
    txt: Optional[Path] = None
    landmarks: Optional[Path] = None
    align: Optional[Path] = None
    mel: Optional[Path] = None
    f0: Optional[Path] = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_record(self, root: Optional[Path] = None) -> Dict[str, Any]:
        """A JSON-ready dict; paths relative to ``root`` when they lie under it."""
        rec: Dict[str, Any] = {"id": self.id}
        for name in CORE_FIELDS[1:]:
            value = getattr(self, name)
            if value is None or value == "":
                continue
            if isinstance(value, Path):
                value = _relative(value, root)
            rec[name] = value
        rec.update(self.extra)
        return rec


def _relative(path: Path, root: Optional[Path]) -> str:
    if root is not None:
        try:
            return str(path.resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return str(path)


def _from_record(rec: Mapping[str, Any], base: Path, where: str) -> Utterance:
    if not rec.get("id"):
        raise InputError(f"{where}: entry without an 'id'")
    kwargs: Dict[str, Any] = {"id": str(rec["id"])}
    for name in ("text", "speaker"):
        if rec.get(name) is not None:
            kwargs[name] = str(rec[name])
    try:
        if rec.get("duration") not in (None, ""):
            kwargs["duration"] = float(rec["duration"])
        if rec.get("num_frames") not in (None, ""):
            kwargs["num_frames"] = int(rec["num_frames"])
    except ValueError as exc:
        raise InputError(f"{where}: bad number in entry {rec['id']!r} ({exc})") from None
    for name in PATH_FIELDS:
        if rec.get(name):
            p = Path(str(rec[name])).expanduser()
            kwargs[name] = p if p.is_absolute() else base / p
    kwargs["extra"] = {k: v for k, v in rec.items() if k not in CORE_FIELDS}
    return Utterance(**kwargs)


def read_manifest(path: Union[str, Path]) -> List[Utterance]:
    """Read a ``.jsonl`` or ``.csv`` manifest; refuses duplicate ids."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such manifest")
    text = path.read_text(encoding="utf-8")
    base = path.resolve().parent
    if path.suffix == ".csv":
        records: Iterable[Mapping[str, Any]] = list(csv.DictReader(io.StringIO(text)))
    else:
        records = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}:{n}: not JSON ({exc.msg})") from None
    utts = [_from_record(rec, base, str(path)) for rec in records]
    seen: Dict[str, int] = {}
    for u in utts:
        seen[u.id] = seen.get(u.id, 0) + 1
    dups = sorted(k for k, v in seen.items() if v > 1)
    if dups:
        raise InputError(f"{path}: duplicate ids: {', '.join(dups[:5])}{' ...' if len(dups) > 5 else ''}")
    return utts


def write_manifest(path: Union[str, Path], utts: Iterable[Utterance]) -> None:
    """Write a JSONL manifest atomically, with paths relative to its folder."""
    path = Path(path)
    root = path.parent
    lines = [json.dumps(u.to_record(root), ensure_ascii=False, sort_keys=False) for u in utts]
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
