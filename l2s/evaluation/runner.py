"""The evaluation runner: score every (REF, HYP) pair, aggregate, and add the calibration row.

The calibration row scores the REF audio against its own text with the same ASR: a
system's WER is only meaningful next to the WER the ASR makes on real speech.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from l2s.errors import InputError
from l2s.evaluation.bootstrap import bootstrap_interval, error_rate
from l2s.evaluation.inputs import Utterance
from l2s.io.audio import read_audio
from l2s.metrics.align import align
from l2s.metrics.base import Score
from l2s.metrics.spectral import F0_SCORE_NAMES
from l2s.metrics.wer import ErrorCounts, error_counts

# Metric groups a user can ask for, and the report columns each one fills.
METRIC_COLUMNS: Dict[str, Tuple[str, ...]] = {
    "wer": ("wer", "cer"),
    "stoi": ("stoi",),
    "estoi": ("estoi",),
    "pesq": ("pesq_wb",),
    "mcd": ("mcd",),
    "mcd_dtw": ("mcd_dtw",),
    "f0": F0_SCORE_NAMES,
    "dnsmos": ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"),
    "speaker": ("speaker_sim",),
    "sync": ("sync_conf", "sync_dist", "sync_offset"),
}
DEFAULT_METRICS = ("wer", "stoi", "estoi", "pesq", "mcd", "mcd_dtw", "f0", "dnsmos", "speaker")
INTRUSIVE = ("stoi", "estoi", "pesq", "mcd", "f0")
# Direction of "better", for picking the best and worst utterances and for reading tables.
HIGHER_IS_BETTER = {"stoi", "estoi", "pesq_wb", "logf0_corr", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak",
                    "dnsmos_p808", "speaker_sim", "sync_conf"}


@dataclass(frozen=True)
class EvalOptions:
    """What to compute.

    Attributes:
        metrics: metric groups (keys of :data:`METRIC_COLUMNS`).
        asr: ASR spec for WER, e.g. ``"whisper:tiny.en"`` or ``"whisper:/path/model.pt"``.
        max_lag_s: largest HYP delay searched when aligning intrusive metrics.
        sync_model: sync expert directory (needed for ``sync``).
        device: torch device for the ASR.
        protocol: the name of the benchmark protocol the run follows (recorded in the report), if any.
    """

    metrics: Tuple[str, ...] = DEFAULT_METRICS
    asr: str = "whisper:tiny.en"
    max_lag_s: float = 0.5
    sync_model: Optional[Path] = None
    device: str = "cpu"
    protocol: Optional[str] = None


@dataclass(frozen=True)
class UtteranceResult:
    """Scores of one pair, keyed by column name, plus transcripts and alignment."""

    id: str
    scores: Mapping[str, Score]
    lag_ms: float
    align_corr: float
    ref_text: Optional[str] = None
    hyp_transcript: Optional[str] = None
    ref_transcript: Optional[str] = None
    counts: Optional[ErrorCounts] = None
    ref_counts: Optional[ErrorCounts] = None


@dataclass(frozen=True)
class Aggregate:
    """Summary of one column: corpus value (WER/CER: errors over words; else the mean), spread, coverage."""

    name: str
    value: Optional[float]
    std: Optional[float]
    n: int
    missing: int
    reasons: Mapping[str, int] = field(default_factory=dict)
    #: 95 % percentile bootstrap interval of ``value`` over utterances (:mod:`l2s.evaluation.bootstrap`)
    ci95: Optional[Tuple[float, float]] = None


@dataclass(frozen=True)
class EvalReport:
    """Everything ``l2s evaluate`` writes."""

    options: EvalOptions
    utterances: Tuple[UtteranceResult, ...]
    aggregates: Mapping[str, Aggregate]
    calibration: Mapping[str, Aggregate]
    warnings: Tuple[str, ...]
    timings_s: Mapping[str, float]
    generation: Mapping[str, float] = field(default_factory=dict)


def _model_name(spec: str) -> str:
    """``whisper:tiny.en``, ``tiny.en`` and ``/x/tiny.en.pt`` all name the model ``tiny.en``."""
    name = spec.split(":", 1)[1] if spec.startswith("whisper:") else spec
    name = Path(name).name if ("/" in name or name.endswith(".pt")) else name
    return name[:-3] if name.endswith(".pt") else name


def generation_cost(hyps: Sequence[Utterance]) -> Dict[str, float]:
    """What generating the HYP audio cost, from ``l2s synthesize`` sidecars (empty unless every HYP has one).

    ``network_evals_per_audio_second``: denoiser and guide evaluations per second of audio;
    ``rtf_total``: synthesis seconds per audio second, on the machine that generated them.
    """
    metas = [h.meta for h in hyps]
    if not metas or not all("network_evals" in m and m.get("duration_s") for m in metas):
        return {}
    audio = sum(float(m["duration_s"]) for m in metas)
    out = {"network_evals_per_audio_second": round(sum(float(m["network_evals"]) for m in metas) / audio, 2)}
    if all("total" in m.get("timings_s", {}) for m in metas):
        out["rtf_total"] = round(sum(float(m["timings_s"]["total"]) for m in metas) / audio, 4)
    return out


def guide_asr_warnings(pairs: Sequence[Tuple[Utterance, Utterance]], asr: str) -> List[str]:
    """Warn when the evaluation ASR is the model that guided generation (its WER would flatter)."""
    guides = Counter(str(h.meta["guide_asr"]) for _, h in pairs if h.meta.get("guide_asr"))
    out = []
    for guide, n in guides.items():
        if _model_name(guide) == _model_name(asr):
            out.append(f"evaluation ASR {asr} is the guidance ASR of {n} hypothesis utterance(s) ({guide}): "
                       "WER is biased low; evaluate with another ASR")
    return out


def _wer(scores: Dict[str, Score], text: Optional[str], transcript: str) -> Optional[ErrorCounts]:
    """Fill ``wer`` and ``cer`` in ``scores``; missing with the reason for an empty reference."""
    try:
        counts = error_counts(text or "", transcript)
    except ValueError as exc:
        scores["wer"], scores["cer"] = Score.missing("wer", str(exc)), Score.missing("cer", str(exc))
        return None
    scores["wer"], scores["cer"] = Score.of("wer", counts.wer), Score.of("cer", counts.cer)
    return counts


class _Scorers:
    """Loads each model once and computes the requested columns of one pair."""

    def __init__(self, options: EvalOptions):
        self.options = options
        self.metrics = set(options.metrics)
        self.asr = None
        self.sync = None
        self.timings: Counter = Counter()
        if "wer" in self.metrics:
            from l2s.asr.whisper import resolve_whisper

            t = time.perf_counter()
            self.asr = resolve_whisper(options.asr, options.device)
            self.timings["asr_load"] += time.perf_counter() - t
        if "sync" in self.metrics and options.sync_model is not None:
            from l2s.metrics.sync import load_sync_expert

            self.sync = load_sync_expert(options.sync_model)

    def _timed(self, key: str, fn: Callable, *args):
        t = time.perf_counter()
        out = fn(*args)
        self.timings[key] += time.perf_counter() - t
        return out

    def transcribe(self, wav: np.ndarray) -> str:
        from l2s.asr.whisper import transcribe

        return self._timed("asr", transcribe, self.asr, wav)

    def score(self, ref_u: Utterance, hyp_u: Utterance, ref: np.ndarray, hyp: np.ndarray) -> UtteranceResult:
        from l2s.metrics import intelligibility, quality, spectral, speaker

        m, s = self.metrics, {}
        a = self._timed("align", align, ref, hyp, self.options.max_lag_s)
        if "stoi" in m:
            s["stoi"] = self._timed("stoi", intelligibility.stoi, a.ref, a.hyp)
        if "estoi" in m:
            s["estoi"] = self._timed("estoi", intelligibility.estoi, a.ref, a.hyp)
        if "pesq" in m:
            s["pesq_wb"] = self._timed("pesq", intelligibility.pesq_wb, a.ref, a.hyp)
        if "mcd" in m:
            s["mcd"] = self._timed("mcd", spectral.mcd, a.ref, a.hyp)
        if "mcd_dtw" in m:  # DTW needs no alignment: it finds its own, on the full clips
            s["mcd_dtw"] = self._timed("mcd_dtw", spectral.mcd, ref, hyp, True)
        if "f0" in m:
            s.update(self._timed("f0", spectral.f0_scores, a.ref, a.hyp).as_dict())
        if "dnsmos" in m:
            s.update(self._timed("dnsmos", quality.dnsmos, hyp).as_dict())
        if "speaker" in m:
            s["speaker_sim"] = self._timed("speaker", speaker.speaker_similarity, ref, hyp)
        if "sync" in m:
            s.update(self._sync(ref_u, hyp))
        hyp_tr = counts = None
        if "wer" in m:
            hyp_tr = self.transcribe(hyp)
            counts = _wer(s, ref_u.text, hyp_tr)
        return UtteranceResult(id=ref_u.id, scores=s, lag_ms=1000.0 * a.lag_s, align_corr=a.correlation,
                               ref_text=ref_u.text, hyp_transcript=hyp_tr, counts=counts)

    def _sync(self, ref_u: Utterance, hyp: np.ndarray) -> Dict[str, Score]:
        cols = METRIC_COLUMNS["sync"]
        if self.sync is None:
            return {c: Score.missing(c, "no --sync-model given") for c in cols}
        if ref_u.roi is None:
            return {c: Score.missing(c, "no mouth ROI (<id>.roi.npy) beside the reference") for c in cols}
        from l2s.metrics.sync import sync_score

        try:
            res = self._timed("sync", sync_score, self.sync, np.load(ref_u.roi), hyp)
        except InputError as exc:
            return {c: Score.missing(c, str(exc)) for c in cols}
        return res.as_scores()

    def calibrate(self, ref_u: Utterance, ref: np.ndarray) -> Tuple[Dict[str, Score], Optional[str],
                                                                    Optional[ErrorCounts]]:
        """REF audio scored against its own text (WER/CER) and, non-intrusively, DNSMOS."""
        from l2s.metrics import quality

        s: Dict[str, Score] = {}
        tr = counts = None
        if "wer" in self.metrics:
            tr = self.transcribe(ref)
            counts = _wer(s, ref_u.text, tr)
        if "dnsmos" in self.metrics:
            s.update(self._timed("dnsmos", quality.dnsmos, ref).as_dict())
        return s, tr, counts


def aggregate(rows: Iterable[Mapping[str, Score]], columns: Sequence[str],
              counts: Sequence[ErrorCounts] = ()) -> Dict[str, Aggregate]:
    """Per-column summaries; WER and CER are corpus-level (summed errors over summed reference length)."""
    rows = list(rows)
    out = {}
    for col in columns:
        scores = [r[col] for r in rows if col in r]
        vals = np.asarray([x.value for x in scores if x.ok], dtype=np.float64)
        reasons = Counter(x.reason for x in scores if not x.ok)
        value = float(vals.mean()) if vals.size else None
        interval = bootstrap_interval(vals) if vals.size else None
        if col in ("wer", "cer") and counts:
            value, interval = error_rate(counts, col)
        out[col] = Aggregate(name=col, value=value, std=float(vals.std()) if vals.size else None,
                             n=int(vals.size), missing=len(scores) - int(vals.size), reasons=dict(reasons),
                             ci95=interval)
    return out


def run_evaluation(pairs: Sequence[Tuple[Utterance, Utterance]], options: EvalOptions,
                   progress: Callable[[Iterable], Iterable] = lambda x: x) -> EvalReport:
    """Score matched pairs (see :func:`l2s.evaluation.inputs.match_sets`).

    Args:
        pairs: ``(ref, hyp)`` utterances with the same ids.
        options: metrics, ASR and alignment settings.
        progress: wraps the utterance loop (a progress bar).
    """
    unknown = sorted(set(options.metrics) - set(METRIC_COLUMNS))
    if unknown:
        raise InputError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRIC_COLUMNS)}")
    warnings = guide_asr_warnings(pairs, options.asr) if "wer" in options.metrics else []
    if "sync" in options.metrics and options.sync_model is None:
        warnings.append("sync requested without --sync-model: sync columns are reported missing")
    scorers = _Scorers(options)
    results, calib_rows, calib_counts = [], [], []
    for ref_u, hyp_u in progress(pairs):
        ref, hyp = read_audio(ref_u.wav), read_audio(hyp_u.wav)
        res = scorers.score(ref_u, hyp_u, ref, hyp)
        cal, ref_tr, ref_counts = scorers.calibrate(ref_u, ref)
        results.append(replace(res, ref_transcript=ref_tr, ref_counts=ref_counts))
        calib_rows.append(cal)
        if ref_counts is not None:
            calib_counts.append(ref_counts)
    columns = [c for g in options.metrics for c in METRIC_COLUMNS[g]]
    agg = aggregate((r.scores for r in results), columns, [r.counts for r in results if r.counts is not None])
    calib_cols = [c for c in columns if c in ("wer", "cer") or c.startswith("dnsmos")]
    calib = aggregate(calib_rows, calib_cols, calib_counts)
    return EvalReport(options=options, utterances=tuple(results), aggregates=agg, calibration=calib,
                      warnings=tuple(warnings), timings_s=dict(scorers.timings),
                      generation=generation_cost([h for _, h in pairs]))
