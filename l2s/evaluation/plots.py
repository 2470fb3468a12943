"""``l2s evaluate --plots``: how each metric is distributed over the set, and the best and worst utterances.

``plots/distributions.png``: one panel per metric column, the histogram of the per-utterance values
with the set's aggregate (the report's value) and the ground truth's calibration (the REF audio
scored the same way: WER, CER and DNSMOS) marked; for WER and CER the REF recordings' own
per-utterance distribution is drawn beside the HYP one. The best and worst utterances (by the first
metric of :data:`RANK_ORDER` that has values) are marked on every panel, and each gets its own PNG,
``plots/best_<id>.png`` and ``plots/worst_<id>.png``: REF and HYP mels on a Hz axis with colour bars,
and both F0 tracks, on one time axis.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from l2s.evaluation.inputs import Utterance
from l2s.evaluation.runner import HIGHER_IS_BETTER, METRIC_COLUMNS, EvalReport

RANK_ORDER = ("wer", "stoi", "estoi", "mcd_dtw", "mcd", "pesq_wb", "dnsmos_ovrl")
PERCENT = ("wer", "cer", "vuv_error", "gpe")
DISTRIBUTIONS = "distributions.png"
PANELS_PER_ROW = 4


def pick_best_worst(report: EvalReport, n: int = 1) -> Tuple[Optional[str], List[str], List[str]]:
    """``(metric, best ids, worst ids)`` by the first metric of :data:`RANK_ORDER` that has values."""
    for col in RANK_ORDER:
        scored = [(u.scores[col].value, u.id) for u in report.utterances if col in u.scores and u.scores[col].ok]
        if scored:
            scored.sort(reverse=col in HIGHER_IS_BETTER)
            return col, [i for _, i in scored[:n]], [i for _, i in scored[::-1][:n]]
    return None, [], []


def plot_pair(ref: np.ndarray, hyp: np.ndarray, title: str, dest: Path) -> Path:
    """One PNG: REF mel, HYP mel (Hz axis, colour bars) and both F0 tracks on a shared time axis (seconds)."""
    import torch

    from l2s.features.mel import wav_to_mel
    from l2s.features.pitch import extract_f0
    from l2s.figures import Row, draw_f0, draw_mel, save, stacked

    mels = {name: wav_to_mel(torch.as_tensor(wav, dtype=torch.float32)).numpy() for name, wav in
            (("REF", ref), ("HYP", hyp))}
    tracks = {"REF": extract_f0(ref).f0, "HYP": extract_f0(hyp).f0}
    rows = [Row("mel", 1.6, lambda ax, cax, m=mel, n=name: draw_mel(ax, cax, m, n)) for name, mel in mels.items()]
    rows.append(Row("f0", 1.4, lambda ax, cax: draw_f0(ax, tracks)))
    fig, _ = stacked(rows, title)
    return save(fig, dest)


def _columns(report: EvalReport) -> List[str]:
    cols = [c for g in report.options.metrics for c in METRIC_COLUMNS.get(g, ())]
    return [c for c in cols if any(c in u.scores and u.scores[c].ok for u in report.utterances)]


def _scale(col: str) -> float:
    return 100.0 if col in PERCENT else 1.0


def _reference_values(report: EvalReport, col: str) -> List[float]:
    """The REF recordings' own per-utterance WER or CER (from the calibration transcripts), if any."""
    if col not in ("wer", "cer"):
        return []
    return [getattr(u.ref_counts, col) for u in report.utterances if u.ref_counts is not None]


def plot_distributions(report: EvalReport, dest: Path, best: Sequence[str] = (), worst: Sequence[str] = (),
                       ranked_by: Optional[str] = None) -> Optional[Path]:
    """``dest``: each metric's per-utterance histogram, the aggregate, the ground truth's calibration and the
    best and worst utterances marked. None when no metric has a value."""
    from l2s.figures import pyplot, save

    cols = _columns(report)
    if not cols:
        return None
    plt = pyplot("--plots")
    rows = math.ceil(len(cols) / PANELS_PER_ROW)
    width = min(len(cols), PANELS_PER_ROW)
    fig, axes = plt.subplots(rows, width, figsize=(3.6 * width, 2.7 * rows + 0.6), squeeze=False)
    by_id = {u.id: u for u in report.utterances}
    for ax, col in zip(axes.flat, cols):
        k = _scale(col)
        values = np.asarray([u.scores[col].value for u in report.utterances if col in u.scores and u.scores[col].ok])
        ref_values = np.asarray(_reference_values(report, col)) * k
        both = np.concatenate([values * k, ref_values]) if ref_values.size else values * k
        bins = np.histogram_bin_edges(both, bins=min(20, max(5, len(values) // 3)))
        ax.hist(values * k, bins=bins, color="tab:blue", alpha=0.6, label="HYP utterances")
        if ref_values.size:
            ax.hist(ref_values, bins=bins, histtype="step", color="tab:green", lw=1.5, label="REF utterances")
        figures = []
        agg = report.aggregates.get(col)
        if agg is not None and agg.value is not None:
            ax.axvline(agg.value * k, color="black", lw=1.5, label="HYP set (the report's value)")
            figures.append(f"HYP {agg.value * k:.3g}")
        calib = report.calibration.get(col)
        if calib is not None and calib.value is not None:
            ax.axvline(calib.value * k, color="tab:green", ls="--", lw=1.5,
                       label="ground truth: REF audio scored alike")
            figures.append(f"REF {calib.value * k:.3g}")
        for ids, marker, color, tag in ((best, "^", "tab:green", "best"), (worst, "v", "tab:red", "worst")):
            marks = [by_id[i].scores[col].value * k for i in ids if i in by_id and col in by_id[i].scores
                     and by_id[i].scores[col].ok]
            if marks:
                ax.plot(marks, [0] * len(marks), marker, color=color, ms=9, clip_on=False, zorder=5,
                        label=f"{tag} by {ranked_by}" if ranked_by else tag)
        arrow = "\u2191" if col in HIGHER_IS_BETTER else "\u2193"
        ax.set_title(f"{col}{' (%)' if col in PERCENT else ''} {arrow}  " + ", ".join(figures), fontsize=9)
        ax.set_ylabel("utterances", fontsize=8)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(cols):]:
        ax.set_visible(False)
    legend = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(list(legend.values()), list(legend.keys()), loc="lower center", ncol=min(len(legend), 6), fontsize=8,
               frameon=False)
    fig.suptitle(f"l2s evaluate: {len(report.utterances)} utterances, ASR {report.options.asr}", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return save(fig, dest)


def write_plots(report: EvalReport, pairs: Mapping[str, Tuple[Utterance, Utterance]], out_dir: Path,
                n: int = 1) -> Dict[str, Path]:
    """``plots/distributions.png``, ``plots/best_<id>.png`` and ``plots/worst_<id>.png``; returns them by name."""
    from l2s.io.audio import read_audio

    col, best, worst = pick_best_worst(report, n)
    out: Dict[str, Path] = {}
    folder = Path(out_dir) / "plots"
    dist = plot_distributions(report, folder / DISTRIBUTIONS, best, worst, col)
    if dist is not None:
        out["distributions"] = dist
    if col is None:
        return out
    by_id = {u.id: u for u in report.utterances}
    for tag, ids in (("best", best), ("worst", worst)):
        for uid in ids:
            ref_u, hyp_u = pairs[uid]
            value = by_id[uid].scores[col].value
            name = f"{tag}_{uid}"
            out[name] = plot_pair(read_audio(ref_u.wav), read_audio(hyp_u.wav), f"{tag}: {uid} ({col} = {value:.3f})",
                                  folder / f"{name}.png")
    return out
