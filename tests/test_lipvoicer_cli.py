"""``l2s convert lipvoicer`` through click's CliRunner."""

from __future__ import annotations

import yaml
from click.testing import CliRunner

from l2s.cli import main
from l2s.hub import load_model_dir


def _args(fx, out, **swap):
    files = {"--melgen": fx / "melgen.small.safetensors", "--asr": fx / "asr.small.safetensors",
             "--vocoder": fx / "hifigan.small.safetensors", "--vocoder-config": fx / "hifigan.small.config.json"}
    files.update(swap)
    args = ["convert", "lipvoicer"]
    for k, v in files.items():
        args += [k, str(v)]
    return args + [str(out)]


def _one_line_error(result) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("l2s: error:") and "Traceback" not in result.stderr


def test_convert_writes_a_pipeline(tmp_path, lipvoicer_fixtures):
    out = tmp_path / "lipvoicer"
    r = CliRunner().invoke(main, _args(lipvoicer_fixtures, out))
    assert r.exit_code == 0, r.stderr
    assert "0 unexpected, 0 missing" in r.stderr
    meta = yaml.safe_load((out / "pipeline.yaml").read_text())
    assert meta["components"] == {"generator": "generator", "guide": "guide", "vocoder": "vocoder"}
    assert meta["guidance"]["w_video"] == 2.0 and meta["generator"]["asr_start"] == 270
    assert load_model_dir(out / "generator", kind="generator").arch == "lipvoicer"
    assert load_model_dir(out / "vocoder", kind="vocoder").config["upsample_initial_channel"] == 32
    # an existing, non-empty OUT is refused without --force
    _one_line_error(CliRunner().invoke(main, _args(lipvoicer_fixtures, out)))


def test_bad_inputs_leave_nothing_behind(tmp_path, lipvoicer_fixtures):
    out = tmp_path / "out"
    _one_line_error(CliRunner().invoke(main, _args(lipvoicer_fixtures, out, **{"--asr": tmp_path / "none.ckpt"})))
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    _one_line_error(CliRunner().invoke(main, _args(lipvoicer_fixtures, out, **{"--melgen": junk})))
    # the ASR checkpoint given as MelGen: its keys do not fit
    _one_line_error(CliRunner().invoke(main, _args(lipvoicer_fixtures, out,
                                                   **{"--melgen": lipvoicer_fixtures / "asr.small.safetensors"})))
    assert not out.exists() and list(tmp_path.iterdir()) == [junk]
