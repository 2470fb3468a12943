"""``l2s score-reader MANIFEST``: the lip reader's WER and CER on a split, with bootstrap intervals."""

from __future__ import annotations

import time
from typing import Tuple

import click

from l2s.cli._common import existing_file, vsr_model_dir
from l2s.defaults import DEFAULT_PIPELINE
from l2s.errors import InputError


@click.command("score-reader")
@click.argument("manifest")
@click.option("-m", "--model", default=DEFAULT_PIPELINE, show_default=True,
              help="VSR model directory, bundled name or hub repo id (a pipeline directory works too).")
@click.option("--decoder", "decoders", multiple=True, default=("joint",), show_default=True,
              type=click.Choice(("greedy", "joint", "lexicon", "rescore")),
              help="Decoder(s) to score (repeat the option to score several on one encoding): greedy CTC, the "
                   "joint CTC/attention beam search, the phoneme head read through the lexicon, or the joint "
                   "n-best re-ranked by the phoneme head.")
@click.option("--beam", default=10, show_default=True, type=click.IntRange(1, 200), help="Beam width.")
@click.option("--lm", "lm_path", default=None,
              help="Token n-gram language model (lm.json, from `l2s lm estimate`) for the joint search; default: "
                   "the one in the model directory, if any.")
@click.option("--lm-weight", default=None, type=click.FloatRange(0.0),
              help="Token LM weight of the joint search (default: the LM's recommended one; 0: off).")
@click.option("--word-lm-weight", default=0.5, show_default=True, type=click.FloatRange(0.0),
              help="Word LM weight of the lexicon and rescore decoders.")
@click.option("--word-bonus", default=0.0, show_default=True, type=float, help="Score per word (lexicon decoder).")
@click.option("--phoneme-weight", default=0.3, show_default=True, type=click.FloatRange(0.0),
              help="Weight of the phoneme likelihood (rescore decoder).")
@click.option("--lexicon-texts", multiple=True,
              help="Manifests or text files whose words make the lexicon and word LM (default: the model's own).")
@click.option("--every", default=1, show_default=True, type=click.IntRange(1), help="Score every N-th clip.")
@click.option("-o", "--out", default=None, help="Write the scores and every hypothesis as JSON here.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
def score_reader(manifest: str, model: str, decoders: Tuple[str, ...], beam: int, lm_path: str, lm_weight: float,
                 word_lm_weight: float, word_bonus: float, phoneme_weight: float, lexicon_texts: Tuple[str, ...],
                 every: int, out: str, overwrite: bool) -> None:
    """Read every clip of MANIFEST (ROIs and transcripts) and print each decoder's corpus WER and CER (words as
    they are, as the VSR recipes score them) with 95 % bootstrap intervals over clips."""
    import json
    from pathlib import Path

    import torch

    from l2s.cli._common import progress
    from l2s.cli.lm import _sentences
    from l2s.data.dataset import load_roi
    from l2s.data.manifest import read_manifest
    from l2s.evaluation.bootstrap import error_rate
    from l2s.io.atomic import atomic_write_text
    from l2s.metrics.wer import error_counts
    from l2s.models.vsr import load_vsr
    from l2s.models.vsr.lexicon import Lexicon, WordLM
    from l2s.models.vsr.reading import ReadOptions, lexicon_of, read
    from l2s.text.phonemes import G2P

    if out and Path(out).exists() and not overwrite:
        raise InputError(f"{out} exists: give --overwrite to replace it")
    options = {d: ReadOptions(decoder=d, beam_size=beam, lm_weight=lm_weight, word_lm_weight=word_lm_weight,
                              word_bonus=word_bonus, phoneme_weight=phoneme_weight) for d in dict.fromkeys(decoders)}
    vsr = load_vsr(vsr_model_dir(model))
    if vsr.tokenizer is None:
        raise InputError(f"{model}: the lip reader has no tokenizer files")
    if lm_path:
        from l2s.models.vsr.model import check_lm
        from l2s.models.vsr.ngram_lm import load_lm

        vsr.lm = check_lm(load_lm(existing_file(lm_path, "language model")), vsr, lm_path)
    utts = [u for u in read_manifest(existing_file(manifest, "manifest")) if u.text][::every]
    if not utts:
        raise InputError(f"{manifest}: no utterance with a transcript")
    lexicon = word_lm = g2p = None
    if any(d in ("lexicon", "rescore") for d in options):
        g2p = G2P()
        if lexicon_texts and vsr.phoneme_ctc is not None:
            texts = list(_sentences(lexicon_texts))
            lexicon, word_lm = Lexicon.from_texts(texts, g2p, vsr.inventory), WordLM.from_texts(texts)
        lexicon, word_lm = lexicon_of(vsr, lexicon, word_lm)  # refused here, before every clip is encoded
    with torch.no_grad():
        feats = [vsr.encode(torch.from_numpy(load_roi(u.roi)).unsqueeze(0))[0]
                 for u in progress(utts, "encoding", unit="clip")]
    results = {}
    for name, opts in options.items():
        start = time.perf_counter()
        hyps = [read(vsr, f, opts, lexicon, word_lm, g2p=g2p) for f in progress(feats, name, unit="clip")]
        seconds = time.perf_counter() - start
        counts = [error_counts(u.text, h, normalize=False) for u, h in zip(utts, hyps)]
        (wer, wer_ci), (cer, cer_ci) = (_percent(*error_rate(counts, unit)) for unit in ("wer", "cer"))
        results[name] = {"wer": wer, "wer_ci95": wer_ci, "cer": cer, "cer_ci95": cer_ci,
                         "seconds_per_clip": seconds / len(utts), "options": vars(opts),
                         "hypotheses": {u.id: h for u, h in zip(utts, hyps)}}
        click.echo(f"{name}: WER {wer:.2f} % [{wer_ci[0]:.2f}, {wer_ci[1]:.2f}]  CER {cer:.2f} % "
                   f"[{cer_ci[0]:.2f}, {cer_ci[1]:.2f}]  ({len(utts)} clips, {seconds / len(utts):.3f} s/clip)")
    if out:
        atomic_write_text(out, json.dumps({"manifest": str(manifest), "model": str(model), "lm": lm_path,
                                           "clips": len(utts), "beam": beam, "decoders": results}, indent=1))


def _percent(rate: float, interval) -> tuple:
    """A rate and its interval in percent (the interval NaN when there is none: a single clip)."""
    return 100 * rate, [100 * x for x in interval or (float("nan"),) * 2]


__all__ = ["score_reader"]
