"""``l2s bench`` on the real path (a real face video, UNTRAINED micro pipeline): the report's stages and their
consistency, the start-up probe, the looped input, and the ROI-quality report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from l2s.benchmarks.media import loop_video
from l2s.benchmarks.startup import measure_startup
from l2s.cli import main
from l2s.io.video import iter_video_frames, probe_video
from l2s.pipeline import build_untrained_pipeline
from l2s.pipeline.pipeline import STAGES
from tests._io_media import frame_index, make_clip


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    return build_untrained_pipeline(tmp_path_factory.mktemp("micro") / "micro", "micro")


def test_loop_video_repeats_the_clip_without_reencoding(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", num_frames=20)
    looped = loop_video(clip, tmp_path / "looped.mp4", 2.0)  # 0.8 s a time: three times
    assert probe_video(looped).num_frames == 60
    assert [frame_index(f) for f in iter_video_frames(looped)] == list(range(20)) * 3


def test_video_bench_times_each_stage_of_both_paths(tmp_path, pyfeat_data, micro):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(main, ["bench", "--model", str(micro), "--video", str(pyfeat_data / "single_face.mp4"),
                                       "--no-startup", "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report["paths"]) == {"old", "new"} and report["threads"] == 1
    assert report["load_average_start"]["1min"] >= 0 and report["machine"]["cores"] >= 1
    for label, detector in (("old", "per-frame"), ("new", "track")):
        path = report["paths"][label]
        assert path["detector"] == detector and path["frames"] == 60 and path["face_found"] == 1.0
        assert path["audio_seconds"] == pytest.approx(2.4)
        s = path["stage_seconds"]
        # the face stage is landmarks + crops + waiting for frames; the run is the face stage, the networks, the mux
        assert s["face"] >= 0.99 * (s["landmarks"] + s["crop"] + s["decode_wait"])
        networks = sum(s[stage] for stage in STAGES[1:])
        assert s["total"] >= 0.99 * (s["face"] + networks + s["mux"])
        assert path["rtf_total"] == pytest.approx(s["total"] / 2.4, abs=1e-3)
        assert path["peak_rss_mb"] > 100 and path["torch_threads"] == 1
        assert path["cpu_seconds"]["total"] > 0 and path["load_average"]["before"] is not None
    assert report["paths"]["old"]["stage_seconds"]["decode_wait"] == report["paths"]["old"]["stage_seconds"]["decode"]
    assert set(report["speedup"]) >= {"total", "face", "cpu_face"}
    assert report["rtf_total"] == report["paths"]["new"]["rtf_total"]


def test_startup_times_help_and_a_cold_synthesize(pyfeat_data, micro):
    report = measure_startup(pyfeat_data / "single_face.mp4", str(micro), repeats=1)
    assert report["synthesize"]["clip_seconds"] == pytest.approx(2.4)
    assert 0 < report["help"]["wall_seconds"] < report["synthesize"]["wall_seconds"]
    assert report["synthesize"]["cpu_seconds"] > report["help"]["cpu_seconds"] > 0


def test_roi_quality_scores_both_detectors_against_a_sidecar(tmp_path, pyfeat_data, micro):
    """A sidecar written from the per-frame detector's own landmarks: its error is zero, the tracker's small."""
    from l2s.io.video import read_video
    from l2s.vision.face import DetectorOptions, landmarks_box, track_face

    video = pyfeat_data / "single_face.mp4"
    truth = track_face(read_video(video, with_audio=False).frames, DetectorOptions(mode="per-frame")).landmarks
    np.savez(tmp_path / "clip.landmarks.npz", face_box=np.stack([landmarks_box(p) for p in truth]),
             eye_corners=truth[:, [36, 39, 42, 45]], mouth_corners=truth[:, [48, 54]], outer_lip=truth[:, 48:60],
             inner_lip=truth[:, 60:68])
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "clip", "video": str(video), "landmarks": "clip.landmarks.npz",
                                    "text": "bin blue at f two now"}) + "\n")
    out = tmp_path / "quality.json"
    result = CliRunner().invoke(main, ["bench", "--roi-quality", "--manifest", str(manifest), "--model", str(micro),
                                       "--video", str(video), "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    corpus = report["corpus"]
    assert corpus["clips"] == 1 and corpus["no_face"] == []
    assert corpus["detectors"]["per-frame"]["landmark_error_px"] < 1e-3
    agreement = report["real_videos"]["single_face.mp4"]
    assert corpus["detectors"]["track"]["landmark_error_px"] == pytest.approx(agreement["mean_distance_px"], rel=0.5)
    assert 0 < agreement["mean_distance_interocular"] < 0.04
    assert all(d["wer"] >= 0 and d["face_found"] == 1.0 for d in corpus["detectors"].values())


@pytest.mark.parametrize("args", [["--from-landmarks", "--roi-quality"], ["--manifest", "m.jsonl"],
                                  ["--from-landmarks", "--loop-to", "60"], ["--video", "nope.mp4"]])
def test_bench_refuses_contradictory_options(args):
    result = CliRunner().invoke(main, ["bench", *args])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
