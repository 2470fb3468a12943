"""Figures (matplotlib, Agg backend): mel panels on a Hz axis with a colour bar, F0 tracks, labelled spans.

:func:`synthesis_figure` is ``l2s synthesize --plot``: on one time axis, the DDSP prior's mel, the
generated mel and (when given) the reference recording's mel; the lip-read words under them (and any
further tier of spans, e.g. phonemes); and the F0 of the output audio beside the prior's F0 (and the
reference's). The panel helpers are shared with ``l2s evaluate --plots`` (:mod:`l2s.evaluation.plots`).
matplotlib comes with the ``eval`` extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from l2s.config import F0_FRAME_RATE, MEL_FRAME_RATE
from l2s.io.atomic import atomic_path
from l2s.pipeline.words import Span

#: frequencies labelled on a mel axis (Hz)
HZ_TICKS = (250, 500, 1000, 2000, 4000, 8000)
#: the model-space mel range a colour bar spans (the contract's floor is -1)
MEL_RANGE = (-1.0, 1.0)
MEL_CMAP = "magma"
DPI = 90
#: F0 line styles: the output audio's, the prior's, the reference's
F0_STYLES = {"output audio": dict(color="tab:blue", lw=1.4), "prior": dict(color="tab:orange", lw=1.0, ls="--"),
             "reference": dict(color="tab:green", lw=1.0, ls=":"), "REF": dict(color="tab:green", lw=1.2),
             "HYP": dict(color="tab:blue", lw=1.2, ls="--")}


def pyplot(what: str):
    """``matplotlib.pyplot`` on the Agg backend, or the one-line error naming the ``eval`` extra."""
    from l2s.extras import require

    matplotlib = require("matplotlib", what)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def hz_ticks(n_mels: int) -> Tuple[List[float], List[str]]:
    """Positions (in mel bands, for an image spanning ``[0, n_mels]``) and labels of :data:`HZ_TICKS`."""
    from l2s.features.mel import mel_band_centres_hz

    centres = mel_band_centres_hz()
    if len(centres) != n_mels:
        return [], []
    bands = np.arange(n_mels) + 0.5
    ticks = [(float(np.interp(hz, centres, bands)), f"{hz / 1000:g}k" if hz >= 1000 else f"{hz:g}")
             for hz in HZ_TICKS if centres[0] <= hz <= centres[-1] * 1.001]
    return [t for t, _ in ticks], [label for _, label in ticks]


def draw_mel(ax, cax, mel: np.ndarray, label: str, vrange: Tuple[float, float] = MEL_RANGE) -> Any:
    """A ``(80, T)`` mel at :data:`~l2s.config.MEL_FRAME_RATE` with a Hz axis and its colour bar in ``cax``."""
    seconds = mel.shape[1] / MEL_FRAME_RATE
    image = ax.imshow(mel, origin="lower", aspect="auto", cmap=MEL_CMAP, vmin=vrange[0], vmax=vrange[1],
                      extent=(0, seconds, 0, mel.shape[0]), interpolation="nearest")
    ticks, labels = hz_ticks(mel.shape[0])
    ax.set_yticks(ticks, labels)
    ax.set_ylabel(f"{label}\nHz", fontsize=9)
    if cax is not None:
        bar = ax.figure.colorbar(image, cax=cax)
        bar.set_label("log mel (model space)", fontsize=7)
        bar.ax.tick_params(labelsize=7)
    return image


def draw_tier(ax, spans: Sequence[Span], label: str, color: str = "tab:purple", untimed: str = "") -> None:
    """Labelled spans on their own strip (seconds on x); ``untimed`` text is centred when there are none."""
    ax.set_yticks([])
    ax.set_ylim(0, 1)
    ax.set_ylabel(label, fontsize=9, rotation=0, ha="right", va="center")
    for i, span in enumerate(spans):
        ax.axvspan(span.start, span.end, ymin=0.15, ymax=0.85, color=color, alpha=0.25 if i % 2 else 0.4, lw=0)
        ax.text((span.start + span.end) / 2, 0.5, span.label, ha="center", va="center", fontsize=8, clip_on=True)
    if not spans and untimed:
        ax.text(0.5, 0.5, untimed, transform=ax.transAxes, ha="center", va="center", fontsize=8, style="italic")


def draw_f0(ax, tracks: Mapping[str, np.ndarray]) -> None:
    """F0 tracks at :data:`~l2s.config.F0_FRAME_RATE` (0 = unvoiced, left as gaps) on a Hz axis."""
    for name, f0 in tracks.items():
        y = np.where(np.asarray(f0, dtype=np.float64) > 0, f0, np.nan)
        ax.plot(np.arange(len(y)) / F0_FRAME_RATE, y, label=name, **F0_STYLES.get(name, {}))
    ax.set_ylabel("F0\nHz", fontsize=9)
    if tracks:
        ax.legend(loc="upper right", fontsize=7, ncol=len(tracks))
    ax.grid(alpha=0.3)


def save(fig, path: Path) -> Path:
    """Write ``fig`` as a PNG atomically and close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    plt.close(fig)
    return path


@dataclass(frozen=True)
class Row:
    """One panel of a stacked figure: its kind (``mel``, ``tier``, ``f0``), height and what it draws."""

    kind: str
    height: float
    draw: Any


def stacked(rows: Sequence[Row], title: str, width: float = 11.0):
    """A figure of panels sharing one time axis, with a narrow column for the mels' colour bars."""
    plt = pyplot("the figure")
    fig = plt.figure(figsize=(width, sum(r.height for r in rows) + 0.8))
    grid = fig.add_gridspec(len(rows), 2, width_ratios=(60, 1), height_ratios=[r.height for r in rows],
                            hspace=0.12, wspace=0.02)
    axes = []
    for i, row in enumerate(rows):
        ax = fig.add_subplot(grid[i, 0], sharex=axes[0] if axes else None)
        cax = fig.add_subplot(grid[i, 1]) if row.kind == "mel" else None
        row.draw(ax, cax)
        if i < len(rows) - 1:
            ax.tick_params(labelbottom=False)
        axes.append(ax)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.1, right=0.95, top=0.93, bottom=0.08)
    return fig, axes


def synthesis_figure(result: Any, path: Path, title: str = "", reference: Optional[np.ndarray] = None,
                     tiers: Optional[Mapping[str, Sequence[Span]]] = None) -> Path:
    """The ``--plot`` PNG of a :class:`~l2s.pipeline.pipeline.SynthesisResult`.

    Args:
        result: the synthesis (its ``mel``, ``prior_mel``, ``f0``, ``wav``, ``text`` and ``words``).
        path: the PNG to write (atomically).
        title: the figure's title.
        reference: ``(N,)`` the recording at the contract rate to compare with (a corpus clip's ground
            truth), or None.
        tiers: labelled spans drawn under the mels, by tier name, in order (default: the lip-read words);
            a phoneme tier goes here too.
    """
    import torch

    from l2s.features.mel import wav_to_mel
    from l2s.features.pitch import extract_f0

    ref_mel = None if reference is None else wav_to_mel(torch.as_tensor(reference, dtype=torch.float32)).numpy()
    if tiers is None:
        tiers = {"lip-read": tuple(getattr(result, "words", ()) or ())}
    tracks: Dict[str, np.ndarray] = {"output audio": extract_f0(result.wav).f0}
    if result.f0 is not None:
        tracks["prior"] = result.f0
    if reference is not None:
        tracks["reference"] = extract_f0(reference).f0
    rows: List[Row] = []
    prior_mel = getattr(result, "prior_mel", None)
    if prior_mel is not None:
        rows.append(Row("mel", 1.5, lambda ax, cax: draw_mel(ax, cax, prior_mel, "DDSP prior")))
    rows.append(Row("mel", 1.5, lambda ax, cax: draw_mel(ax, cax, result.mel, "generated")))
    if ref_mel is not None:
        rows.append(Row("mel", 1.5, lambda ax, cax: draw_mel(ax, cax, ref_mel, "reference")))
    untimed = f"{result.text} (no word times)" if result.text else "(no text)"
    for name, spans in tiers.items():
        rows.append(Row("tier", 0.45, lambda ax, cax, n=name, s=spans: draw_tier(ax, s, n, untimed=untimed)))
    rows.append(Row("f0", 1.4, lambda ax, cax: draw_f0(ax, tracks)))
    fig, axes = stacked(rows, title or result.text or "(no text)")
    axes[0].set_xlim(0, result.mel.shape[1] / MEL_FRAME_RATE)
    return save(fig, path)
