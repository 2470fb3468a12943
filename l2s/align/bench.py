"""Benchmark of the timeline against true timings; writes JSON.

::

    python -m l2s.align.bench DATA/test-unseen.jsonl --model synthgrid-small --out bench.json \\
        [--beam 10] [--limit N] [--speed-video CLIP.mp4 | --make-speed-video OUT.mp4]

On every clip of a prepared manifest (``roi`` and ``align`` per clip) it aligns the transcript and the
lip-read text and compares the word boundaries with ``align.json`` (the lip-read text on the words it got
right); the phoneme boundaries are compared for the duration model, the mean durations and equal shares
(on the words whose G2P units are the reference's). Each figure has a 95 % bootstrap interval over clips.
The speed check times, on one thread, ``l2s transcribe``'s work on a video (face tracking and mouth
crops, the lip reader, the beam search) against the alignment and G2P added on top.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from l2s.errors import L2SError

SPEED_SECONDS = 20.0


def make_speed_video(videos: Sequence[Path], out: Path, seconds: float = SPEED_SECONDS) -> Path:
    """Join corpus clips end to end into one video of at least ``seconds``."""
    from l2s.config import FPS
    from l2s.io.mux import write_video
    from l2s.io.video import read_video

    frames: List[np.ndarray] = []
    for video in videos:
        frames.extend(read_video(video, with_audio=False).frames)
        if len(frames) >= seconds * FPS:
            break
    write_video(out, np.stack(frames[:int(seconds * FPS)]), crf=18)
    return out


def time_speed(aligner, video: Path, beam: int, repeats: int = 3) -> Dict[str, Any]:
    """Median seconds of each step of transcribing ``video``, and of aligning its text, over ``repeats``."""
    from l2s.vision.roi import extract_roi

    vsr = aligner.vsr
    steps: Dict[str, List[float]] = {"roi": [], "encode": [], "decode": [], "align": []}
    text = ""
    for _ in range(repeats):
        t0 = time.perf_counter()
        roi = torch.from_numpy(extract_roi(video).roi)
        t1 = time.perf_counter()
        with torch.no_grad():
            features = vsr.encode(roi.unsqueeze(0))[0]
        t2 = time.perf_counter()
        text = vsr.decode_features(features, vsr.beam_options(beam)).text
        t3 = time.perf_counter()
        aligner.align(features, text, allow_empty=True)
        t4 = time.perf_counter()
        for key, value in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            steps[key].append(value)
    med = {k: float(np.median(v)) for k, v in steps.items()}
    transcribe = med["roi"] + med["encode"] + med["decode"]
    return {"video": str(video), "frames": int(roi.shape[0]), "seconds": {k: round(v, 4) for k, v in med.items()},
            "transcribe_s": round(transcribe, 4), "align_share": round(med["align"] / transcribe, 4),
            "text_words": len(text.split()), "repeats": repeats, "threads": torch.get_num_threads()}


def run(manifest: Path, model: str, aligner_dir: Optional[str], beam: int, limit: Optional[int],
        bootstrap: int) -> Dict[str, Any]:
    from l2s.align import Aligner
    from l2s.align.reference import (matched_word_errors, phoneme_errors, read_reference, summarise,
                                     word_errors)
    from l2s.cli._common import progress
    from l2s.data.dataset import load_roi
    from l2s.data.manifest import read_manifest
    from l2s.metrics.wer import corpus_counts

    aligner = Aligner.from_pretrained(model, aligner_dir)
    ctc = Aligner(aligner.vsr, aligner.model, use_timing=False)
    vsr = aligner.vsr
    utts = read_manifest(manifest)[:limit]
    rows: Dict[str, List[np.ndarray]] = {k: [] for k in ("gt", "gt_ctc", "lipread", "model", "mean", "equal")}
    compared = total = matched = ref_words = 0
    hyps, refs = [], []
    align_seconds = 0.0
    for utt in progress(utts, desc="clips", total=len(utts), unit="clip"):
        ref = read_reference(utt.align)
        with torch.no_grad():
            features = vsr.encode(torch.as_tensor(load_roi(utt.roi)).unsqueeze(0))[0]
        start = time.perf_counter()
        lp = aligner.log_probs(features)
        gt = aligner.align(features, ref.text, log_probs=lp)
        align_seconds += time.perf_counter() - start
        rows["gt"].append(word_errors(gt, ref))
        rows["gt_ctc"].append(word_errors(ctc.align(features, ref.text), ref))
        for shares in ("model", "mean", "equal"):
            alignment = gt if shares == "model" else aligner.align(features, ref.text, log_probs=lp, shares=shares)
            errs, n_cmp, n_all = phoneme_errors(alignment, ref)
            rows[shares].append(errs)
        compared, total = compared + n_cmp, total + n_all
        hyp = vsr.decode_features(features, vsr.beam_options(beam)).text
        hyps.append(hyp)
        refs.append(ref.text)
        errs, n_ref = matched_word_errors(aligner.align(features, hyp, log_probs=lp, allow_empty=True), ref)
        rows["lipread"].append(errs)
        matched, ref_words = matched + len(errs), ref_words + n_ref
    counts = corpus_counts(refs, hyps)
    return {
        "manifest": str(manifest), "clips": len(utts), "model": model, "aligner": aligner_dir,
        "timing_head": aligner.timing is not None, "beam": beam, "bootstrap": bootstrap,
        "words_transcript": summarise(rows["gt"], bootstrap),
        "words_transcript_vsr_ctc_head": summarise(rows["gt_ctc"], bootstrap),
        "words_lipread": {**summarise(rows["lipread"], bootstrap), "matched_words": matched,
                          "reference_words": ref_words, "lipread_wer": round(counts.wer, 4)},
        "phonemes_duration_model": summarise(rows["model"], bootstrap),
        "phonemes_mean_durations": summarise(rows["mean"], bootstrap),
        "phonemes_equal_shares": summarise(rows["equal"], bootstrap),
        "phoneme_words_compared": {"compared": compared, "words": total},
        "transcript_align_ms_per_clip": round(1000 * align_seconds / max(1, len(utts)), 2),
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m l2s.align.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", type=Path, help="prepared manifest (roi and align per clip)")
    parser.add_argument("--model", default="synthgrid-small", help="pipeline or VSR directory")
    parser.add_argument("--aligner", default=None, help="aligner directory (default: the pipeline's)")
    parser.add_argument("--out", type=Path, required=True, help="JSON report")
    parser.add_argument("--beam", type=int, default=10, help="beam of the lip-read text (0: greedy)")
    parser.add_argument("--limit", type=int, default=None, help="first N clips only")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap draws (0: none)")
    parser.add_argument("--speed-video", type=Path, default=None, help="time transcribe vs align on this video")
    parser.add_argument("--make-speed-video", type=Path, default=None,
                        help=f"join the manifest's videos into a {SPEED_SECONDS:.0f} s clip here and time it")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    try:
        from l2s.align import Aligner
        from l2s.data.manifest import read_manifest
        from l2s.io.atomic import atomic_write_text

        report = run(args.manifest, args.model, args.aligner, args.beam, args.limit, args.bootstrap)
        video = args.speed_video
        if args.make_speed_video is not None:
            video = make_speed_video([u.video for u in read_manifest(args.manifest)], args.make_speed_video)
        if video is not None:
            report["speed"] = time_speed(Aligner.from_pretrained(args.model, args.aligner), video, args.beam)
        atomic_write_text(args.out, json.dumps(report, indent=1) + "\n")
    except L2SError as exc:
        print(f"l2s.align.bench: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: report[k] for k in ("words_transcript", "words_lipread", "phonemes_duration_model",
                                             "phonemes_mean_durations")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
