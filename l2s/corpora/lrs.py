"""LRS2-BBC and LRS3-TED (Afouras et al., 2018) in their distributed layouts.

Every clip is ``<folder>/<nnnnn>.mp4`` (25 fps, 16 kHz AAC audio, a 160x160 face crop) with
``<nnnnn>.txt`` beside it::

    Text:  THE WORDS SPOKEN
    Conf:  3

    WORD START END ASDSCORE
    THE 0.10 0.22 1.8
    ...

Text is upper case in the files; the manifests hold it lower-cased (``extra['text_orig']``
keeps the original). Split conventions follow Auto-AVSR's ``preparation/preprocess_lrs2lrs3.py``
(mpc001/auto_avsr) and the corpora's own documentation:

LRS2 (ROOT holds ``main/`` and ``pretrain/``, or is the parent of ``mvlrs_v1/``; the split lists
``pretrain.txt``, ``train.txt``, ``val.txt`` and ``test.txt`` lie in ROOT or next to ``mvlrs_v1/``)

* ``pretrain``: ``pretrain/<list key>``; ``train``, ``valid``, ``test``: ``main/<list key>`` from
  ``train.txt``, ``val.txt``, ``test.txt`` (list lines are ``<video id>/<nnnnn>``, some test lines
  carry a trailing flag such as ``NF`` or ``MV``, kept in ``extra['flags']``).
  The test set has 1,243 clips.
* ``train_pretrain``: ``pretrain`` + ``train``, Auto-AVSR's LRS2 training set.

LRS3 (ROOT holds ``pretrain/``, ``trainval/`` and ``test/``, each ``<speaker id>/<nnnnn>.mp4``)

* ``test``: every clip of ``test/`` (the 1,321-clip test set; Auto-AVSR globs the folder).
* ``pretrain``, ``trainval``: the folders as they are.
* ``valid``: the trainval clips of about 1 % of the trainval speakers (a stable hash of the
  speaker id). LRS3 has no official validation set (Auto-AVSR validates on test; we do not).
* ``train``: the other trainval clips; ``train_pretrain``: those plus the pretrain clips of the
  same speakers, Auto-AVSR's training set without the validation speakers.

Pretrain clips (of both corpora) last up to minutes: like Auto-AVSR, those longer than 24 s are
cut at word boundaries (from their word timing table) into segments of at most 24 s, with ids
``<clip id>_00``, ``<clip id>_01``... and ``extra['segment'] = [start_s, end_s]``.

Clip ids are ``<subset>/<folder>/<nnnnn>``, unique across subsets.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from l2s.corpora.layout import (CorpusLayout, clip_utterance, read_list, read_text_header, read_word_table,
                                segment_words, stable_bucket)
from l2s.data.manifest import Utterance
from l2s.errors import InputError

LRS2_LISTS = {"pretrain": "pretrain.txt", "train": "train.txt", "valid": "val.txt", "test": "test.txt"}
LRS3_SUBSETS = ("pretrain", "trainval", "test")
#: Percent of LRS3 trainval speakers held out for validation.
LRS3_VALID_PERCENT = 1
#: Pretrain clips are cut into segments of at most this many seconds (Auto-AVSR's ``seg24s``).
PRETRAIN_MAX_SECONDS = 24.0


def _clips(root: Path, subset: str, key: str, flags: Sequence[str] = (),
           max_seconds: Optional[float] = None) -> List[Utterance]:
    """The utterance(s) of ``root/subset/key.mp4``.

    A clip longer than ``max_seconds`` (by its word table) becomes segments ``<id>_00``,
    ``<id>_01``... of at most that length, each with ``extra['segment'] = [start_s, end_s]``.
    A missing transcript leaves the text empty (the clip is rejected at preparation).
    """
    video = root / subset / f"{key}.mp4"
    txt = video.with_suffix(".txt")
    text, conf = "", None
    if txt.is_file():
        header = read_text_header(txt)
        text, conf = header["Text"], header.get("Conf")
    speaker = key.split("/")[0]
    uid = f"{subset}/{key}"
    utt = clip_utterance(uid, video, text, speaker, subset=subset, conf=conf, flags=list(flags))
    utt = replace(utt, txt=txt) if txt.is_file() else utt
    words = read_word_table(txt) if (max_seconds and txt.is_file()) else []
    if not words or words[-1][2] <= max_seconds:
        return [utt]
    out = []
    for k, (start, end, seg_words) in enumerate(segment_words(words, max_seconds)):
        seg = clip_utterance(f"{uid}_{k:02d}", video, " ".join(seg_words), speaker, subset=subset, conf=conf,
                             source_id=uid, segment=[round(start, 3), round(end, 3)])
        out.append(replace(seg, txt=txt))
    return out


def _lrs2_base(root: Path) -> Tuple[Path, Path]:
    """(folder holding ``main/``, folder holding the split lists)."""
    for base in (root, root / "mvlrs_v1"):
        if (base / "main").is_dir() or (base / "pretrain").is_dir():
            lists = base if any((base / f).is_file() for f in LRS2_LISTS.values()) else base.parent
            if base is not root and not any((lists / f).is_file() for f in LRS2_LISTS.values()):
                lists = root
            return base, lists
    raise InputError(f"{root}: not the LRS2 layout (no main/ or pretrain/ folder, nor mvlrs_v1/)")


def _check_root(root: Path) -> Path:
    root = Path(root)
    if not root.exists():
        raise InputError(f"{root}: no such folder")
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    return root


def read_lrs2(root: Path, max_seconds: Optional[float] = PRETRAIN_MAX_SECONDS) -> CorpusLayout:
    """Read LRS2 (see the module docstring).

    Args:
        root: the LRS2 folder.
        max_seconds: pretrain clips longer than this are cut into segments (None: keep whole).

    Raises:
        InputError: ``root`` is not the LRS2 layout or a split list is missing.
    """
    root = _check_root(root)
    base, list_dir = _lrs2_base(root)
    splits: Dict[str, List[Utterance]] = {}
    lists: Dict[str, List[str]] = {}
    for split, name in LRS2_LISTS.items():
        path = list_dir / name
        subset = "pretrain" if split == "pretrain" else "main"
        if not path.is_file():
            if split == "pretrain" and not (base / "pretrain").is_dir():
                continue
            raise InputError(f"{root}: not the LRS2 layout (no split list {name} in {list_dir})")
        entries = read_list(path)
        lists[Path(name).stem] = [" ".join([k] + f) for k, f in entries]
        max_s = max_seconds if split == "pretrain" else None
        splits[split] = [u for key, flags in entries for u in _clips(base, subset, key, flags, max_s)]
    splits["train_pretrain"] = splits.get("pretrain", []) + splits["train"]
    return CorpusLayout(name="lrs2", root=root, splits=splits, lists=lists)


def _folder_keys(base: Path, subset: str) -> List[str]:
    folder = base / subset
    if not folder.is_dir():
        return []
    return sorted(p.relative_to(folder).with_suffix("").as_posix() for p in folder.glob("*/*.mp4"))


def read_lrs3(root: Path, valid_percent: Optional[int] = None,
              max_seconds: Optional[float] = PRETRAIN_MAX_SECONDS) -> CorpusLayout:
    """Read LRS3 (see the module docstring).

    Args:
        root: the folder holding ``pretrain/``, ``trainval/`` and ``test/``.
        valid_percent: percent of trainval speakers held out as ``valid`` (default 1).
        max_seconds: pretrain clips longer than this are cut into segments (None: keep whole).

    Raises:
        InputError: ``root`` holds none of the three folders, or no clip.
    """
    root = _check_root(root)
    if not any((root / s).is_dir() for s in LRS3_SUBSETS):
        raise InputError(f"{root}: not the LRS3 layout (no pretrain/, trainval/ or test/ folder)")
    pct = LRS3_VALID_PERCENT if valid_percent is None else valid_percent
    keys = {s: _folder_keys(root, s) for s in LRS3_SUBSETS}
    subsets = {s: [u for k in keys[s] for u in _clips(root, s, k, max_seconds=max_seconds if s == "pretrain" else None)]
               for s in LRS3_SUBSETS}
    if not any(subsets.values()):
        raise InputError(f"{root}: not the LRS3 layout (no <speaker>/<nnnnn>.mp4 clip in pretrain/, trainval/, test/)")
    held = {u.speaker for u in subsets["trainval"] if stable_bucket(u.speaker) < pct}
    train = [u for u in subsets["trainval"] if u.speaker not in held]
    splits = {
        "train": train,
        "valid": [u for u in subsets["trainval"] if u.speaker in held],
        "test": subsets["test"],
        "train_pretrain": [u for u in subsets["pretrain"] if u.speaker not in held] + train,
        "pretrain": subsets["pretrain"],
        "trainval": subsets["trainval"],
    }
    lists = {s: keys[s] for s in LRS3_SUBSETS if keys[s]}
    lists["valid"] = [u.id for u in splits["valid"]]
    return CorpusLayout(name="lrs3", root=root, splits=splits, lists=lists)
