"""The demo: voice a fresh SynthGRID clip of a held-out speaker and score it against the truth.

The clip is a new rendering (its own prosody, head motion and lighting) of a ``test-unseen`` clip of
the default corpus (:class:`~l2s.corpora.synthgrid.generate.CorpusOptions`): a speaker no default-corpus
model was trained on, saying a sentence of the grammar's test partition. The output folder holds::

    input_silent.mp4              the silent video the pipeline voiced
    input_silent.landmarks.npz    its landmark sidecar (how the pipeline finds the mouth)
    voiced.mp4, voiced.wav        the video with the generated speech, and the speech alone
    ground_truth.wav              what the speaker really said
    report.json, report.txt       texts, WERs, STOI, model and timings

It is assembled beside the destination and renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np

from l2s.defaults import DEFAULT_ASR, NO_ASR
from l2s.errors import DependencyError, L2SError
from l2s.io.atomic import atomic_dir, atomic_write_text, check_replaceable

INPUT_VIDEO = "input_silent.mp4"
VOICED_VIDEO = "voiced.mp4"
VOICED_WAV = "voiced.wav"
GROUND_TRUTH_WAV = "ground_truth.wav"
REPORT_JSON = "report.json"
REPORT_TXT = "report.txt"
#: The steps :func:`run_demo` reports through ``on_step``, in order.
DEMO_STEPS = ("loading the model", "generating a SynthGRID clip of a held-out speaker", "voicing the silent video",
              "scoring", "writing the report")
_SEED_STREAM = 7  # keeps the demo's draws apart from the corpus's own seed streams


@dataclass(frozen=True)
class DemoOptions:
    """How to run the demo.

    Attributes:
        seed: picks the clip and seeds its rendering and the generator.
        steps: the generator's steps (None: the pipeline's).
        solver: the generator's solver (None: the pipeline's).
        asr: ASR spec for the transcript of the voiced audio (``whisper:tiny.en``), or ``"none"``.
        device: ``auto``, ``cpu`` or ``cuda``.
    """

    seed: int = 0
    steps: Optional[int] = None
    solver: Optional[str] = None
    asr: str = DEFAULT_ASR
    device: str = "auto"


@dataclass(frozen=True)
class DemoReport:
    """What the demo measured (``None`` scores carry their reason in ``notes``).

    Attributes:
        model: :meth:`~l2s.pipeline.Lip2Speech.describe` of the pipeline.
        clip: id, speaker, split, seed and duration of the generated clip.
        true_text: what the speaker said.
        lip_read_text: the lip reader's text ('' without one).
        wer_lip_read: WER of ``lip_read_text`` against ``true_text``.
        asr: the ASR that transcribed the voiced audio, or None when skipped.
        asr_transcript: its transcript.
        wer_asr: WER of that transcript against ``true_text``.
        stoi: STOI of the voiced audio against the ground truth, after alignment.
        align_lag_ms: the delay the alignment removed.
        timings_s: seconds per step (``clip``, ``model``, ``voice``, ``score``) and ``total``.
        synthesis: the sidecar record of the synthesis (settings, per-stage timings, confidences).
        notes: why a score is missing, and warnings.
        files: the files written, by name.
    """

    model: Mapping[str, Any]
    clip: Mapping[str, Any]
    true_text: str
    lip_read_text: str
    wer_lip_read: Optional[float]
    asr: Optional[str]
    asr_transcript: Optional[str]
    wer_asr: Optional[float]
    stoi: Optional[float]
    align_lag_ms: float
    timings_s: Mapping[str, float]
    synthesis: Mapping[str, Any] = field(default_factory=dict)
    notes: Tuple[str, ...] = ()
    files: Tuple[str, ...] = ()

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        """The human summary written to ``report.txt`` and printed by ``l2s demo``."""
        pct = lambda v: "n/a" if v is None else f"{100 * v:.1f} %"  # noqa: E731
        clip, t = self.clip, self.timings_s
        lines = [
            f"model:          {self.model.get('name')} ({self.model.get('weights')} weights"
            + (f", trained on {self.model['trained_on']})" if self.model.get("trained_on") else ")"),
            f"clip:           {clip['id']} (held-out speaker {clip['speaker']}, {clip['duration_s']:.2f} s)",
            f"true text:      {self.true_text}",
            f"lip-read text:  {self.lip_read_text or '(empty)'}   WER {pct(self.wer_lip_read)}",
        ]
        if self.asr is not None:
            lines.append(f"{self.asr} of the voiced audio: {self.asr_transcript!r}   WER {pct(self.wer_asr)}")
        stoi = "n/a" if self.stoi is None else f"{self.stoi:.3f}"
        lines.append(f"STOI vs ground truth: {stoi} (aligned, lag {self.align_lag_ms:.0f} ms)")
        lines.append("time:           " + ", ".join(f"{k} {v:.1f} s" for k, v in t.items()))
        lines += [f"note:           {n}" for n in self.notes]
        lines.append("files:          " + " ".join(self.files))
        return "\n".join(lines) + "\n"


def demo_clip_spec(seed: int):
    """A fresh :class:`~l2s.corpora.synthgrid.generate.ClipSpec` of a held-out speaker on a test sentence.

    The speaker and sentence are one of the default corpus's ``test-unseen`` clips; the clip seed is
    new, so the rendering is not the corpus's own.
    """
    from l2s.corpora.synthgrid.generate import CorpusOptions, plan_corpus

    _, specs = plan_corpus(CorpusOptions())
    held_out = [s for s in specs if s.split == "test-unseen"]
    rng = np.random.default_rng(np.random.SeedSequence([seed, _SEED_STREAM]))
    spec = held_out[int(rng.integers(len(held_out)))]
    return replace(spec, seed=int(rng.integers(2 ** 32)))


def write_demo_clip(spec, folder: Path) -> None:
    """Make the clip and leave its silent video, landmark sidecar and true audio in ``folder``."""
    from l2s.corpora.synthgrid.generate import write_clip
    from l2s.vision.face import sidecar_path

    scratch = folder / ".clip"
    write_clip(spec, scratch, exact_video=True)  # the same input video, so the same scores, on every run
    stem = spec.stem(scratch)
    made = lambda suffix: stem.with_name(stem.name + suffix)  # noqa: E731
    os.replace(made(".mp4"), folder / INPUT_VIDEO)
    os.replace(made(".landmarks.npz"), sidecar_path(folder / INPUT_VIDEO))
    os.replace(made(".wav"), folder / GROUND_TRUTH_WAV)
    shutil.rmtree(scratch)


def _value(score, notes: List[str], what: str) -> Optional[float]:
    if score.ok:
        return score.value
    notes.append(f"no {what}: {score.reason}")
    return None


def transcribe_with(asr: str, wav: np.ndarray, device: str, notes: List[str]) -> Optional[str]:
    """The transcript of ``wav`` by ``asr`` (``whisper:NAME``), or None with a note when it is unavailable."""
    if asr == NO_ASR:
        notes.append("ASR transcript skipped (--asr none)")
        return None
    try:
        from l2s.asr.whisper import resolve_whisper, transcribe

        model = resolve_whisper(asr, "cpu" if device == "auto" else device)
    except (ImportError, DependencyError, L2SError) as exc:
        notes.append(f"ASR transcript skipped: {asr} is not available ({' '.join(str(exc).split())})")
        return None
    return transcribe(model, wav)


def score_demo(true_text: str, lip_read: Optional[str], truth: np.ndarray, voiced: np.ndarray, asr: str,
               device: str) -> Dict[str, Any]:
    """WERs of the lip-read text and of the voiced audio's transcript, and STOI after alignment.

    Args:
        truth: ``(N,)`` ground-truth speech at the contract rate.
        voiced: ``(M,)`` generated speech.
        lip_read: the lip reader's text, or None when the pipeline has none.
    """
    from l2s.metrics.align import align
    from l2s.metrics.intelligibility import stoi
    from l2s.metrics.wer import wer_cer

    notes: List[str] = []
    wer_lip = None
    if lip_read is None:
        notes.append("no lip-read WER: the pipeline has no lip reader")
    else:
        wer_lip = _value(wer_cer(true_text, lip_read)[0], notes, "lip-read WER")
    transcript = transcribe_with(asr, voiced, device, notes)
    wer_asr = None if transcript is None else _value(wer_cer(true_text, transcript)[0], notes, "ASR WER")
    pair = align(truth, voiced)
    return {"wer_lip_read": wer_lip, "asr": None if transcript is None else asr, "asr_transcript": transcript,
            "wer_asr": wer_asr, "stoi": _value(stoi(pair.ref, pair.hyp), notes, "STOI"),
            "align_lag_ms": 1000.0 * pair.lag_s, "notes": notes}


def _voice(pipe, video: Path, options: DemoOptions):
    """Run the pipeline, collecting its :class:`~l2s.pipeline.L2SWarning` messages instead of printing them."""
    from l2s.pipeline import L2SWarning
    from l2s.vision.face import sidecar_path

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", L2SWarning)
        result = pipe(video, steps=options.steps, solver=options.solver, seed=options.seed,
                      sidecar=sidecar_path(video))
    return result, list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, L2SWarning)))


def run_demo(out_dir: Path, load_pipeline: Callable[[], Any], options: DemoOptions = DemoOptions(),
             on_step: Callable[[int, str], None] = lambda i, label: None) -> DemoReport:
    """Generate, voice and score one held-out clip; write the demo folder ``out_dir`` atomically.

    Args:
        out_dir: destination folder (replaced if it holds an earlier demo; refused if it holds anything else).
        load_pipeline: returns the :class:`~l2s.pipeline.Lip2Speech` to demonstrate.
        on_step: called with the index into :data:`DEMO_STEPS` as each step starts (progress display).
    """
    from l2s.io.audio import read_audio
    from l2s.pipeline.outputs import sidecar_record, write_audio

    out = Path(out_dir)
    check_replaceable(out, REPORT_JSON)
    start = time.perf_counter()
    timings: Dict[str, float] = {}

    def lap(key: str, since: float) -> float:
        now = time.perf_counter()
        timings[key] = round(now - since, 3)
        return now

    on_step(0, DEMO_STEPS[0])
    pipe = load_pipeline()
    pipe.generator_settings(steps=options.steps, solver=options.solver)  # an option it lacks: refused here
    t = lap("model", start)
    with atomic_dir(out) as tmp:
        on_step(1, DEMO_STEPS[1])
        spec = demo_clip_spec(options.seed)
        write_demo_clip(spec, tmp)
        t = lap("clip", t)
        on_step(2, DEMO_STEPS[2])
        video = tmp / INPUT_VIDEO
        result, messages = _voice(pipe, video, options)
        write_audio(result, tmp / VOICED_WAV)
        write_audio(result, tmp / VOICED_VIDEO, video=video)
        t = lap("voice", t)
        on_step(3, DEMO_STEPS[3])
        lip_read = None if pipe.vsr is None else result.text
        scores = score_demo(spec.text, lip_read, read_audio(tmp / GROUND_TRUTH_WAV), result.wav, options.asr,
                            options.device)
        lap("score", t)
        on_step(4, DEMO_STEPS[4])
        timings["total"] = round(time.perf_counter() - start, 3)
        files = (INPUT_VIDEO, VOICED_VIDEO, VOICED_WAV, GROUND_TRUTH_WAV, REPORT_JSON, REPORT_TXT)
        clip = {"id": spec.utt_id, "speaker": spec.speaker.id, "split": spec.split, "seed": spec.seed,
                "duration_s": round(result.duration, 3)}
        synthesis = sidecar_record(result, INPUT_VIDEO, tmp / VOICED_WAV, {}, messages)
        synthesis.pop("model")  # the report names the model once, at the top
        report = DemoReport(model=pipe.describe(), clip=clip, true_text=spec.text, lip_read_text=result.text,
                            timings_s=timings, synthesis=synthesis, files=files,
                            **{**scores, "notes": tuple(scores["notes"] + messages)})
        atomic_write_text(tmp / REPORT_TXT, report.to_text())
        atomic_write_text(tmp / REPORT_JSON, json.dumps(report.to_dict(), indent=1, ensure_ascii=False) + "\n")
    return report
