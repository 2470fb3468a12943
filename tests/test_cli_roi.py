"""``l2s roi`` through click's CliRunner: outputs on real faces, one-line errors on bad inputs."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from l2s.cli import main
from l2s.config import FPS, ROI_SIZE
from l2s.io.video import write_video
from l2s.vision.face import landmarks_box
from l2s.vision.roi import MEAN_FACE_68


@pytest.fixture(autouse=True)
def _no_progress_bar(monkeypatch):
    monkeypatch.delenv("L2S_PROGRESS", raising=False)
    monkeypatch.delenv("L2S_DEBUG", raising=False)


def _run(*args: str):
    return CliRunner().invoke(main, ["roi", *args])


def _assert_one_line_error(result, out_dir: Path) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.stderr)
    err = result.stderr.strip()
    assert err.startswith("l2s: error:") and "\n" not in err, err
    assert "Traceback" not in result.output
    assert list(out_dir.iterdir()) == [], "an output (or temporary) file was left behind"


def _gray_video(path: Path, num_frames: int = 8) -> None:
    write_video(path, np.full((num_frames, 64, 96, 3), 90, np.uint8), fps=FPS)


def _audio_only(path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


BAD_INPUTS = ["missing", "directory", "empty", "truncated", "text", "audio_only", "no_face", "bad_suffix",
              "missing_sidecar"]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_exit_2_one_line_no_output(tmp_path, case):
    src, out_dir = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out_dir.mkdir()
    video = src / "clip.mp4"
    output = out_dir / "roi.npz"
    extra = []
    if case == "directory":
        video = src
    elif case == "empty":
        video.touch()
    elif case == "truncated":
        _gray_video(video, num_frames=25)
        video.write_bytes(video.read_bytes()[: video.stat().st_size // 3])
    elif case == "text":
        video.write_text("this is not a video\n" * 10)
    elif case == "audio_only":
        _audio_only(video)
    elif case == "no_face":
        _gray_video(video)
    elif case == "bad_suffix":
        _gray_video(video)
        output = out_dir / "roi.txt"
    elif case == "missing_sidecar":
        _gray_video(video)
        extra = ["--sidecar", str(src / "nope.landmarks.npz")]
    result = _run(str(video), "-o", str(output), *extra)
    _assert_one_line_error(result, out_dir)


def test_npz_on_real_clip_frame_count(tmp_path, pyfeat_data):
    video = pyfeat_data / "WolfgangLanger_Pexels.mp4"
    out = tmp_path / "roi.npz"
    result = _run(str(video), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        duration = float(stream.duration * stream.time_base)
    with np.load(out) as data:
        roi, fps = data["roi"], int(data["fps"])
        found = data["found"]
    assert roi.dtype == np.uint8 and roi.shape[1:] == (ROI_SIZE, ROI_SIZE)
    assert abs(roi.shape[0] - round(duration * FPS)) <= 1
    assert fps == FPS and found.shape == (roi.shape[0],) and found.all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["roi.npz"]


def test_per_frame_detector_gives_about_the_same_crops(tmp_path, pyfeat_data):
    video = pyfeat_data / "single_face.mp4"
    crops = {}
    for mode in ("track", "per-frame"):
        result = _run(str(video), "-o", str(tmp_path / f"{mode}.npz"), "--detector", mode)
        assert result.exit_code == 0, result.stderr
        with np.load(tmp_path / f"{mode}.npz") as data:
            assert data["found"].all()
            crops[mode] = data["roi"].astype(np.float64)
    assert crops["track"].shape == crops["per-frame"].shape
    # the same mouth, cut from two detectors' landmarks: a few grey levels apart on average
    assert np.abs(crops["track"] - crops["per-frame"]).mean() < 6


def test_mp4_preview(tmp_path, pyfeat_data):
    out = tmp_path / "preview.mp4"
    result = _run(str(pyfeat_data / "single_face.mp4"), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert abs(len(frames) - round(2.4 * FPS)) <= 1
    height, width = frames[0].shape[:2]
    assert width == 2 * height and height >= ROI_SIZE
    right = frames[10][:, width // 2:].astype(int)
    assert np.abs(right[..., 0] - right[..., 1]).max() < 12  # the crop half is grayscale
    assert right.std() > 10


def test_sidecar_skips_detection(tmp_path):
    """A clip without a real face, whose sidecar says where the mouth is: the crop follows the sidecar."""
    num_frames = 10
    frames, points, boxes = [], [], []
    for t in range(num_frames):
        face = (MEAN_FACE_68 * 1.2 + (100 + t, 30)).astype(np.float32)
        img = np.full((320, 480, 3), 30, np.uint8)
        cv2.fillPoly(img, [np.round(face[48:60]).astype(np.int32)], (230, 230, 230))
        frames.append(img)
        points.append(face)
        boxes.append(landmarks_box(face))
    video = tmp_path / "utt.mp4"
    write_video(video, np.stack(frames), fps=FPS)
    points = np.stack(points)
    sidecar = tmp_path / "utt.landmarks.npz"
    np.savez(sidecar, face_box=np.stack(boxes), mouth_corners=points[:, [48, 54]], outer_lip=points[:, 48:60],
             inner_lip=points[:, 60:68])
    out = tmp_path / "roi.npz"
    result = _run(str(video), "-o", str(out), "--sidecar", str(sidecar))
    assert result.exit_code == 0, result.stderr
    with np.load(out) as data:
        roi = data["roi"]
    assert roi.shape == (num_frames, ROI_SIZE, ROI_SIZE)
    ys, xs = np.nonzero(roi[5] > 150)
    assert abs(xs.mean() - ROI_SIZE / 2) < 3 and abs(ys.mean() - ROI_SIZE / 2) < 3


def test_stdin_stdout_and_never_over_the_input(tmp_path):
    import hashlib
    import io

    from l2s.bench import write_synthetic_clip

    video = write_synthetic_clip(tmp_path / "clip.mp4", 10)
    side = str(tmp_path / "clip.landmarks.npz")
    data = video.read_bytes()
    piped = CliRunner().invoke(main, ["roi", "-", "-o", "-", "--sidecar", side], input=data)
    assert piped.exit_code == 0, piped.stderr
    with np.load(io.BytesIO(piped.stdout_bytes)) as arrays:
        assert arrays["roi"].shape == (10, ROI_SIZE, ROI_SIZE) and arrays["found"].all()
    before = hashlib.sha256(data).hexdigest()
    refused = _run(str(video), "-o", str(video), "--sidecar", side)
    assert refused.exit_code == 2 and "never writes over its inputs" in refused.stderr
    assert hashlib.sha256(video.read_bytes()).hexdigest() == before
