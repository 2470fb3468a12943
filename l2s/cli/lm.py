"""``l2s lm``: token n-gram language models for the lip reader's beam search."""

from __future__ import annotations

from typing import Iterator, List, Tuple

import click

from l2s.cli._common import existing_file, vsr_model_dir
from l2s.errors import InputError
from l2s.defaults import DEFAULT_PIPELINE

_MANIFEST_SUFFIXES = (".jsonl", ".csv")


def _sentences(paths: Tuple[str, ...]) -> Iterator[str]:
    """Transcripts of manifests (``text`` of each utterance) and of text files (one sentence a line)."""
    from l2s.data.manifest import read_manifest

    for name in paths:
        path = existing_file(name, "text or manifest")
        if path.suffix in _MANIFEST_SUFFIXES:
            yield from (u.text for u in read_manifest(path) if u.text)
        else:
            yield from (line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def _reader(model: str):
    """The lip reader of ``model`` (loaded on CPU), which must carry its tokenizer."""
    from l2s.models.vsr import load_vsr

    vsr = load_vsr(vsr_model_dir(model))
    if vsr.tokenizer is None:
        raise InputError(f"{model}: the lip reader has no tokenizer files, so text cannot be tokenised")
    return vsr


@click.group()
def lm() -> None:
    """Token n-gram language models (shallow fusion in `l2s transcribe` and the VSR recipes)."""


@lm.command()
@click.argument("texts", nargs=-1, required=True)
@click.option("-o", "--out", required=True,
              help="Output file (lm.json; in a VSR model directory it becomes that model's default).")
@click.option("-m", "--model", default=DEFAULT_PIPELINE, show_default=True,
              help="The lip reader whose tokens the model counts (VSR or pipeline directory, bundled name, hub id).")
@click.option("--order", default=6, show_default=True, type=click.IntRange(1, 32), help="n of the n-grams.")
@click.option("--discount", default=0.75, show_default=True,
              type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), help="Kneser-Ney absolute discount.")
@click.option("--weight", default=0.5, show_default=True, type=click.FloatRange(0.0),
              help="Shallow-fusion weight stored as the model's recommendation (tune it on a validation split).")
@click.option("--valid", "valid", multiple=True, help="Manifest or text file whose per-token perplexity to print.")
def estimate(texts: Tuple[str, ...], out: str, model: str, order: int, discount: float, weight: float,
             valid: Tuple[str, ...]) -> None:
    """Count a Kneser-Ney n-gram model over the lip reader's tokens from TEXTS (manifests or text files)."""
    from l2s.models.vsr.ngram_lm import NgramLM, NgramOptions, save_lm

    tok = _reader(model).tokenizer
    sentences = list(_sentences(texts))
    if not sentences:
        raise InputError("no sentences in " + ", ".join(texts))
    model_lm = NgramLM.from_texts(sentences, tok, NgramOptions(order=order, discount=discount, weight=weight))
    save_lm(model_lm, out)
    click.echo(f"{out}: order {order}, {len(model_lm.counts)} distinct {order}-grams from {len(sentences)} sentences")
    if valid:
        ppl = model_lm.perplexity(tok.encode(s) for s in _sentences(valid))
        click.echo(f"perplexity per token on {', '.join(valid)}: {ppl:.3f}")


def _floats(text: str) -> List[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"expected comma-separated numbers, got {text!r}") from None


@lm.command()
@click.argument("manifest")
@click.option("--train", "train_texts", multiple=True, required=True,
              help="Manifest or text file the n-gram models are counted on (repeatable).")
@click.option("-m", "--model", default=DEFAULT_PIPELINE, show_default=True, help="The lip reader to decode with.")
@click.option("--orders", default="4,6,8", show_default=True, help="n-gram orders to try.")
@click.option("--weights", default="0,0.3,0.5,0.8", show_default=True,
              help="Shallow-fusion weights to try (0: the beam search without a language model).")
@click.option("--beam", default=10, show_default=True, type=click.IntRange(1, 200), help="Beam width.")
@click.option("--out", default=None, help="Write every result as JSON here.")
@click.option("--save", default=None,
              help="Write the best model (lowest WER; ties: lower CER) here, e.g. VSR_DIR/lm.json.")
def tune(manifest: str, train_texts: Tuple[str, ...], model: str, orders: str, weights: str, beam: int,
         out: str, save: str) -> None:
    """Choose the order and weight on MANIFEST (a validation split with ROIs): WER/CER of each pair."""
    import json

    import torch

    from l2s.cli._common import progress
    from l2s.data.dataset import load_roi
    from l2s.data.manifest import read_manifest
    from l2s.io.atomic import atomic_write_text
    from l2s.metrics.wer import corpus_counts
    from l2s.models.vsr.ngram_lm import NgramLM, NgramOptions, save_lm

    # the grid first: a typo in it is refused before the lip reader is loaded and every clip encoded
    order_list, weight_list = _floats(orders), _floats(weights)
    if any(o < 1 or o != int(o) for o in order_list) or any(w < 0 for w in weight_list) or not weight_list:
        raise InputError(f"orders must be integers >= 1 and weights numbers >= 0, got {orders!r} and {weights!r}")
    grid = [(0, 0.0)] if 0.0 in weight_list else []
    grid += [(int(o), w) for o in order_list for w in weight_list if w > 0]
    if not grid:
        raise InputError("nothing to try: give --orders for the weights above 0")
    vsr = _reader(model)
    utts = [u for u in read_manifest(existing_file(manifest, "manifest")) if u.text]
    if not utts:
        raise InputError(f"{manifest}: no utterance with a transcript")
    train = list(_sentences(train_texts))
    if not train:
        raise InputError("no sentences in " + ", ".join(train_texts))
    with torch.no_grad():
        feats = [vsr.encode(torch.from_numpy(load_roi(u.roi)).unsqueeze(0))[0]
                 for u in progress(utts, "encoding", unit="clip")]
    results, models = [], {}
    for order, weight in progress(grid, "decoding", unit="setting"):
        if order:
            models[order] = models.get(order) or NgramLM.from_texts(train, vsr.tokenizer, NgramOptions(order=order))
        vsr.lm = models[order].with_weight(weight) if order else None
        hyps = [vsr.decode_features(f, vsr.beam_options(beam)).text for f in feats]
        score = corpus_counts([u.text for u in utts], hyps, normalize=False)
        results.append({"order": order, "weight": weight, "wer": 100 * score.wer, "cer": 100 * score.cer})
        click.echo(f"order {order or '-'} weight {weight:g}: WER {100 * score.wer:.2f} % CER {100 * score.cer:.2f} %")
    best = min(results, key=lambda r: (r["wer"], r["cer"]))
    click.echo(f"best: order {best['order'] or '-'} weight {best['weight']:g} (WER {best['wer']:.2f} % on "
               f"{len(utts)} clips)")
    if out:
        atomic_write_text(out, json.dumps({"manifest": str(manifest), "beam": beam, "results": results,
                                           "best": best}, indent=1))
    if save:
        if not best["order"]:
            raise InputError("the best setting uses no language model: nothing to save")
        save_lm(models[best["order"]].with_weight(best["weight"]), save)
        click.echo(f"wrote {save}")


__all__ = ["lm"]
