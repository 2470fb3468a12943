"""The GRID audio-visual corpus (Cooke et al., JASA 2006) in its distributed layout.

Layout read (ROOT is the folder that holds the per-speaker folders)::

    ROOT/s1/*.mpg                 video, 25 fps, 3 s (``bbaf2n.mpg``: "bin blue at f two now");
                                  the ``s1/video/mpg_6000/`` nesting of the original archives works too
    ROOT/align/s1/*.align         word alignments (``alignments/s1/`` and ``s1/align/`` are accepted)
    ROOT/audio_25k/s1/*.wav       optional studio audio; without it the .mpg's audio track is used

``s1`` to ``s34``; ``s21`` has no video in the distribution and is simply absent. An ``.align``
file has one ``start end word`` line per token, times in 1/1000 of a video frame at 25 fps
(``74500`` is frame 74.5, i.e. 2.98 s); ``sil`` and ``sp`` are silence and short-pause tokens and
are dropped from the text. A clip without an alignment is skipped (it has no transcript).

Splits (sources):

* ``test-unseen``: speakers 1, 2, 20 and 22, the held-out speakers of LipNet's unseen-speaker
  protocol (Assael et al., "LipNet: End-to-End Sentence-level Lipreading", 2016, Sec. 4.1), also
  used for unseen-speaker lip-to-speech (e.g. Vougioukas et al., "Video-Driven Speech
  Reconstruction using GANs", Interspeech 2019; Mira et al., "End-to-End Video-To-Speech Synthesis
  using GANs", 2021).
* ``train`` / ``valid`` / ``test-seen``: every other speaker's clips split about 90 / 5 / 5
  per speaker (the multi-speaker "seen" protocol of Vougioukas et al. 2019 and VCA-GAN, Kim et al.,
  NeurIPS 2021). The split is a stable hash of the clip id, so it is the same on every machine.

* ``4speakers/train`` / ``4speakers/valid`` / ``4speakers/test-seen``: the 4-speaker seen setting
  of Vid2Speech / Lip2Wav (Prajwal et al., CVPR 2020) and VCA-GAN: speakers 1, 2, 4 and 29, each
  split about 90 / 5 / 5 by the same hash (papers differ on the exact per-speaker lists: publish
  ``lists/4speakers__test-seen.txt`` with results). ``4speakers/test-unseen`` holds the clips of
  s20 and s22 (LipNet's unseen speakers outside the four), so the recipes' split names work on
  ``<out>/4speakers/`` unchanged. These manifests hold absolute paths.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from l2s.corpora.layout import CorpusLayout, clip_utterance, stable_bucket
from l2s.data.manifest import Utterance
from l2s.errors import InputError

#: LipNet's unseen (held-out) speakers.
UNSEEN_SPEAKERS = ("s1", "s2", "s20", "s22")
#: The speakers of the 4-speaker seen setting (Vid2Speech, Lip2Wav).
FOUR_SPEAKERS = ("s1", "s2", "s4", "s29")
SPLITS = ("train", "valid", "test-seen", "test-unseen",
          "4speakers/train", "4speakers/valid", "4speakers/test-seen", "4speakers/test-unseen")
#: Percent of each seen speaker's clips in train and valid; the rest is test-seen.
TRAIN_PERCENT, VALID_PERCENT = 90, 5
SILENCE_TOKENS = frozenset({"sil", "sp"})
#: ``.align`` times are in 1/1000 of a frame at 25 fps (GRID's own frame rate, not ours).
ALIGN_UNITS_PER_SECOND = 25 * 1000
_ALIGN_DIRS = ("align/{spk}", "alignments/{spk}", "{spk}/align", "align/{spk}/align")
_AUDIO_DIRS = ("audio_25k/{spk}", "audio_50k/{spk}", "audio/{spk}")


def read_align(path: Path) -> List[Tuple[str, float, float]]:
    """Words of a GRID ``.align`` file as ``(word, start_s, end_s)``, silences dropped.

    Raises:
        InputError: a line is not ``start end word``.
    """
    words = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            start, end, word = int(parts[0]), int(parts[1]), parts[2]
        except (ValueError, IndexError):
            raise InputError(f"{path}:{n}: expected 'start end word', got {line.strip()!r}") from None
        if word.lower() not in SILENCE_TOKENS:
            words.append((word.lower(), start / ALIGN_UNITS_PER_SECOND, end / ALIGN_UNITS_PER_SECOND))
    return words


def speaker_folders(root: Path) -> List[Path]:
    """``ROOT/s<N>`` folders, in speaker order."""
    found = [p for p in root.iterdir() if p.is_dir() and p.name[:1] == "s" and p.name[1:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[1:]))


def _first_existing(root: Path, patterns: Tuple[str, ...], spk: str, name: str) -> Optional[Path]:
    for pattern in patterns:
        p = root / pattern.format(spk=spk) / name
        if p.is_file():
            return p
    return None


def _bucket_split(uid: str) -> str:
    b = stable_bucket(uid)
    return "train" if b < TRAIN_PERCENT else "valid" if b < TRAIN_PERCENT + VALID_PERCENT else "test"


def splits_of(speaker: str, uid: str) -> List[str]:
    """The splits a clip belongs to (see the module docstring)."""
    part = _bucket_split(uid)
    part = "test-seen" if part == "test" else part
    out = ["test-unseen" if speaker in UNSEEN_SPEAKERS else part]
    if speaker in FOUR_SPEAKERS:
        out.append(f"4speakers/{part}")
    elif speaker in UNSEEN_SPEAKERS:
        out.append("4speakers/test-unseen")
    return out


def read_grid(root: Path) -> CorpusLayout:
    """Read GRID from ``root`` (see the module docstring for the layout and splits).

    Raises:
        InputError: ``root`` is missing, or holds no ``s<N>`` folder with ``.mpg`` clips and alignments.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder" if not root.exists() else f"{root}: not a folder")
    speakers = speaker_folders(root)
    if not speakers:
        raise InputError(f"{root}: not the GRID layout (no s1..s34 speaker folders)")
    splits: Dict[str, List[Utterance]] = {s: [] for s in SPLITS}
    no_align = 0
    for folder in speakers:
        spk = folder.name
        for video in sorted(folder.rglob("*.mpg")):
            code = video.stem
            align = _first_existing(root, _ALIGN_DIRS, spk, f"{code}.align")
            if align is None:
                no_align += 1
                continue
            words = read_align(align)
            uid = f"{spk}/{code}"
            audio = _first_existing(root, _AUDIO_DIRS, spk, f"{code}.wav")
            utt = clip_utterance(uid, video, " ".join(w for w, _, _ in words), spk,
                                 audio_source=str(audio) if audio else None,
                                 words=[[w, round(s, 4), round(e, 4)] for w, s, e in words])
            for split in splits_of(spk, uid):
                splits[split].append(replace(utt, align=align))
    total = sum(len(v) for v in splits.values())
    if total == 0:
        raise InputError(f"{root}: not the GRID layout (no .mpg clip with an .align file under align/<speaker>/"
                         f"{'; ' + str(no_align) + ' clips lack one' if no_align else ''})")
    lists = {name.replace("/", "__"): [u.id for u in utts] for name, utts in splits.items()}
    return CorpusLayout(name="grid", root=root, splits=splits, lists=lists)
