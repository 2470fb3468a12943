"""PNG comparisons of REF and HYP (contract mels and F0 tracks) for the best and worst utterances."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

from l2s.config import F0_FRAME_RATE, MEL_FRAME_RATE
from l2s.evaluation.inputs import Utterance
from l2s.evaluation.runner import HIGHER_IS_BETTER, EvalReport
from l2s.io.atomic import atomic_path

RANK_ORDER = ("wer", "stoi", "estoi", "mcd_dtw", "mcd", "pesq_wb", "dnsmos_ovrl")


def pick_best_worst(report: EvalReport, n: int = 1) -> Tuple[Optional[str], List[str], List[str]]:
    """``(metric, best ids, worst ids)`` by the first metric of :data:`RANK_ORDER` that has values."""
    for col in RANK_ORDER:
        scored = [(u.scores[col].value, u.id) for u in report.utterances if col in u.scores and u.scores[col].ok]
        if scored:
            scored.sort(reverse=col in HIGHER_IS_BETTER)
            return col, [i for _, i in scored[:n]], [i for _, i in scored[::-1][:n]]
    return None, [], []


def plot_pair(ref: np.ndarray, hyp: np.ndarray, title: str, dest: Path) -> Path:
    """One PNG: REF mel, HYP mel and both F0 tracks on a shared time axis (seconds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from l2s.features.mel import wav_to_mel
    from l2s.features.pitch import extract_f0

    fig, axes = plt.subplots(3, 1, figsize=(10, 7), sharex=True)
    for ax, wav, name in ((axes[0], ref, "REF"), (axes[1], hyp, "HYP")):
        mel = wav_to_mel(torch.as_tensor(wav), normalized=False).numpy()
        ax.imshow(mel, origin="lower", aspect="auto", cmap="magma",
                  extent=(0, mel.shape[1] / MEL_FRAME_RATE, 0, mel.shape[0]))
        ax.set_ylabel(f"{name} mel bin")
    for wav, name, style in ((ref, "REF", "-"), (hyp, "HYP", "--")):
        f0 = extract_f0(wav).f0.astype(np.float64)
        f0[f0 <= 0] = np.nan  # gaps where unvoiced
        axes[2].plot(np.arange(len(f0)) / F0_FRAME_RATE, f0, style, label=name)
    axes[2].set_ylabel("F0 (Hz)")
    axes[2].set_xlabel("time (s)")
    axes[2].legend(loc="upper right")
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(dest) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return dest


def write_plots(report: EvalReport, pairs: Mapping[str, Tuple[Utterance, Utterance]], out_dir: Path,
                n: int = 1) -> Dict[str, Path]:
    """``plots/best_<id>.png`` and ``plots/worst_<id>.png``; returns them by name."""
    from l2s.io.audio import read_audio

    col, best, worst = pick_best_worst(report, n)
    out: Dict[str, Path] = {}
    if col is None:
        return out
    by_id = {u.id: u for u in report.utterances}
    for tag, ids in (("best", best), ("worst", worst)):
        for uid in ids:
            ref_u, hyp_u = pairs[uid]
            value = by_id[uid].scores[col].value
            name = f"{tag}_{uid}"
            out[name] = plot_pair(read_audio(ref_u.wav), read_audio(hyp_u.wav), f"{tag}: {uid} ({col} = {value:.3f})",
                                  Path(out_dir) / "plots" / f"{name}.png")
    return out
