"""Training stage ``aligner``: the timing head and the duration model of a frozen lip reader.

Both learn from a corpus with true word and phoneme timings (SynthGRID's ``align.json``, named by the
manifests' ``align`` field) on the lip reader's features, which are computed once (the reader is frozen
and its input is not augmented). The run:

1. the timing head (:mod:`l2s.models.aligner.timing`) by frame-level cross-entropy against each clip's words
   spread over their true spans;
2. the transcripts of the training clips are aligned with it, exactly as at inference, and each word's
   true phoneme shares become the duration model's targets (:mod:`l2s.models.aligner.durations`; its loss is the
   mean absolute error of the phoneme boundaries inside the word, in seconds); the phonemes' mean
   durations are counted on the way (the fallback);
3. every split of ``test_manifests`` is aligned and scored against its ``align.json`` (word and phoneme
   boundaries, the duration model beside the mean durations), into ``metrics.json``; the model directory
   goes to ``<output_folder>/model``.

Two small models on cached features train in minutes, so this stage runs its own loops (no ``Brain``,
no resumable checkpoints): a run is cheaper than a resume would be.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from l2s.align.aligner import Aligner
from l2s.align.reference import Reference, phoneme_errors, read_reference, summarise, word_errors
from l2s.arch import Architecture
from l2s.config import FPS
from l2s.data.dataset import load_roi
from l2s.data.manifest import Utterance, read_manifest
from l2s.errors import InputError
from l2s.models.aligner.durations import pad_phonemes, word_features
from l2s.models.aligner.model import AlignerConfig, AlignerModel, save_aligner
from l2s.models.aligner.timing import frame_targets
from l2s.text.phonemes import DEFAULT_INVENTORY, PhonemeInventory
from l2s.train.budget import within_budget
from l2s.train.common import model_config, write_metrics

IGNORE = -100


def _clips(manifest: str) -> List[Tuple[Utterance, Reference]]:
    utts = read_manifest(manifest)
    missing = [u.id for u in utts if u.align is None]
    if missing:
        raise InputError(f"{manifest}: {len(missing)} clips have no 'align' timing file (e.g. {missing[0]}): the "
                         "aligner learns from true word and phoneme timings (SynthGRID's align.json)")
    return [(u, read_reference(u.align)) for u in utts]


@torch.no_grad()
def encode_clips(vsr, clips: Sequence[Tuple[Utterance, Reference]], desc: str) -> List[torch.Tensor]:
    """Each clip's ``(T, D)`` lip-reader features (encoded alone, as at inference)."""
    from l2s.cli._common import progress

    return [vsr.encode(torch.as_tensor(load_roi(u.roi)).unsqueeze(0))[0].cpu()
            for u, _ in progress(clips, desc=desc, total=len(clips), unit="clip")]


def _frame(seconds: float) -> int:
    return int(round(seconds * FPS))


def timing_targets(vsr, clips, feats) -> List[torch.Tensor]:
    """The timing head's frame labels of each clip (its reference words spread over their spans)."""
    tok = vsr.tokenizer
    separator = tok.token_list.index(" ") if " " in tok.token_list else vsr.blank
    out = []
    for (_, ref), f in zip(clips, feats):
        words = [(_frame(s), max(_frame(s) + 1, _frame(e)), tok.encode(w)) for w, s, e in ref.words]
        out.append(frame_targets(f.shape[0], words, vsr.blank, separator))
    return out


def _frame_batches(lengths: Sequence[int], max_frames: int, rng: np.random.Generator) -> List[List[int]]:
    """Shuffled batches of clips under ``max_frames`` padded frames each."""
    order = rng.permutation(len(lengths))
    batches, current, longest = [], [], 0
    for i in order:
        longest_next = max(longest, int(lengths[i]))
        if current and longest_next * (len(current) + 1) > max_frames:
            batches.append(current)
            current, longest_next = [], int(lengths[i])
        current.append(int(i))
        longest = longest_next
    return batches + ([current] if current else [])


def train_timing(head, feats, targets, hparams, rng) -> float:
    """Frame cross-entropy epochs; returns the last epoch's mean loss."""
    opt = torch.optim.AdamW(head.parameters(), lr=float(hparams["lr"]), weight_decay=float(hparams["weight_decay"]))
    head.train()
    loss_mean = float("nan")
    epochs = range(int(hparams["timing_epochs"]))
    for epoch in within_budget(epochs, hparams.get("max_train_minutes")):
        losses = []
        for batch in _frame_batches([f.shape[0] for f in feats], int(hparams["max_frames_per_batch"]), rng):
            longest = max(feats[i].shape[0] for i in batch)
            x = torch.zeros(len(batch), longest, feats[0].shape[1])
            y = torch.full((len(batch), longest), IGNORE, dtype=torch.long)
            for k, i in enumerate(batch):
                x[k, :feats[i].shape[0]], y[k, :feats[i].shape[0]] = feats[i], targets[i]
            loss = F.nll_loss(head(x).flatten(0, 1), y.flatten(), ignore_index=IGNORE)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        loss_mean = float(np.mean(losses))
        hparams["train_logger"].log_stats({"part": "timing", "epoch": epoch + 1}, train_stats={"loss": loss_mean})
    head.eval()
    return loss_mean


def duration_items(aligner: Aligner, clips, feats) -> Dict[str, torch.Tensor]:
    """The duration model's words: true phoneme units and shares, inside the spans the aligner gives the
    transcript (words whose reference has no phoneme are left out)."""
    ids, cum, binned, frames, seconds, raw = [], [], [], [], [], []
    cfg = aligner.durations.config
    for (_, ref), f in zip(clips, feats):
        alignment = aligner.align(f, ref.text)
        spans = [(round(w.start * FPS), round(w.end * FPS)) for w in alignment.words]
        for (start, end), units in zip(spans, ref.phonemes):
            if not units:
                continue
            d = np.array([max(1e-3, e - s) for _, s, e in units])
            ids.append(aligner.inventory.ids([u for u, _, _ in units]))
            cum.append(torch.as_tensor(np.cumsum(d) / d.sum(), dtype=torch.float32))
            binned.append(word_features(f, [(start, end)], cfg.bins, cfg.margin)[0])
            frames.append(end - start)
            seconds.append((end - start) / FPS)
            raw.append(d)
    width = max(len(i) for i in ids)
    cum_t = torch.ones(len(ids), width)
    for k, c in enumerate(cum):
        cum_t[k, :len(c)] = c
    return {"phonemes": pad_phonemes(ids), "cum": cum_t, "features": torch.stack(binned),
            "frames": torch.tensor(frames), "seconds": torch.tensor(seconds, dtype=torch.float32),
            "durations": raw}


def mean_durations(items: Dict[str, Any], num_phonemes: int) -> torch.Tensor:
    """Each phoneme's mean seconds over the training words (0 for a phoneme never seen)."""
    total, count = torch.zeros(num_phonemes, dtype=torch.float64), torch.zeros(num_phonemes, dtype=torch.float64)
    for row, d in zip(items["phonemes"], items["durations"]):
        ids = row[:len(d)]
        total.index_add_(0, ids, torch.as_tensor(d, dtype=torch.float64))
        count.index_add_(0, ids, torch.ones(len(d), dtype=torch.float64))
    return (total / count.clamp(min=1)).float()


def boundary_loss(log_shares: torch.Tensor, cum: torch.Tensor, phonemes: torch.Tensor,
                  seconds: torch.Tensor) -> torch.Tensor:
    """Mean absolute error (seconds) of the inner phoneme boundaries of each word."""
    pred = torch.cumsum(log_shares.exp(), dim=1)
    inner = (phonemes != 0)
    inner[:, :-1] &= phonemes[:, 1:] != 0  # a boundary k is inner when phoneme k + 1 exists
    inner[:, -1] = False
    err = (pred - cum).abs() * seconds.unsqueeze(1)
    return (err * inner).sum() / inner.sum().clamp(min=1)


def train_durations(model, items, hparams, rng) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=float(hparams["lr"]), weight_decay=float(hparams["weight_decay"]))
    model.train()
    n, size = items["phonemes"].shape[0], int(hparams["duration_batch"])
    loss_mean = float("nan")
    for epoch in within_budget(range(int(hparams["duration_epochs"])), hparams.get("max_train_minutes")):
        losses = []
        for batch in np.array_split(rng.permutation(n), max(1, n // size)):
            b = torch.as_tensor(batch)
            out = model(items["phonemes"][b], items["features"][b], items["frames"][b])
            loss = boundary_loss(out, items["cum"][b], items["phonemes"][b], items["seconds"][b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        loss_mean = float(np.mean(losses))
        hparams["train_logger"].log_stats({"part": "durations", "epoch": epoch + 1},
                                          train_stats={"boundary_error_ms": 1000 * loss_mean})
    model.eval()
    return loss_mean


def score(aligner: Aligner, clips, feats) -> Dict[str, Any]:
    """Word boundaries of the aligned transcripts, and phoneme boundaries by the model and the mean
    durations, against the references."""
    words, by_model, by_mean = [], [], []
    compared = total = 0
    for (_, ref), f in zip(clips, feats):
        lp = aligner.log_probs(f)
        alignment = aligner.align(f, ref.text, log_probs=lp)
        words.append(word_errors(alignment, ref))
        errs, n_cmp, n_all = phoneme_errors(alignment, ref)
        by_model.append(errs)
        by_mean.append(phoneme_errors(aligner.align(f, ref.text, log_probs=lp, shares="mean"), ref)[0])
        compared, total = compared + n_cmp, total + n_all
    return {"words": summarise(words, bootstrap=0), "phonemes_model": summarise(by_model, bootstrap=0),
            "phonemes_mean": summarise(by_mean, bootstrap=0), "phoneme_words_compared": compared / max(1, total)}


def aligner_config(hparams: Dict[str, Any], vsr, inventory: PhonemeInventory) -> Tuple[Architecture, AlignerConfig]:
    """The recipe's aligner (``arch``, ``preset``, ``model``) with the widths of the lip reader it reads and of
    the phoneme inventory.

    Raises:
        InputError: an unknown preset or field, a width set by the recipe, a recipe without a timing head.
    """
    entry, config = model_config(hparams, "aligner", derived={
        "timing": {"vocab_size": vsr.config.vocab_size, "feature_dim": vsr.feature_dim},
        "durations": {"num_phonemes": len(inventory), "feature_dim": vsr.feature_dim}})
    if config.timing is None:
        raise InputError("recipe model (aligner): timing is null; this stage trains the timing head (a model "
                         "without one aligns on the lip reader's own CTC head and needs no training of it)")
    return entry, config


def train(hparams: Dict[str, Any], run_opts: Dict[str, Any]) -> Dict[str, Any]:
    """Train both parts, score every test split, export ``<output_folder>/model``."""
    from l2s.models.vsr import load_vsr

    started = time.time()
    rng = np.random.default_rng(int(hparams["seed"]))
    vsr = load_vsr(hparams["vsr_model"])
    if vsr.tokenizer is None:
        raise InputError(f"{hparams['vsr_model']}: the lip reader has no tokenizer to align text with")
    inventory = DEFAULT_INVENTORY
    _, config = aligner_config(hparams, vsr, inventory)  # checked before the features are computed
    train_clips, valid_clips = _clips(hparams["train_manifest"]), _clips(hparams["valid_manifest"])
    train_feats = encode_clips(vsr, train_clips, "features (train)")
    valid_feats = encode_clips(vsr, valid_clips, "features (valid)")
    model = AlignerModel(config, inventory)
    results: Dict[str, Any] = {}
    results["timing_loss"] = train_timing(model.timing, train_feats, timing_targets(vsr, train_clips, train_feats),
                                          hparams, rng)
    aligner = Aligner(vsr, model, language=str(hparams["language"]))
    items = duration_items(aligner, train_clips, train_feats)
    model.durations.mean_duration.copy_(mean_durations(items, len(inventory)))
    results["duration_words"] = int(items["phonemes"].shape[0])
    results["duration_loss"] = train_durations(model.durations, items, hparams, rng)
    results["train_seconds"] = time.time() - started
    results["valid"] = score(aligner, valid_clips, valid_feats)
    hparams["train_logger"].log_stats({"part": "valid"}, valid_stats={
        "word_median_ms": results["valid"]["words"]["median_ms"],
        "phoneme_median_ms": results["valid"]["phonemes_model"].get("median_ms", float("nan")),
        "phoneme_median_ms_mean_durations": results["valid"]["phonemes_mean"].get("median_ms", float("nan"))})
    for split, manifest in (hparams.get("test_manifests") or {}).items():
        clips = _clips(manifest)
        results[split] = score(aligner, clips, encode_clips(vsr, clips, f"features ({split})"))
    out = Path(hparams["output_folder"])
    save_aligner(model, out / "model")
    write_metrics(out / "metrics.json", results)
    return results
