"""Miniature copies of the real corpora's official layouts, built at test time from SynthGRID clips.

Each builder takes a few SynthGRID clips (``make_clips`` rows) and lays them out as the real
corpus does: its folder structure, file naming (GRID's ``bbaf2n.mpg`` codes, LRS's numeric ids,
LRW's ``WORD_00001``), text formats (GRID ``.align``, LRS ``Text:``/``Conf:``/word table, LRW
``Text:``/``Duration:``) and split lists. Videos carry their audio like the originals (AAC in
the mp4s; MPEG-1 video with MP2 audio in GRID's ``.mpg``). The LRS3 replica has no landmark
files, like the real corpora, so its preparation runs face detection on the drawn faces; the
others carry the SynthGRID landmark sidecar beside each video (``<clip>.landmarks.npz``, used
instead of detection) to keep the tests fast. Every replica has one broken clip: a truncated video with a
valid transcript, which preparation must reject with a reason.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np

from l2s.config import FPS, SAMPLE_RATE

Row = Dict[str, Any]
#: MP2 audio needs an MPEG-1 audio rate (32, 44.1 or 48 kHz).
MPG_AUDIO_RATE = 32000


def make_source_clips(out: Path, n: int = 6, seed: int = 0) -> List[Row]:
    """``n`` SynthGRID clips over 2 speakers (96x96 px), rows with absolute paths."""
    from l2s.corpora.synthgrid.generate import make_clips

    rows = make_clips(out, n=n, seed=seed, speakers=2, size=96)
    keys = ("video", "wav", "txt", "align", "landmarks")
    return [{**r, **{k: out / r[k] for k in keys}} for r in rows]


def _read_frames(video: Path) -> np.ndarray:
    from l2s.io.video import read_video

    return read_video(video, with_audio=False).frames


def _read_wav(row: Row) -> np.ndarray:
    from l2s.io.audio import read_audio

    return read_audio(row["wav"])


def mux_mp4(row: Row, dest: Path) -> None:
    """The clip's video with its speech as an AAC track (as LRS/LRW distribute them)."""
    from l2s.io.mux import mux_audio

    dest.parent.mkdir(parents=True, exist_ok=True)
    mux_audio(row["video"], _read_wav(row), dest)


def write_mpg(row: Row, dest: Path) -> None:
    """The clip re-encoded as GRID distributes it: MPEG-1 video and MP2 audio in an MPEG program stream."""
    import av

    from l2s.io.audio import resample

    frames = _read_frames(row["video"])
    wav = resample(_read_wav(row), SAMPLE_RATE, MPG_AUDIO_RATE)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(dest), "w", format="mpeg") as out:
        vs = out.add_stream("mpeg1video", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        vs.bit_rate = 1_000_000
        aus = out.add_stream("mp2", rate=MPG_AUDIO_RATE, layout="mono")
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        pcm = (np.clip(wav, -1, 1) * 32767).astype(np.int16)[None, :]
        aframe = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        aframe.sample_rate = MPG_AUDIO_RATE
        aframe.pts = 0
        out.mux(aus.encode(aframe))
        out.mux(aus.encode(None))


def copy_sidecar(row: Row, video: Path) -> None:
    shutil.copyfile(row["landmarks"], video.with_name(video.stem + ".landmarks.npz"))


def truncate_copy(src: Path, dest: Path, keep: float = 0.4) -> None:
    """A broken clip: the first ``keep`` of the file's bytes."""
    data = Path(src).read_bytes()
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data[: int(len(data) * keep)])


def words_of(row: Row) -> List[Dict[str, Any]]:
    return json.loads(Path(row["align"]).read_text())["words"]


def grid_align_text(row: Row) -> str:
    """GRID's ``.align`` lines (``start end word``, 1/1000 frame units at 25 fps), silences included."""
    info = json.loads(Path(row["align"]).read_text())
    unit = 25 * 1000
    lines, t = [], 0
    for w in info["words"]:
        s, e = int(round(w["start"] * unit)), int(round(w["end"] * unit))
        if s > t:
            lines.append(f"{t} {s} sil")
        lines.append(f"{max(s, t)} {e} {w['word']}")
        t = e
    end = int(round(info["duration"] * unit))
    if end > t:
        lines.append(f"{t} {end} sil")
    return "\n".join(lines) + "\n"


def lrs_text(row: Row) -> str:
    """An LRS transcript: ``Text:``, ``Conf:``, a blank line and the word timing table (upper case)."""
    table = "".join(f"{w['word'].upper()} {w['start']:.2f} {w['end']:.2f} 2.5\n" for w in words_of(row))
    return f"Text:  {row['text'].upper()}\nConf:  3\n\nWORD START END ASDSCORE\n{table}"


def build_grid(rows: Sequence[Row], root: Path) -> Dict[str, Any]:
    """GRID replica: the first speaker becomes ``s1`` (an unseen speaker), the second ``s3`` (seen).

    Returns:
        ``{"ids": {split-independent ids}, "broken": id, "unseen": [...], "audio_25k": id}``.
    """
    names = {}
    for r in rows:
        names.setdefault(r["speaker"], "s1" if not names else "s3")
    ids = []
    for k, r in enumerate(rows):
        spk, code = names[r["speaker"]], r["id"].split("_")[-1]
        video = root / spk / f"{code}.mpg"
        write_mpg(r, video)
        copy_sidecar(r, video)
        align = root / "align" / spk / f"{code}.align"
        align.parent.mkdir(parents=True, exist_ok=True)
        align.write_text(grid_align_text(r))
        ids.append(f"{spk}/{code}")
    # one clip with GRID's separate studio audio (25 kHz wav) instead of the .mpg's track
    from l2s.io.audio import resample, write_wav

    spk, code = ids[-1].split("/")
    write_wav(root / "audio_25k" / spk / f"{code}.wav", resample(_read_wav(rows[-1]), SAMPLE_RATE, 25000), 25000)
    # the broken clip: truncated .mpg with a valid alignment
    broken = root / "s3" / "zzzz9z.mpg"
    truncate_copy(root / f"{ids[-1]}.mpg", broken)
    (root / "align" / "s3" / "zzzz9z.align").write_text(grid_align_text(rows[-1]))
    return {"ids": ids, "broken": "s3/zzzz9z", "unseen": [i for i in ids if i.startswith("s1/")],
            "audio_25k": ids[-1]}


def _lrs_clip(row: Row, video: Path, sidecar: bool = True) -> None:
    mux_mp4(row, video)
    if sidecar:
        copy_sidecar(row, video)
    video.with_suffix(".txt").write_text(lrs_text(row))


def _lrs_broken(row: Row, video: Path, good: Path) -> None:
    truncate_copy(good, video)
    video.with_suffix(".txt").write_text(lrs_text(row))


#: 19-digit LRS2 video ids per list (any digits; distinct per split).
LRS2_VIDEO_IDS = {"train": 6330311066473698535, "val": 6330311066473698600, "test": 6330311066473698700,
                  "pretrain": 5535415699068794046}


def build_lrs2(rows: Sequence[Row], root: Path) -> Dict[str, Any]:
    """LRS2 replica: ``mvlrs_v1/{main,pretrain}/<19-digit id>/<nnnnn>.{mp4,txt}`` and the four lists beside it."""
    base = root / "mvlrs_v1"
    plan = {"train": rows[0:2], "val": rows[2:3], "test": rows[3:5], "pretrain": rows[5:6]}
    lists: Dict[str, List[str]] = {k: [] for k in plan}
    for split, chosen in plan.items():
        subset = "pretrain" if split == "pretrain" else "main"
        for k, r in enumerate(chosen):
            key = f"{LRS2_VIDEO_IDS[split] + k}/{k + 1:05d}"
            _lrs_clip(r, base / subset / f"{key}.mp4")
            lists[split].append(key + (" NF" if split == "test" and k == 0 else ""))
    broken_key = "6330311066473690000/00009"
    _lrs_broken(rows[0], base / "main" / f"{broken_key}.mp4", base / "main" / f"{lists['train'][0]}.mp4")
    lists["train"].append(broken_key)
    for split, lines in lists.items():
        (root / f"{split}.txt").write_text("".join(line + "\n" for line in lines))
    return {"lists": lists, "broken": f"main/{broken_key}"}


def build_lrs3(rows: Sequence[Row], root: Path) -> Dict[str, Any]:
    """LRS3 replica: ``{pretrain,trainval,test}/<11-char speaker id>/<nnnnn>.{mp4,txt}``.

    No landmark sidecars here, as in the real corpus: preparation runs face detection.
    """
    plan = {"pretrain": rows[0:2], "trainval": rows[2:4], "test": rows[4:6]}
    ids = []
    for subset, chosen in plan.items():
        for k, r in enumerate(chosen):
            spk = f"{r['speaker'].upper()}aBcDeFgH"[:11]
            num = (50001 if subset == "trainval" else 1) + k
            video = root / subset / spk / f"{num:05d}.mp4"
            _lrs_clip(r, video, sidecar=False)
            ids.append(f"{subset}/{spk}/{num:05d}")
    broken = root / "test" / "zzBROKENzzz" / "00001.mp4"
    _lrs_broken(rows[0], broken, root / f"{ids[0]}.mp4")
    return {"ids": ids, "broken": "test/zzBROKENzzz/00001"}


def build_lrw(rows: Sequence[Row], root: Path) -> Dict[str, Any]:
    """LRW replica: ``<WORD>/{train,val,test}/<WORD>_<nnnnn>.{mp4,txt}``, the word being the clip's first word."""
    folders = ("train", "train", "train", "val", "test", "test")
    ids = []
    counts: Dict[str, int] = {}
    for r, folder in zip(rows, folders):
        word = words_of(r)[0]["word"].upper()
        counts[word + folder] = counts.get(word + folder, 0) + 1
        stem = f"{word}_{counts[word + folder]:05d}"
        video = root / word / folder / f"{stem}.mp4"
        mux_mp4(r, video)
        copy_sidecar(r, video)
        dur = words_of(r)[0]["end"] - words_of(r)[0]["start"]
        video.with_suffix(".txt").write_text(f"Text: {word}\nConf: 1\n\nDuration: {dur:.2f} seconds\n")
        ids.append(f"{'valid' if folder == 'val' else folder}/{stem}")
    word = words_of(rows[0])[0]["word"].upper()
    broken = root / word / "test" / f"{word}_00999.mp4"
    truncate_copy(root / word / "train" / f"{word}_00001.mp4", broken)
    broken.with_suffix(".txt").write_text(f"Text: {word}\nConf: 1\n\nDuration: 0.30 seconds\n")
    return {"ids": ids, "broken": f"test/{word}_00999"}
