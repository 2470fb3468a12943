"""The ``l2s`` group itself: version, help, and the one-line error contract."""

import pytest
from click.testing import CliRunner

from l2s import __version__
from l2s.cli import COMMANDS, main


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_version():
    r = run("--version")
    assert r.exit_code == 0 and __version__ in r.output


def test_every_command_has_help():
    for name in COMMANDS:
        r = run(name, "--help")
        assert r.exit_code == 0, (name, r.output, r.stderr)
        assert "Usage:" in r.output


def test_unknown_command_is_one_line_exit_2():
    r = run("no-such-command")
    assert r.exit_code == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_model_error_is_one_line_exit_2(tmp_path, monkeypatch):
    monkeypatch.setattr("l2s.hub.bundled_dir", lambda name: None)  # a build without the bundled default
    r = run("demo", "-o", str(tmp_path / "demo"))
    assert r.exit_code == 2
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("l2s: error:")
    assert not (tmp_path / "demo").exists()


def test_demo_runs_on_the_bundled_default(tmp_path):
    """The README's main job: `l2s demo` on the bundled synthgrid-small."""
    import json

    from l2s.hub import bundled_dir

    if bundled_dir("synthgrid-small") is None:
        pytest.skip("this build has no bundled synthgrid-small")
    r = run("demo", "-o", str(tmp_path / "demo"), "--asr", "none")
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert report["model"]["name"] == "synthgrid-small" and report["model"]["weights"] == "trained"
    assert report["lip_read_text"] and 0.0 <= report["wer_lip_read"] <= 2.0
    assert report["stoi"] is not None and -1.0 <= report["stoi"] <= 1.0


def test_train_missing_recipe(tmp_path):
    r = run("train", str(tmp_path / "none.yaml"))
    assert r.exit_code == 2 and "no such recipe file" in r.stderr
