"""``l2s evaluate``: score generated speech (HYP) against references (REF)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional

import click

from l2s.cli._options import device_option
from l2s.errors import InputError


def _parse_metrics(text: str) -> tuple:
    from l2s.evaluation.runner import DEFAULT_METRICS, METRIC_COLUMNS

    if text in ("", "default"):
        return DEFAULT_METRICS
    if text == "all":
        return tuple(METRIC_COLUMNS)
    names = tuple(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    unknown = [m for m in names if m not in METRIC_COLUMNS]
    if unknown or not names:
        raise InputError(f"unknown metric(s) {', '.join(unknown) or '(none)'}; choose from "
                         f"{', '.join(METRIC_COLUMNS)}, 'default' or 'all'")
    return names


def command_line(ctx: click.Context) -> str:
    """The command that reproduces this run: ``l2s evaluate`` and every option's value (defaults included)."""
    import shlex

    words = ["l2s", ctx.info_name or "evaluate"]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if not isinstance(param, click.Option) or value is None or value is False:
            continue
        words.append(param.opts[-1] if param.is_flag else f"{param.opts[-1]} {shlex.quote(str(value))}")
    return " ".join(words)


@click.command(help="""Score generated speech against references, utterance by utterance.

\b
REF and HYP are folders of <id>.wav (REF text in <id>.txt beside the REF audio, HYP
metadata such as guide_asr in <id>.json, mouth ROI in <id>.roi.npy) or CSV/JSONL
manifests with id, wav (and text or txt, roi) columns; both must hold the same ids.

Writes report.json, report.md (a pasteable table with a calibration row: REF audio
against its own text with the same ASR) and utterances.csv into --out.

\b
Metrics (comma-separated groups): wer (WER+CER, Whisper ASR), stoi, estoi, pesq
(wideband), mcd, mcd_dtw, f0 (F0 RMSE, V/UV error, log-F0 corr.), dnsmos (P.835 +
P.808), speaker (Resemblyzer cosine), sync (needs --sync-model; not comparable with
published LSE numbers). Default: all but sync.""")
@click.option("--ref", "ref", required=True, type=click.Path(), help="Reference folder or manifest.")
@click.option("--hyp", "hyp", required=True, type=click.Path(), help="Hypothesis folder or manifest.")
@click.option("--metrics", default="default", show_default=True, help="Metric groups, comma-separated, or 'all'.")
@click.option("--asr", default="whisper:tiny.en", show_default=True,
              help="ASR for WER: whisper:NAME (offline package or download) or whisper:/path/model.pt.")
@click.option("--out", "out", default="eval_out", show_default=True, type=click.Path(file_okay=False),
              help="Output folder.")
@click.option("--max-lag", default=0.5, show_default=True, type=click.FloatRange(0, 5),
              help="Largest HYP delay (s) searched when aligning for intrusive metrics.")
@click.option("--sync-model", type=click.Path(exists=True, file_okay=False), default=None,
              help="Sync expert directory (for the sync metric).")
@click.option("--protocol", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Benchmark protocol YAML (eval/protocols/): sets metrics, ASR and --max-lag unless given.")
@click.option("--plots", is_flag=True,
              help="Also write plots/: each metric's distribution over the set (the ground truth's calibration "
                   "marked) and mels and F0 of the best and worst utterances.")
@device_option("Torch device of the ASR and the neural metrics")
@click.pass_context
def evaluate(ctx: click.Context, ref: str, hyp: str, metrics: str, asr: str, out: str, max_lag: float,
             sync_model: Optional[str], protocol: Optional[str], plots: bool, device: str) -> None:
    from l2s.cli._common import progress
    from l2s.device import resolve_device
    from l2s.evaluation.inputs import load_set, match_sets
    from l2s.evaluation.report import to_markdown, write_report
    from l2s.evaluation.runner import EvalOptions, run_evaluation

    groups = _parse_metrics(metrics)
    device = ctx.params["device"] = str(resolve_device(device))  # the report's command names the device used
    if protocol:
        from l2s.evaluation.protocol import load_protocol

        proto = load_protocol(Path(protocol))

        def given(name: str) -> bool:
            return ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE

        groups = groups if given("metrics") else proto.metrics
        asr = asr if given("asr") else proto.asr
        max_lag = max_lag if given("max_lag") else proto.max_lag_s
    pairs = match_sets(load_set(Path(ref), "REF"), load_set(Path(hyp), "HYP"), need_text="wer" in groups)
    options = EvalOptions(metrics=groups, asr=asr, max_lag_s=max_lag,
                          sync_model=Path(sync_model) if sync_model else None, device=device,
                          protocol=proto.name if protocol else None)
    log = logging.getLogger("l2s.cli.evaluate")
    log.info("%d utterance pairs; metrics %s; ASR %s on %s", len(pairs), ", ".join(groups), asr, device)
    start = time.perf_counter()
    report = run_evaluation(pairs, options, lambda it: progress(it, "evaluate", total=len(pairs), unit="utt"))
    log.info("scored in %.2f s", time.perf_counter() - start)
    for w in report.warnings:
        click.echo(f"l2s: warning: {w}", err=True)
    paths = write_report(report, Path(out), command=command_line(ctx))
    if plots:
        from l2s.evaluation.plots import write_plots

        write_plots(report, {r.id: (r, h) for r, h in pairs}, Path(out))
    click.echo(to_markdown(report))
    click.echo(f"wrote {paths['json']}, {paths['md']}, {paths['csv']}")
