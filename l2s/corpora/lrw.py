"""LRW, Lip Reading in the Wild (Chung and Zisserman, ACCV 2016), in its distributed layout.

::

    ROOT/<WORD>/{train,val,test}/<WORD>_<nnnnn>.mp4    29 frames at 25 fps (1.16 s), audio included
    ROOT/<WORD>/{train,val,test}/<WORD>_<nnnnn>.txt    "Text: WORD", "Conf: ...", then "Duration: 0.53 seconds"

500 words; ``train`` has up to 1,000 clips per word, ``val`` and ``test`` 50 each. The target
word is centred in the clip and lasts ``Duration`` seconds (kept in ``extra['word_duration']``);
the text of an utterance is that word, lower-cased. Splits are the official folders, with
``val`` named ``valid`` as in our other recipes. Clip ids are ``<split>/<WORD>_<nnnnn>``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Dict, List

from l2s.corpora.layout import CorpusLayout, clip_utterance, read_text_header
from l2s.data.manifest import Utterance
from l2s.errors import InputError

#: official folder -> our split name
SPLIT_FOLDERS = {"train": "train", "val": "valid", "test": "test"}


def _duration(value: str) -> float:
    try:
        return float(value.split()[0])
    except (ValueError, IndexError):
        return 0.0


def read_lrw(root: Path) -> CorpusLayout:
    """Read LRW (see the module docstring).

    Raises:
        InputError: ``root`` is missing or holds no ``<WORD>/{train,val,test}/*.mp4`` clip.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder" if not root.exists() else f"{root}: not a folder")
    words = sorted(p for p in root.iterdir() if p.is_dir() and any((p / f).is_dir() for f in SPLIT_FOLDERS))
    splits: Dict[str, List[Utterance]] = {s: [] for s in SPLIT_FOLDERS.values()}
    for word_dir in words:
        for folder, split in SPLIT_FOLDERS.items():
            for video in sorted((word_dir / folder).glob(f"{word_dir.name}_*.mp4")):
                txt = video.with_suffix(".txt")
                header = read_text_header(txt) if txt.is_file() else {"Text": ""}
                utt = clip_utterance(f"{split}/{video.stem}", video, header["Text"], "", word=word_dir.name,
                                     word_duration=_duration(header.get("Duration", "")))
                splits[split].append(replace(utt, txt=txt) if txt.is_file() else utt)
    if not any(splits.values()):
        raise InputError(f"{root}: not the LRW layout (no <WORD>/train|val|test/<WORD>_<nnnnn>.mp4 clip)")
    lists = {folder: [u.id.split("/", 1)[1] for u in splits[split]] for folder, split in SPLIT_FOLDERS.items()}
    return CorpusLayout(name="lrw", root=root, splits=splits, lists=lists)
