"""A corpus that ships its own manifests (SynthGRID, or any folder of ``<split>.jsonl`` / ``.csv``).

Every manifest directly in ROOT is a split named after its file (``train.jsonl`` -> ``train``);
entries need ``id``, ``video`` and ``text``; a ``wav`` entry is the clip's audio (else the video's
own track). A ``<clip>.landmarks.npz`` beside a video is used in place of face detection, as for
the official layouts.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from l2s.corpora.layout import CorpusLayout, landmarks_beside
from l2s.data.manifest import Utterance, read_manifest
from l2s.errors import InputError


def read_manifest_corpus(root: Path) -> CorpusLayout:
    """Read every ``*.jsonl`` / ``*.csv`` manifest in ``root`` as one split."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    files = sorted(root.glob("*.jsonl")) + sorted(root.glob("*.csv"))
    if not files:
        raise InputError(f"{root}: no manifests (<split>.jsonl or <split>.csv) in this folder")
    splits = {f.stem: [_with_sidecar(u) for u in read_manifest(f)] for f in files}
    return CorpusLayout(name=root.name, root=root, splits=splits)


def _with_sidecar(utt: Utterance) -> Utterance:
    if utt.landmarks is None and utt.video is not None:
        return replace(utt, landmarks=landmarks_beside(utt.video))
    return utt
