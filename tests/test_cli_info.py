"""``l2s info``: a good clip described (text and JSON), every bad input -> exit 2 and one line on stderr."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from click.testing import CliRunner

from l2s.cli import main
from l2s.vision.roi import MEAN_FACE_68
from tests._io_media import make_audio_only, make_clip, make_corrupt_copy


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("info")
    good = make_clip(d / "good.mp4", fps=Fraction(30), num_frames=45, audio=(440.0, 44100, 2))
    rotated = make_clip(d / "rotated.mp4", rotation=90, num_frames=5)
    (d / "text.mp4").write_text("definitely not a video\n")
    (d / "empty.mp4").write_bytes(b"")
    (d / "folder.mp4").mkdir()
    data = good.read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 2])
    make_audio_only(d / "voice.m4a")
    make_corrupt_copy(good, d / "corrupt.mp4")
    return d, good, rotated


def _run(*args):
    return CliRunner().invoke(main, ["info", *map(str, args)])


@pytest.mark.parametrize("name", ["missing.mp4", "folder.mp4", "empty.mp4", "text.mp4", "truncated.mp4", "voice.m4a",
                                  "corrupt.mp4"])
def test_bad_input_exit_2_one_line(clips, name):
    d, _, _ = clips
    result = _run(d / name, "--no-face")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("l2s: error: ") and name in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_good_clip_text(clips):
    _, good, _ = clips
    result = _run(good, "--no-face")
    assert result.exit_code == 0, result.stderr
    fields = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())
    assert fields["duration"] == "1.500 s"
    assert fields["fps"].startswith("30 ")
    assert fields["resolution"] == "64x48"
    assert fields["frames at 25 fps"] == "38"  # ceil(1.5 * 25)
    assert fields["audio"].startswith("yes (aac, 44100 Hz, 2 ch")
    assert fields["rotation"] == "0 degrees"
    assert fields["face"] == "not checked (--no-face)"


def test_json_and_rotation(clips):
    _, _, rotated = clips
    result = _run(rotated, "--json", "--no-face")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert (record["width"], record["height"], record["rotation"]) == (48, 64, 90)
    assert record["frames_25fps"] == 5 and record["has_audio"] is False
    assert record["face"]["checked"] is False


def test_face_check_uses_vision_lazily(clips, monkeypatch):
    _, good, _ = clips
    import l2s.cli.info as info_mod

    seen = []

    face = (MEAN_FACE_68 * 0.1).astype(np.float32)

    def fake_detect(frames):
        # One "face" in every other frame: exercises the wiring without MediaPipe's start-up time.
        out = []
        for i, frame in enumerate(frames):
            seen.append(frame.shape)
            out.append([face] if i % 2 == 0 else [])
        return out

    monkeypatch.setattr(info_mod, "_face_detector", lambda: fake_detect)
    record = json.loads(_run(good, "--json").stdout)
    assert len(seen) == 38 and seen[0] == (48, 64, 3)
    assert record["face"] == {"checked": True, "found": True, "frames_with_face": 19, "max_faces": 1,
                              "frames_tracked": 19, "reason": None}

    monkeypatch.setattr(info_mod, "_face_detector", lambda: None)
    result = _run(good)
    assert result.exit_code == 0
    assert "face: not checked (vision module unavailable)" in result.stdout

    def detector_without_mediapipe(frames):
        next(frames)  # fails when its backend starts, after pulling a frame at most
        raise ModuleNotFoundError("No module named 'mediapipe'")

    monkeypatch.setattr(info_mod, "_face_detector", lambda: detector_without_mediapipe)
    record = json.loads(_run(good, "--json").stdout)
    assert record["frames_25fps"] == 38 and record["face"]["reason"] == "vision module unavailable"


def test_face_check_real_detector_finds_no_face_in_flat_frames(clips):
    pytest.importorskip("mediapipe")
    pytest.importorskip("l2s.vision.face")
    _, _, rotated = clips
    result = _run(rotated)
    # Described on stdout, then refused: a clip without a face cannot be voiced.
    assert result.exit_code == 2
    assert "face: not found (0 of 5 frames)" in result.stdout
    assert result.stderr.strip().splitlines() == [f"l2s: error: {rotated}: no face found in any of its 5 frames"]


def test_info_and_roi_agree_on_the_tracked_face(tmp_path, monkeypatch):
    """A cut: face A in the first 10 frames, a smaller face B elsewhere in the last 10. info counts a face in
    all 20 frames, and the tracked face (A, what roi crops) in 10; roi says 10 too, and where A is missing."""
    from l2s.bench import write_synthetic_clip

    video = write_synthetic_clip(tmp_path / "cut.mp4", 20, size=128)
    (tmp_path / "cut.landmarks.npz").unlink()  # detection, not the sidecar
    big = (MEAN_FACE_68 * 0.4).astype(np.float32)
    small = (MEAN_FACE_68 * 0.25 + 60).astype(np.float32)

    def detect(frames, options=None, on_frame=None):
        out = []
        for t, _ in enumerate(frames):
            out.append([big] if t < 10 else [small])
            if on_frame is not None:
                on_frame()
        return out

    monkeypatch.setattr("l2s.vision.face.detect_faces", detect)
    described = _run(video)
    assert described.exit_code == 0, described.stderr
    assert ("face: found in 20 of 20 frames (up to 1 per frame); the tracked face (the one l2s roi crops and "
            "l2s synthesize voices) in 10") in described.stdout
    cropped = CliRunner().invoke(main, ["roi", str(video), "-o", str(tmp_path / "roi.npz")])
    assert cropped.exit_code == 0, cropped.stderr
    assert cropped.stderr.strip() == f"{tmp_path / 'roi.npz'}: 20 frames, the tracked face found in 10; no face in " \
                                     "0.40-0.80 s"
    with np.load(tmp_path / "roi.npz") as data:
        assert int(data["found"].sum()) == json.loads(_run(video, "--json").stdout)["face"]["frames_tracked"] == 10
