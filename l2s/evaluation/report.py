"""Writing an :class:`~l2s.evaluation.runner.EvalReport`: ``report.json``, ``report.md`` and ``utterances.csv``.

Every file is written atomically. Missing values are empty in the CSV, ``null`` with their
reason in the JSON, and counted in the Markdown table.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Dict, List, Mapping, Optional

from l2s import __version__
from l2s.evaluation.runner import HIGHER_IS_BETTER, METRIC_COLUMNS, Aggregate, EvalReport
from l2s.io.atomic import atomic_write_text

SYNC_NOTE = "sync_*: l2s sync expert, NOT comparable with published LSE-C/LSE-D numbers."


def _columns(report: EvalReport) -> List[str]:
    return [c for g in report.options.metrics for c in METRIC_COLUMNS[g]]


def _agg_json(aggs: Mapping[str, Aggregate]) -> Dict[str, dict]:
    return {k: dataclasses.asdict(v) for k, v in aggs.items()}


def to_json(report: EvalReport, command: Optional[str] = None) -> dict:
    """A JSON-ready dict: the command (when given), options, aggregates, calibration, warnings, timings and
    per-utterance scores."""
    opts = dataclasses.asdict(report.options)
    opts["sync_model"] = str(opts["sync_model"]) if opts["sync_model"] else None
    return {
        "l2s_version": __version__,
        **({"command": command} if command else {}),
        "options": opts,
        "num_utterances": len(report.utterances),
        "aggregates": _agg_json(report.aggregates),
        "calibration": _agg_json(report.calibration),
        "warnings": list(report.warnings),
        "timings_s": {k: round(v, 3) for k, v in report.timings_s.items()},
        "generation": dict(report.generation),
        "notes": [SYNC_NOTE] if "sync" in report.options.metrics else [],
        "utterances": [
            {"id": u.id, "lag_ms": u.lag_ms, "align_corr": u.align_corr, "ref_text": u.ref_text,
             "hyp_transcript": u.hyp_transcript, "ref_transcript": u.ref_transcript,
             "scores": {k: {"value": s.value, "reason": s.reason} for k, s in u.scores.items()}}
            for u in report.utterances
        ],
    }


def _fmt(value: Optional[float], col: str) -> str:
    if value is None:
        return "n/a"
    if col in ("wer", "cer", "vuv_error", "gpe"):
        return f"{100 * value:.1f}%"
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"


def to_markdown(report: EvalReport) -> str:
    """A pasteable table: one row for the system, one calibration row (REF audio, same ASR)."""
    cols = _columns(report)
    arrows = {c: ("↑" if c in HIGHER_IS_BETTER else "↓") for c in cols}
    head = "| row | " + " | ".join(f"{c} {arrows[c]}" for c in cols) + " |"
    sep = "|---|" + "---|" * len(cols)
    sys_row = "| system | " + " | ".join(_fmt(report.aggregates[c].value, c) for c in cols) + " |"
    cal_row = "| calibration (REF) | " + " | ".join(
        _fmt(report.calibration[c].value, c) if c in report.calibration else "-" for c in cols) + " |"
    lines = [f"# l2s evaluation ({len(report.utterances)} utterances)", "",
             f"ASR: `{report.options.asr}`; intrusive metrics aligned within ±{report.options.max_lag_s} s.", "",
             head, sep, sys_row, cal_row, ""]
    intervals = [f"{c} [{_fmt(a.ci95[0], c)}, {_fmt(a.ci95[1], c)}]" for c in cols
                 for a in [report.aggregates[c]] if a.ci95 is not None]
    if intervals:
        lines += ["95 % bootstrap intervals over utterances (1,000 draws): " + ", ".join(intervals), ""]
    if report.generation:
        lines += ["Generation (from the HYP sidecars): " + ", ".join(f"{k} {v}" for k, v in report.generation.items()),
                  ""]
    missing = [(c, a) for c, a in report.aggregates.items() if a.missing]
    if missing:
        lines.append("Missing values:")
        for c, a in missing:
            why = "; ".join(f"{r} (x{n})" for r, n in a.reasons.items())
            lines.append(f"- {c}: {a.missing} of {a.n + a.missing}: {why}")
        lines.append("")
    if "sync" in report.options.metrics:
        lines += [SYNC_NOTE, ""]
    for w in report.warnings:
        lines.append(f"**Warning:** {w}")
    return "\n".join(lines).rstrip() + "\n"


def to_csv(report: EvalReport) -> str:
    """One row per utterance: id, lag, every column, transcripts."""
    cols = _columns(report)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "lag_ms", "align_corr", *cols, "ref_text", "hyp_transcript", "ref_transcript"])
    for u in report.utterances:
        vals = [u.scores[c].value if c in u.scores else None for c in cols]
        w.writerow([u.id, f"{u.lag_ms:.2f}", f"{u.align_corr:.4f}",
                    *("" if v is None else f"{v:.6g}" for v in vals),
                    u.ref_text or "", u.hyp_transcript or "", u.ref_transcript or ""])
    return buf.getvalue()


def write_report(report: EvalReport, out_dir: Path, command: Optional[str] = None) -> Dict[str, Path]:
    """Write ``report.json`` (recording ``command``, the command line that made it, when given), ``report.md``
    and ``utterances.csv`` into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    paths = {"json": out_dir / "report.json", "md": out_dir / "report.md", "csv": out_dir / "utterances.csv"}
    atomic_write_text(paths["json"], json.dumps(to_json(report, command), indent=2) + "\n")
    atomic_write_text(paths["md"], to_markdown(report))
    atomic_write_text(paths["csv"], to_csv(report))
    return paths
