"""Packaging: the metadata, the lock that pins it, and the one-line errors for a missing extra or a torchaudio
whose compiled extension does not load."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from l2s.cli import main
from l2s.cli._group import L2SGroup
from l2s.extras import EXTRA_MODULES, MODULE_EXTRAS, dependency_error, missing_modules, torchaudio_error

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_metadata_licence_classifiers_and_core_dependencies():
    assert PYPROJECT["license"] == "Apache-2.0" and PYPROJECT["license-files"] == ["LICENSE"]
    assert "Apache License" in (REPO / "LICENSE").read_text() and "Version 2.0" in (REPO / "LICENSE").read_text()
    versions = {c.rsplit(":: ", 1)[1] for c in PYPROJECT["classifiers"] if c.startswith("Programming Language")}
    assert {"3.10", "3.11"} <= versions
    core = {_name(r): r for r in PYPROJECT["dependencies"]}
    assert "openai-whisper" not in core  # only evaluation and the demo transcribe
    assert core["setuptools"].replace(" ", "") == "setuptools<81"  # pyworld imports pkg_resources


def test_extras_match_the_module_table_and_the_lock():
    extras = PYPROJECT["optional-dependencies"]
    assert set(MODULE_EXTRAS.values()) <= set(extras)
    assert set(extras["demo"]) == {"l2s[corpus,eval]"}
    assert "openai-whisper" in {_name(r) for r in extras["eval"]}
    lock = {_name(line) for line in (REPO / "requirements-cpu.lock").read_text().splitlines()
            if line and not line.startswith("#")}
    for group in [PYPROJECT["dependencies"], *extras.values()]:
        for requirement in group:
            if not requirement.startswith("l2s["):
                assert _name(requirement) in lock, f"{requirement} is not pinned in requirements-cpu.lock"


def test_demo_without_its_extra_names_it_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "piper", None)  # as if piper-tts were not installed
    assert missing_modules(EXTRA_MODULES["demo"]) == ("piper",)
    result = CliRunner().invoke(main, ["demo", "-o", str(tmp_path / "demo")])
    assert result.exit_code == 2
    assert result.stderr.strip() == ("l2s: error: l2s demo needs the 'demo' extra (missing: piper): "
                                     "pip install 'l2s[demo]'")
    assert not (tmp_path / "demo").exists()


@click.command()
def _needs_jiwer() -> None:
    import jiwer  # noqa: F401


@click.command()
def _needs_a_typo() -> None:
    import l2s_no_such_module  # noqa: F401


@click.command()
def _broken_torchaudio() -> None:
    try:
        raise OSError("libc10_cuda.so: cannot open shared object file: No such file or directory")
    except OSError as exc:
        raise OSError("Could not load this library: /venv/site-packages/torchaudio/lib/_torchaudio.abi3.so") from exc


GROUP = L2SGroup(name="l2s", lazy_commands={"jiwer-cmd": f"{__name__}:_needs_jiwer",
                                            "typo-cmd": f"{__name__}:_needs_a_typo",
                                            "audio-cmd": f"{__name__}:_broken_torchaudio"})


def test_a_missing_extra_module_anywhere_in_a_command_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "jiwer", None)
    result = CliRunner().invoke(GROUP, ["jiwer-cmd"])
    assert result.exit_code == 2
    assert result.stderr.strip() == ("l2s: error: l2s jiwer-cmd needs the 'eval' extra (missing module 'jiwer'): "
                                     "pip install 'l2s[eval]'")


def test_a_missing_module_that_is_no_extra_stays_an_internal_error():
    result = CliRunner().invoke(GROUP, ["typo-cmd"])
    assert result.exit_code == 1 and "internal error: ModuleNotFoundError" in result.stderr


def test_torchaudio_extension_failure_is_one_line_with_the_fix():
    result = CliRunner().invoke(GROUP, ["audio-cmd"])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("l2s: error: torchaudio's compiled extension does not load here "
                           "(/venv/site-packages/torchaudio/lib/_torchaudio.abi3.so")
    assert "download.pytorch.org/whl/cpu" in line and "torchaudio/lib/*.so" in line
    assert torchaudio_error(OSError("disk full")) is None
    assert dependency_error(ModuleNotFoundError("x", name="numpyy")) is None


def test_pyworld_pkg_resources_warning_is_silenced():
    plain = subprocess.run([sys.executable, "-W", "always", "-c", "import pyworld"], capture_output=True, text=True,
                           timeout=120)
    if "pkg_resources" not in plain.stderr:
        pytest.skip("this pyworld/setuptools pair warns nothing to silence")
    code = ("import warnings, numpy as np; warnings.simplefilter('always'); "
            "from l2s.features.pitch import extract_f0; extract_f0(np.zeros(3200))")
    ours = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert ours.returncode == 0, ours.stderr
    assert "pkg_resources" not in ours.stderr
