"""Evaluation inputs: a folder of ``<id>.wav`` or a manifest, matched by utterance id.

Folder layout: ``<id>.wav`` with optional ``<id>.txt`` (reference text, beside REF audio),
``<id>.json`` (metadata such as ``guide_asr`` beside HYP audio) and ``<id>.roi.npy``
(mouth ROI ``(T, 96, 96)`` uint8, for the sync score).
Manifest: CSV (header row) or JSONL read by :func:`l2s.data.manifest.read_manifest`, with ``id``
and ``wav``, optional ``text`` (or a ``txt`` file), ``roi`` and ``guide_asr``; relative paths are
taken from the manifest's folder (a SynthGRID split manifest works as it is).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

from l2s.errors import InputError

MANIFEST_SUFFIXES = (".csv", ".jsonl")
_LIST_MAX = 5  # ids named in an error message before "... and N more"


@dataclass(frozen=True)
class Utterance:
    """One side of an evaluation pair.

    Attributes:
        id: utterance id (file stem or manifest ``id``).
        wav: audio file.
        text: reference text, when known.
        roi: mouth ROI ``.npy`` file, when known.
        meta: extra metadata (``guide_asr``...).
    """

    id: str
    wav: Path
    text: Optional[str] = None
    roi: Optional[Path] = None
    meta: Mapping[str, object] = field(default_factory=dict)


def _from_folder(folder: Path) -> Dict[str, Utterance]:
    out = {}
    for wav in sorted(folder.glob("*.wav")):
        uid = wav.stem
        txt, meta_file, roi = wav.with_suffix(".txt"), wav.with_suffix(".json"), folder / f"{uid}.roi.npy"
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        out[uid] = Utterance(id=uid, wav=wav, text=txt.read_text().strip() if txt.is_file() else None,
                             roi=roi if roi.is_file() else None, meta=meta)
    return out


def _from_manifest(path: Path) -> Dict[str, Utterance]:
    """Entries of a manifest read by :func:`l2s.data.manifest.read_manifest` (``wav`` required)."""
    from l2s.data.manifest import read_manifest

    out: Dict[str, Utterance] = {}
    for entry in read_manifest(path):
        if entry.wav is None:
            raise InputError(f"{path}: entry {entry.id!r} has no 'wav'")
        text = entry.text or (entry.txt.read_text().strip() if entry.txt and entry.txt.is_file() else None)
        out[entry.id] = Utterance(id=entry.id, wav=entry.wav, text=text or None, roi=entry.roi,
                                  meta=dict(entry.extra))
    return out


def load_set(path: Path, role: str) -> Dict[str, Utterance]:
    """Utterances of a folder or a manifest, by id.

    Args:
        path: folder or ``.csv`` / ``.jsonl`` manifest.
        role: ``"REF"`` or ``"HYP"``, for error messages.
    """
    path = Path(path)
    if path.is_dir():
        utts = _from_folder(path)
    elif path.is_file() and path.suffix in MANIFEST_SUFFIXES:
        utts = _from_manifest(path)
    elif path.exists():
        raise InputError(f"{role} {path}: expected a folder of <id>.wav or a .csv/.jsonl manifest")
    else:
        raise InputError(f"{role} {path}: no such file or folder")
    if not utts:
        raise InputError(f"{role} {path}: no utterances found")
    return utts


def _names(ids: List[str]) -> str:
    shown = ", ".join(ids[:_LIST_MAX])
    return shown + (f" ... and {len(ids) - _LIST_MAX} more" if len(ids) > _LIST_MAX else "")


def match_sets(ref: Mapping[str, Utterance], hyp: Mapping[str, Utterance],
               need_text: bool) -> List[Tuple[Utterance, Utterance]]:
    """Pairs ``(ref, hyp)`` sorted by id; the two sets must hold the same ids.

    Raises:
        InputError: naming the ids missing on either side, or REF utterances without text.
    """
    only_ref = sorted(set(ref) - set(hyp))
    only_hyp = sorted(set(hyp) - set(ref))
    if only_ref or only_hyp:
        parts = []
        if only_ref:
            parts.append(f"{len(only_ref)} REF id(s) missing from HYP: {_names(only_ref)}")
        if only_hyp:
            parts.append(f"{len(only_hyp)} HYP id(s) missing from REF: {_names(only_hyp)}")
        raise InputError("utterance ids do not match: " + "; ".join(parts))
    if need_text:
        no_text = sorted(uid for uid, u in ref.items() if not u.text)
        if no_text:
            raise InputError(f"WER needs reference text: no <id>.txt / text for {_names(no_text)} "
                             "(or leave wer out of --metrics)")
    return [(ref[uid], hyp[uid]) for uid in sorted(ref)]
