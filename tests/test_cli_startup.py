"""``l2s --help``, every command's ``--help`` and argument errors load no torch (the start-up of a CLI call).

Checked on the modules a fresh interpreter holds afterwards, which does not depend on the machine's
speed as a timing would; the wall time is measured by ``l2s bench`` (``startup`` in its report).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from l2s.cli import COMMANDS

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchaudio", "mediapipe", "cv2", "av", "speechbrain", "whisper")

# Runs each argument list through the CLI in one fresh interpreter and reports the exit codes and the
# heavy modules imported by then.
_PROBE = """
import json, sys
from l2s.cli import main
codes = []
for args in json.loads(sys.argv[1]):
    try:
        main(args, prog_name="l2s")
    except SystemExit as exc:
        codes.append(exc.code)
print(json.dumps({"codes": codes, "heavy": sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)}))
"""


def _probe(calls):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(calls), json.dumps(HEAVY)], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_help_of_every_command_imports_no_torch():
    calls = [["--help"]] + [[name, "--help"] for name in sorted(COMMANDS)]
    out = _probe(calls)
    assert out["codes"] == [0] * len(calls)
    assert out["heavy"] == [], out["heavy"]


def test_argument_errors_import_no_torch(tmp_path):
    calls = [["synthesize"],                                       # missing IN and -o
             ["synthesize", str(tmp_path / "x.mp4")],              # missing -o
             ["synthesize", "x.mp4", "-o", "y.wav", "--steps", "-1"],
             ["bench", "--clips", "0"],
             ["no-such-command"]]
    out = _probe(calls)
    assert out["codes"] == [2] * len(calls)
    assert out["heavy"] == [], out["heavy"]


def test_samplers_load_without_torchs_compiler():
    """diffusers' schedulers load without torch._dynamo (2 s of start-up); it still loads afterwards."""
    code = ("import sys\n"
            "from l2s.diffusion.schedules import linear_schedule, make_scheduler\n"
            "make_scheduler('dpmsolver++', linear_schedule(400)).set_timesteps(10)\n"
            "assert 'diffusers' in sys.modules and 'torch._dynamo' not in sys.modules\n"
            "import torch._dynamo\n"
            "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
