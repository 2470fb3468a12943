"""``l2s bench --from-landmarks`` on an UNTRAINED micro pipeline: the JSON report's fields and their consistency."""

from __future__ import annotations

import json

from click.testing import CliRunner

from l2s.cli import main
from l2s.pipeline.pipeline import STAGES


def test_bench_reports_rtf_per_stage_and_the_generator_comparison(tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(main, ["bench", "--from-landmarks", "--untrained", "micro", "--clips", "1",
                                       "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["weights"] == "untrained" and "untrained" in report["note"]
    assert report["clips"] == 1 and report["audio_seconds"] > 1.0
    assert STAGES == ("roi", "vsr", "aligner", "prior", "generator", "vocoder")
    for stage in STAGES:
        assert report[f"rtf_{stage}"] >= 0
    assert report["rtf_total"] >= sum(report[f"rtf_{s}"] for s in STAGES) * 0.99
    cmp = report["generator_comparison"]
    ours, lipvoicer = cmp["ours"], cmp["lipvoicer_ddpm400"]
    assert lipvoicer["steps"] == 400 and lipvoicer["solver"] == "ddpm"
    # LipVoicer: CFG at each of the 400 steps (800 denoiser passes), ASR at steps 270..0 (271)
    assert (lipvoicer["generator_evals"], lipvoicer["guide_evals"]) == (800, 271)
    assert ours["network_evals"] < lipvoicer["network_evals"] / 20
    assert cmp["ours_unguided"]["network_evals"] == cmp["ours_unguided"]["steps"] == ours["steps"]
    assert cmp["speedup_network_evals"] > 20


def test_bench_refuses_model_and_untrained_together():
    result = CliRunner().invoke(main, ["bench", "--untrained", "micro", "--model", "x"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
