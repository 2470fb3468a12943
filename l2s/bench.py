"""Speed benchmark of a pipeline: real-time factor per stage, and the generator's sampler against LipVoicer's.

The real-time factor (RTF) of a stage is its wall-clock time divided by the duration of the audio
it produces; ``rtf_total`` is the whole :class:`~l2s.pipeline.Lip2Speech` call (ROI extraction from
the video file included). Clips are generated SynthGRID clips (video + landmark sidecar) when the
corpus generator works here, else random-frame videos with a synthetic landmark sidecar: the speed
of every stage depends on sizes, not on content.

The generator comparison runs, on the same networks and the first clip: the pipeline's generator
settings (guided and unguided) and, for a diffusion generator, LipVoicer's sampler (ancestral DDPM over
every step of the schedule, classifier-free guidance at every step, the guide from step 270), counting
network evaluations and time.
"""

from __future__ import annotations

import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from l2s.config import FPS
from l2s.diffusion.guidance import Guidance
from l2s.diffusion.sampler import DiffusionSettings
from l2s.models.generator.lipvoicer import LIPVOICER_GUIDANCE, LIPVOICER_SETTINGS
from l2s.pipeline.pipeline import STAGES, Lip2Speech
from l2s.structs import to_dict

CLIP_SECONDS = 3.0


def write_synthetic_clip(path: Path, num_frames: int, seed: int = 0, size: int = 128) -> Path:
    """A random-frame H.264 video with a ``<stem>.landmarks.npz`` sidecar of a talking mouth.

    The frames are noise (what a network sees does not change its speed); the sidecar's lips
    open and close at about 4 Hz, so ROI extraction and chunking see a moving mouth.
    """
    from l2s.io.video import write_video
    from l2s.vision.face import sidecar_path

    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (num_frames, size, size, 3), dtype=np.uint8)
    write_video(path, frames)
    t = np.arange(num_frames) / FPS
    opening = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 2 * np.pi))
    cx, cy, half_w = size / 2, size * 0.7, size * 0.14
    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    outer = np.stack([cx + half_w * np.cos(angles)[None].repeat(num_frames, 0),
                      cy + (0.3 + 0.5 * opening)[:, None] * half_w * np.sin(angles)[None]], axis=-1)
    inner = np.stack([cx + 0.7 * half_w * np.cos(angles)[None].repeat(num_frames, 0),
                      cy + (0.05 + 0.4 * opening)[:, None] * half_w * np.sin(angles)[None]], axis=-1)
    box = np.tile(np.array([size * 0.2, size * 0.1, size * 0.8, size * 0.9]), (num_frames, 1))
    corners = outer[:, [6, 0]]  # left (angle pi), right (angle 0)
    np.savez(sidecar_path(path), face_box=box.astype(np.float32), mouth_corners=corners.astype(np.float32),
             outer_lip=outer.astype(np.float32), inner_lip=inner.astype(np.float32),
             found=np.ones(num_frames, dtype=bool))
    return path


def make_bench_clips(folder: Path, count: int, seconds: float = CLIP_SECONDS) -> Tuple[List[Path], str]:
    """``count`` video clips with sidecars, and where they come from (``synthgrid`` or ``synthetic``)."""
    try:
        from l2s.corpora.synthgrid.generate import CorpusOptions, plan_corpus, write_clip

        _, specs = plan_corpus(CorpusOptions(speakers=2, unseen_speakers=1, clips_per_speaker=max(count, 1)))
        paths = []
        for spec in specs[-count:]:  # the unseen speaker's clips
            write_clip(spec, folder)
            paths.append(spec.stem(folder).with_suffix(".mp4"))
        return paths, "synthgrid"
    except Exception:  # the corpus generator needs its TTS back-end; any failure means "not here"
        frames = int(round(seconds * FPS))
        return [write_synthetic_clip(folder / f"clip{i}.mp4", frames, seed=i) for i in range(count)], "synthetic"


def _sampler_run(pipe: Lip2Speech, roi: np.ndarray, features, prior, text: str, face, settings,
                 guidance: Guidance, alignment=None) -> Dict[str, Any]:
    start = time.perf_counter()
    sample = pipe.sample_mel(roi, features, None if prior is None else prior.mel_norm, text, face, None, settings,
                             guidance, seed=0, prior_f0=None if prior is None else prior.f0,
                             prior_voiced=None if prior is None else prior.voiced, alignment=alignment)
    seconds = time.perf_counter() - start
    return {**to_dict(settings), "steps": len(sample.timesteps), "w_video": guidance.w_video,
            "w_asr": guidance.w_asr, "generator_evals": sample.generator_evals, "guide_evals": sample.guide_evals,
            "network_evals": sample.network_evals, "seconds": round(seconds, 4)}


def compare_samplers(pipe: Lip2Speech, clip_path: Path, lipvoicer: bool = True) -> Dict[str, Any]:
    """The pipeline's generator settings (guided, unguided) against LipVoicer's sampler on one clip.

    LipVoicer's sampler (a diffusion generator only) is ancestral DDPM over every step of the generator's
    schedule (400 for LipVoicer and for our default), CFG at each step, the guide from step 270.
    """
    clip = pipe.roi(clip_path)
    lips = pipe.read_lips(clip.roi)
    text = lips.text or "bin blue at f two now"  # an untrained reader may read nothing; guide toward something
    prior = pipe.prior(lips.features, seed=0)
    alignment = pipe.align(lips.features, text)
    seconds = clip.num_frames / FPS
    settings, guidance = pipe.generator_settings(), pipe.guidance()
    run = lambda s, g: _sampler_run(pipe, clip.roi, lips.features, prior, text, clip.face, s, g,  # noqa: E731
                                    alignment)
    out = {"clip_seconds": seconds, "text": text, "ours": run(settings, guidance),
           "ours_unguided": run(settings, replace(guidance, w_asr=0.0, w_video=0.0))}
    schedule = pipe.generator.schedule
    out["schedule_steps"] = None if schedule is None else schedule.num_steps
    if lipvoicer and isinstance(settings, DiffusionSettings):
        out["lipvoicer_ddpm400"] = run(LIPVOICER_SETTINGS, LIPVOICER_GUIDANCE)
        lv, us = out["lipvoicer_ddpm400"], out["ours"]
        out["speedup_network_evals"] = round(lv["network_evals"] / max(1, us["network_evals"]), 2)
        out["speedup_time"] = round(lv["seconds"] / max(1e-9, us["seconds"]), 2)
    for key in ("ours", "ours_unguided", "lipvoicer_ddpm400"):
        if key in out:
            out[key]["rtf"] = round(out[key]["seconds"] / seconds, 4)
            out[key]["network_evals_per_audio_second"] = round(out[key]["network_evals"] / seconds, 2)
    return out


def run_bench(pipe: Lip2Speech, clips: int = 3, lipvoicer: bool = True,
              log: Callable[[str], None] = lambda line: None, workdir: Optional[Path] = None) -> Dict[str, Any]:
    """Benchmark ``pipe`` on ``clips`` generated clips; returns the JSON-ready report.

    One untimed warm-up run comes first (lazy imports, allocator growth).
    """
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        paths, source = make_bench_clips(Path(tmp), clips)
        log(f"{len(paths)} {source} clips")
        pipe(paths[0], seed=0)  # warm-up
        totals = {stage: 0.0 for stage in (*STAGES, "total")}
        audio = 0.0
        evals = 0
        for i, path in enumerate(paths):
            result = pipe(path, seed=i)
            audio += result.duration
            evals += result.network_evals
            for stage in totals:
                totals[stage] += float(result.timings.get(stage, 0.0))
            log(f"clip {i + 1}/{len(paths)}: {result.duration:.2f} s of audio in {result.timings['total']:.2f} s")
        log("generator comparison" + (" (LipVoicer's sampler included)" if lipvoicer else ""))
        comparison = compare_samplers(pipe, paths[0], lipvoicer)
    report: Dict[str, Any] = {
        "model": pipe.describe(),
        "weights": pipe.spec.weights,
        "device": str(pipe.device),
        "threads": torch.get_num_threads(),
        "clips": len(paths),
        "clip_source": source,
        "audio_seconds": round(audio, 3),
        "rtf_total": round(totals["total"] / audio, 4),
    }
    for stage in STAGES:
        report[f"rtf_{stage}"] = round(totals[stage] / audio, 4)
    report["rtf_generator_unguided"] = comparison["ours_unguided"]["rtf"]
    report["network_evals_per_audio_second"] = round(evals / audio, 2)
    report["stage_seconds"] = {k: round(v, 4) for k, v in totals.items()}
    report["generator_comparison"] = comparison
    report["environment"] = {"torch": torch.__version__, "python": platform.python_version(),
                             "machine": platform.machine(), "processor": platform.processor() or None,
                             "cuda": torch.cuda.get_device_name(0) if pipe.device.type == "cuda" else None}
    if pipe.spec.weights == "untrained":
        report["note"] = ("untrained components (random weights): the audio is noise, but every stage runs "
                          "the real code at the preset's sizes, so the timings are real")
    return report
