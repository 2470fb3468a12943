"""The ablation rows of recipes/synthgrid/README.md ("Intelligible voice"), voiced clip by clip.

    python recipes/synthgrid/ablation.py PREPARED_SPLIT.jsonl OUT --model PIPELINE [--previous PIPELINE]
        [--rows prior,mean,refined,guided,truth,oracle,previous,given] [--texts JSON] [--every N] [--w-asr W]
        [--steps N] [--w-video W]

Each clip's mouth crops (the prepared corpus's ``roi``) are read by the pipeline's lip reader once; its
stages then give every row from the same features, prior and seed:

* ``prior``: the DDSP prior's mel alone, vocoded;
* ``mean``: the content decoder's mean (the generator with 0 steps);
* ``refined``: mean + refiner, the pipeline's settings (the default);
* ``guided``: the same with the guide toward the lip-read text (``--w-asr``);
* ``truth``: the default with the true transcript placed on the frames instead of the lip-read text;
* ``oracle``: the default with the true transcript on the corpus's own word and phoneme timings (``align.json``)
  instead of the aligner's (a diagnosis: what the aligner's timing costs);
* ``previous``: another pipeline (the previous bundle) on the same crops, its own settings;
* ``given``: the default with another reading of each clip (``--texts``: a JSON of ``{id: text}``, or the output
  of ``l2s score-reader -o``, its first decoder's hypotheses) placed on the frames: what a better lip reader's
  text would give this voice.

Writes ``OUT/<row>/<id>.wav``, ``OUT/ref.jsonl`` (the references for ``l2s evaluate``), and ``OUT/rows.json``:
per row the seconds of audio, the stage seconds (RTF without the face stage) and the generator's network
evaluations per second of audio; and the lip reader's own WER with its bootstrap interval. Score each row
with ``l2s evaluate --ref OUT/ref.jsonl --hyp OUT/<row>``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Dict

import numpy as np
import torch
from tqdm import tqdm

from l2s.align.reference import read_reference
from l2s.align.timeline import Alignment, PhonemeSpan, WordSpan
from l2s.config import FPS, SAMPLE_RATE
from l2s.data.manifest import read_manifest
from l2s.evaluation.bootstrap import error_rate
from l2s.io.audio import write_wav
from l2s.metrics.wer import error_counts
from l2s.pipeline import Lip2Speech
from l2s.text.tokenizer import CharTokenizer

ROWS = ("prior", "mean", "refined", "guided", "truth", "oracle", "previous", "given")


def true_alignment(utt, num_frames: int) -> Alignment:
    """The clip's true words and phonemes (its ``align.json``) as an :class:`Alignment`."""
    ref = read_reference(utt.align)
    words = tuple(WordSpan(w, s, e, 1.0) for w, s, e in ref.words)
    phonemes = tuple(PhonemeSpan(p, s, e, 1.0, k) for k, units in enumerate(ref.phonemes) for p, s, e in units)
    return Alignment(text=ref.text, words=words, phonemes=phonemes, duration=num_frames / FPS, frame_rate=float(FPS),
                     language="en-us")


def given_texts(path: Path) -> Dict[str, str]:
    """``{id: text}`` from a JSON map or from ``l2s score-reader -o`` (its first decoder's hypotheses)."""
    data = json.loads(path.read_text())
    if "decoders" in data:
        data = next(iter(data["decoders"].values()))["hypotheses"]
    return {str(k): str(v) for k, v in data.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("manifest", type=Path, help="a prepared split's manifest (roi, wav, text)")
    ap.add_argument("out", type=Path)
    ap.add_argument("--model", default="synthgrid-small", help="the pipeline under test")
    ap.add_argument("--previous", default=None, help="the pipeline of the 'previous' row")
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--every", type=int, default=1, help="every N-th clip (1: all)")
    ap.add_argument("--w-asr", type=float, default=1.5, help="the guide's weight in the 'guided' row")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=None, help="the generator's steps in every row but 'mean' "
                    "(default: the pipeline's)")
    ap.add_argument("--w-video", type=float, default=None, help="classifier-free guidance weight (default: the "
                    "pipeline's)")
    ap.add_argument("--texts", type=Path, default=None, help="the 'given' row's readings: a JSON {id: text} or "
                    "an l2s score-reader output")
    ap.add_argument("--overwrite", action="store_true", help="replace the rows' earlier outputs in OUT")
    args = ap.parse_args()
    rows = [r for r in args.rows.split(",") if r]
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        ap.error(f"unknown rows {unknown}; expected some of {ROWS}")
    taken = [r for r in rows if (args.out / r).is_dir() and any((args.out / r).iterdir())]
    if taken and not args.overwrite:
        ap.error(f"{args.out} already holds the rows {taken}; give --overwrite to replace them")
    if ("given" in rows) != (args.texts is not None):
        ap.error("the 'given' row and --texts go together")
    torch.set_num_threads(1)
    utts = read_manifest(args.manifest)[:: args.every]
    texts = given_texts(args.texts) if args.texts is not None else {}
    unread = [u.id for u in utts if "given" in rows and u.id not in texts]
    if unread:
        ap.error(f"{args.texts} has no reading of {len(unread)} clips (first: {unread[0]})")
    pipe = Lip2Speech.from_pretrained(args.model, device="cpu")
    previous = Lip2Speech.from_pretrained(args.previous, device="cpu") if "previous" in rows else None
    for r in rows:
        (args.out / r).mkdir(parents=True, exist_ok=True)
    stats: Dict[str, Dict[str, float]] = {r: {"audio_s": 0.0, "seconds": 0.0, "generator_evals": 0.0,
                                              "guide_char_errors": 0.0, "guide_chars": 0.0} for r in rows}
    # the guide's CER on each row (a char CTC guide of ours; None for another): beside the scorer's WER, a gap
    # that widens under guidance means the guide is being fooled
    reader = pipe.guide.model if pipe.guide is not None and hasattr(pipe.guide.model, "greedy") else None
    read_counts = []
    refs = []
    default = pipe.generator_settings(steps=args.steps)
    plain = pipe.guidance(w_video=args.w_video)
    for u in tqdm(utts, unit="clip"):
        roi = np.load(u.roi)
        t0 = time.perf_counter()
        lips = pipe.read_lips(roi)
        prior = pipe.prior(lips.features, seed=args.seed)
        shared = time.perf_counter() - t0
        read_counts.append(error_counts(u.text, lips.text))
        refs.append({"id": u.id, "wav": str(u.wav), "text": u.text})
        audio_s = roi.shape[0] / 25.0

        def voice(row: str, text: str, alignment=None, **options) -> None:
            t1 = time.perf_counter()
            alignment = alignment if alignment is not None else pipe.align(lips.features, text)
            options.setdefault("guidance", plain)
            sample = pipe.sample_mel(roi, lips.features, prior.mel_norm, text, seed=args.seed,
                                     prior_f0=prior.f0, prior_voiced=prior.voiced, alignment=alignment, **options)
            wav = pipe.vocode(sample.mel)
            keep(row, wav, time.perf_counter() - t1, sample.generator_evals)
            guide_errors(row, sample.mel, text)

        def guide_errors(row: str, mel: torch.Tensor, text: str) -> None:
            """The guide's own reading of the output (greedy CTC at step 0) against the text it was given."""
            if reader is None:
                return
            with torch.no_grad():
                read = CharTokenizer().decode(reader.greedy(mel, torch.zeros(1, 1))[0])
            c = error_counts(text, read)
            stats[row]["guide_char_errors"] += c.char_errors
            stats[row]["guide_chars"] += c.ref_chars

        def keep(row: str, wav: np.ndarray, seconds: float, evals: int) -> None:
            write_wav(args.out / row / f"{u.id}.wav", wav, SAMPLE_RATE)
            s = stats[row]
            s["audio_s"] += audio_s
            s["seconds"] += seconds + (shared if row != "previous" else 0.0)
            s["generator_evals"] += evals

        if "prior" in rows:
            t1 = time.perf_counter()
            keep("prior", pipe.vocode(prior.mel_norm), time.perf_counter() - t1, 0)
            guide_errors("prior", prior.mel_norm, lips.text)
        if "mean" in rows:
            voice("mean", lips.text, settings=pipe.generator_settings(steps=0))
        if "refined" in rows:
            voice("refined", lips.text, settings=default)
        if "guided" in rows:
            voice("guided", lips.text, settings=default, guidance=pipe.guidance(w_video=args.w_video, w_asr=args.w_asr))
        if "truth" in rows:
            voice("truth", u.text, settings=default)
        if "given" in rows:
            voice("given", texts[u.id], settings=default)
        if "oracle" in rows:
            voice("oracle", u.text, alignment=true_alignment(u, roi.shape[0]), settings=default)
        if previous is not None:
            t1 = time.perf_counter()
            result = previous(roi, seed=args.seed)
            keep("previous", result.wav, time.perf_counter() - t1, result.network_evals)
    out = {"manifest": str(args.manifest), "clips": len(utts), "model": str(args.model),
           "texts": str(args.texts) if args.texts is not None else None,
           "previous": args.previous, "w_asr": args.w_asr, "seed": args.seed, "settings": str(default),
           "guidance": str(plain),
           "lip_reader": {**dict(zip(("wer", "wer_ci95"), error_rate(read_counts, "wer"))),
                          "decoding": "greedy" if not pipe.spec.vsr_beam_size else f"beam {pipe.spec.vsr_beam_size}"},
           "rows": {r: {"rtf_without_face": s["seconds"] / max(s["audio_s"], 1e-9),
                        "generator_evals_per_audio_s": s["generator_evals"] / max(s["audio_s"], 1e-9),
                        "audio_s": s["audio_s"],
                        "guide_cer": s["guide_char_errors"] / s["guide_chars"] if s["guide_chars"] else None}
                    for r, s in stats.items()}}
    with open(args.out / "ref.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in refs)
    (args.out / "rows.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out["lip_reader"]), json.dumps(out["rows"]))


if __name__ == "__main__":
    main()
