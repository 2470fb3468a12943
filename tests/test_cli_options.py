"""The options every command shares (``--device``, ``-v``, ``-q``) and the group's error contract:
Ctrl-C, a file-system error, ``-`` where a folder is expected."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from l2s.bench import write_synthetic_clip
from l2s.cli import COMMANDS, main
from l2s.pipeline import build_untrained_pipeline

REPO = Path(__file__).resolve().parents[1]
DEVICE_COMMANDS = ("synthesize", "transcribe", "align", "evaluate", "bench", "vocode", "demo")
NESTED = (("prepare", "grid"), ("corpus", "synthgrid"), ("lm", "estimate"), ("pipeline", "build"),
          ("convert", "lipvoicer"))


def run(*args, **kwargs):
    return CliRunner().invoke(main, [str(a) for a in args], **kwargs)


def one_line(result, code: int = 2, start: str = "l2s: error:") -> str:
    assert result.exit_code == code, (result.output, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(start), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_synthetic_clip(tmp_path_factory.mktemp("clip") / "a.mp4", 10)


def test_device_option_is_one_option_with_one_default():
    for name in DEVICE_COMMANDS:
        r = run(name, "--help")
        assert r.exit_code == 0, r.output
        flat = " ".join(r.output.split())
        assert "--device auto|cpu|cuda[:N]" in flat and "[default: auto]" in flat.split("--device", 1)[1], name


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_on_a_cpu_only_torch_is_one_line_everywhere(clip, tmp_path):
    model = build_untrained_pipeline(tmp_path / "micro", "micro")
    wav = tmp_path / "in.wav"
    sf.write(str(wav), np.zeros(1600, np.float32), 16000)
    calls = {
        "transcribe": ["transcribe", clip, "--device", "cuda", "--model", model],
        "align": ["align", clip, "--text", "bin", "--device", "cuda", "--model", model],
        "synthesize": ["synthesize", clip, "-o", tmp_path / "o.wav", "--device", "cuda:1", "--model", model],
        "vocode": ["vocode", wav, "-o", tmp_path / "v.wav", "--device", "cuda"],
        "evaluate": ["evaluate", "--ref", tmp_path, "--hyp", tmp_path, "--device", "cuda", "--out", tmp_path / "e"],
        "bench": ["bench", "--model", model, "--device", "cuda"],
    }
    for name, args in calls.items():
        line = one_line(run(*args))
        assert "--device cuda" in line and ("CPU-only" in line or "no CUDA device" in line), (name, line)
    assert not (tmp_path / "o.wav").exists() and not (tmp_path / "v.wav").exists() and not (tmp_path / "e").exists()


def test_a_misspelt_device_is_a_usage_error(clip):
    line = one_line(run("transcribe", clip, "--device", "gpu"))
    assert "'gpu' is not a device: expected auto, cpu, cuda or cuda:N" in line


def test_verbose_and_quiet_on_every_command_nested_ones_too():
    names = [(name,) for name in COMMANDS] + list(NESTED)
    for path in names:
        for flag in ("-v", "--verbose", "-q", "--quiet"):
            r = run(*path, flag, "--help")
            assert r.exit_code == 0, (path, flag, r.output)
        assert "--quiet" in run(*path, "--help").output, path
    assert run("-v", "-q", "info", "--help").exit_code == 0  # on the group as well


def test_quiet_hides_the_progress_bar(clip):
    shown = run("info", clip, "--no-face", env={"L2S_PROGRESS": "1"})
    assert shown.exit_code == 0 and "scanning" in shown.stderr
    quiet = run("info", clip, "--no-face", "-q", env={"L2S_PROGRESS": "1"})
    assert quiet.exit_code == 0 and "scanning" not in quiet.stderr and quiet.stdout == shown.stdout


def test_ctrl_c_is_exit_130_with_a_message(clip, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("l2s.io.video.probe_video", interrupted)
    r = run("info", clip)
    assert r.exit_code == 130 and r.stderr.strip() == "l2s: interrupted"


def test_a_file_system_error_names_its_file(clip, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), "/mnt/out/x.json")

    monkeypatch.setattr("l2s.io.video.probe_video", read_only)
    assert one_line(run("info", clip)) == "l2s: error: /mnt/out/x.json: Read-only file system"

    def bug(*args, **kwargs):
        raise OSError(errno.ENOENT, "No such file or directory", "/internal/cache")  # not the user's to fix

    monkeypatch.setattr("l2s.io.video.probe_video", bug)
    assert "internal error" in one_line(run("info", clip), code=1, start="l2s: internal error:")


def test_dash_is_refused_where_a_folder_is_expected(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a folder named '-' used to appear
    for args in (["demo", "-o", "-"], ["evaluate", "--ref", ".", "--hyp", ".", "--out", "-"],
                 ["corpus", "synthgrid", "-"], ["prepare", "grid", ".", "-"], ["sync-expert", "m.jsonl", "-"]):
        line = one_line(run(*args))
        assert "'-' (stdin/stdout) cannot be used here: this is a folder" in line, args
    assert not (tmp_path / "-").exists()


def test_native_log_lines_are_silenced_unless_asked_for():
    """MediaPipe and absl write to file descriptor 2 from C++; l2s's own stderr must still show."""
    script = ("import os, sys\n"
              "from l2s.cli._options import quiet_native_logs\n"
              "with quiet_native_logs():\n"
              "    os.write(2, b'NATIVE\\n')\n"
              "    print('PYTHON', file=sys.stderr)\n"
              "os.write(2, b'AFTER\\n')\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("L2S_DEBUG", None)
    quiet = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert quiet.returncode == 0 and quiet.stderr.split() == ["PYTHON", "AFTER"], quiet.stderr
    debug = subprocess.run([sys.executable, "-c", script], env={**env, "L2S_DEBUG": "1"}, capture_output=True,
                           text=True, timeout=60)
    assert debug.stderr.split() == ["NATIVE", "PYTHON", "AFTER"], debug.stderr


def test_verbosity_given_to_the_group_or_the_command_counts():
    @click.command()
    def probe() -> None:
        from l2s.cli._options import is_quiet, is_verbose

        click.echo(f"{is_verbose()} {is_quiet()}")

    from l2s.cli._group import augment

    augment(probe)
    main.add_command(probe, "probe-options")
    try:
        assert run("probe-options").stdout.split() == ["False", "False"]
        assert run("-v", "probe-options").stdout.split() == ["True", "False"]
        assert run("probe-options", "-v", "-q").stdout.split() == ["True", "True"]
        assert run("probe-options").stdout.split() == ["False", "False"]  # nothing carried between runs
    finally:
        main.commands.pop("probe-options")
