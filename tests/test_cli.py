"""The ``l2s`` group itself: version, help, and the one-line error contract."""

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


def test_model_error_is_one_line_exit_2(tmp_path):
    r = run("demo", "-o", str(tmp_path / "demo"))
    if r.exit_code == 0:  # a bundled default model exists: the demo must have written its report
        assert (tmp_path / "demo").is_dir()
    else:
        assert r.exit_code == 2
        assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("l2s: error:")


def test_train_missing_recipe(tmp_path):
    r = run("train", str(tmp_path / "none.yaml"))
    assert r.exit_code == 2 and "no such recipe file" in r.stderr
