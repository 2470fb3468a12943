"""``build_pipeline`` / ``l2s pipeline build`` on the components of an untrained micro pipeline."""

from __future__ import annotations

import shutil

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from l2s.cli import main
from l2s.config import ROI_SIZE, SAMPLES_PER_VIDEO_FRAME
from l2s.diffusion import DiffusionSettings, Guidance
from l2s.errors import InputError, ModelError
from l2s.hub import WEIGHTS_FILE
from l2s.pipeline import Lip2Speech, build_untrained_pipeline, read_spec
from l2s.pipeline.build import build_pipeline, directory_size
from l2s.pipeline.spec import COMPONENTS

FRAMES = 12


@pytest.fixture(scope="module")
def micro(tmp_path_factory) -> Path:
    return build_untrained_pipeline(tmp_path_factory.mktemp("untrained") / "micro", preset="micro")


def _components(root: Path) -> dict:
    return {c: root / c for c in COMPONENTS}


def _cli_args(root: Path, out: Path, **override) -> list:
    given = {c: str(root / c) for c in COMPONENTS}
    given.update(override)
    args = ["pipeline", "build", str(out), "--name", "built", "--trained-on", "synthgrid"]
    for comp, path in given.items():
        args += [f"--{comp}", path]
    return args


def _voice(pipe: Lip2Speech):
    roi = np.random.default_rng(0).integers(0, 256, (FRAMES, ROI_SIZE, ROI_SIZE), dtype=np.uint8)
    return pipe(roi, text="bin blue at f two now", steps=3, solver="dpmsolver++", seed=0)


def _weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / WEIGHTS_FILE))


def test_build_copies_components_and_writes_a_trained_spec(micro, tmp_path):
    settings = DiffusionSettings(solver="dpmsolver++", steps=4, asr_start=200, start_step=300)
    guidance = Guidance(w_video=1.0, w_asr=0.5)
    out = build_pipeline(tmp_path / "p", _components(micro), name="synthgrid-test", trained_on="synthgrid",
                         generator=settings, guidance=guidance, vsr_beam_size=3)
    spec = read_spec(out)
    assert spec.weights == "trained" and spec.name == "synthgrid-test" and spec.trained_on == "synthgrid"
    assert spec.components == {c: c for c in COMPONENTS}
    assert spec.guidance == guidance and spec.vsr_beam_size == 3 and spec.guide_tokenizer == "char"
    for comp in COMPONENTS:
        original, copied = _weights(micro / comp), _weights(out / comp)
        assert original.keys() == copied.keys()
        assert all(torch.equal(original[k], copied[k]) for k in original)
    pipe = Lip2Speech.from_pretrained(out, device="cpu")
    assert pipe.describe()["weights"] == "trained" and pipe.generator.settings == settings
    wav = _voice(pipe).wav
    assert wav.shape == (FRAMES * SAMPLES_PER_VIDEO_FRAME,) and np.isfinite(wav).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]  # no temporary sibling left


def test_half_storage_round_trip_is_close_to_float32(micro, tmp_path):
    shallow = {"solver": "dpmsolver++", "steps": 3, "start_step": 300}  # from the coarse prior: every stage counts
    full = build_pipeline(tmp_path / "full", _components(micro), name="full", generator=shallow)
    half = build_pipeline(tmp_path / "half", _components(micro), name="half", generator=shallow, half=True)
    assert directory_size(half) < 0.65 * directory_size(full)
    stored = _weights(half / "vsr")
    assert any(v.dtype == torch.float16 for v in stored.values())
    assert all(v.dtype != torch.float16 for k, v in stored.items() if "running_" in k)  # buffers stay float32
    aligner = _weights(half / "aligner")  # the aligner's mean phoneme durations are a buffer too
    assert aligner["durations.mean_duration"].dtype == torch.float32
    assert aligner["durations.embed.weight"].dtype == torch.float16
    a, b = Lip2Speech.from_pretrained(full, device="cpu"), Lip2Speech.from_pretrained(half, device="cpu")
    assert all(p.dtype == torch.float32 for p in b.generator.model.parameters())
    for ma, mb in ((a.vsr, b.vsr), (a.generator.model, b.generator.model), (a.vocoder, b.vocoder)):
        for pa, pb in zip(ma.parameters(), mb.parameters()):
            torch.testing.assert_close(pb, pa, rtol=1e-3, atol=1e-4)
    # the untrained vocoder's output hardly depends on its input: compare the generated mels
    mel_a, mel_b = _voice(a).mel, _voice(b).mel
    err = np.sqrt(np.mean((mel_a - mel_b) ** 2)) / np.sqrt(np.mean(mel_a ** 2))
    assert err < 0.01, err


def test_missing_or_wrong_components_are_refused(micro, tmp_path):
    with pytest.raises(InputError, match="missing: vocoder"):
        build_pipeline(tmp_path / "p", {"generator": micro / "generator"}, name="x")
    with pytest.raises(ModelError, match="expected 'vocoder'"):
        build_pipeline(tmp_path / "p", {**_components(micro), "vocoder": micro / "generator"}, name="x")
    with pytest.raises(ModelError, match="flow_steps"):  # a setting the generator's architecture does not have
        build_pipeline(tmp_path / "p", _components(micro), name="x", generator={"flow_steps": 3})
    assert not any(tmp_path.iterdir())


def test_cli_build_and_one_line_errors(micro, tmp_path):
    out = tmp_path / "built"
    result = CliRunner().invoke(main, _cli_args(micro, out) + ["--solver", "dpmsolver++", "--steps", "5", "--half"])
    assert result.exit_code == 0, result.output
    assert "kB" in result.stderr and str(out) in result.stderr
    spec = read_spec(out)
    assert spec.generator["solver"] == "dpmsolver++" and spec.generator["steps"] == 5
    assert spec.guidance == Guidance() and spec.generator["start_step"] is None
    for bad, args in (("bad-kind", _cli_args(micro, tmp_path / "bad1", vocoder=str(micro / "vsr"))),
                      ("no-dir", _cli_args(micro, tmp_path / "bad2", vsr=str(tmp_path / "nowhere"))),
                      ("no-vocoder", _cli_args(micro, tmp_path / "bad3", vocoder="no-such-vocoder"))):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, (bad, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("l2s: error:"), (bad, result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["built"]
    # a registered training-free vocoder is named in pipeline.yaml, not copied, and loads
    gl = tmp_path / "gl"
    result = CliRunner().invoke(main, _cli_args(micro, gl, vocoder="griffinlim"))
    assert result.exit_code == 0, result.output
    assert read_spec(gl).components["vocoder"] == "griffinlim" and not (gl / "griffinlim").exists()
    from l2s.pipeline import Lip2Speech
    from l2s.vocoder.griffinlim import GriffinLim

    assert isinstance(Lip2Speech.from_pretrained(gl, device="cpu").vocoder, GriffinLim)
    shutil.rmtree(gl)
    # an existing folder that is not a pipeline is never replaced
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "notes.txt").write_text("mine")
    result = CliRunner().invoke(main, _cli_args(micro, tmp_path / "keep"))
    assert result.exit_code == 2 and (tmp_path / "keep" / "notes.txt").read_text() == "mine"


def test_lipvoicer_architecture_components(tmp_path):
    untrained = build_untrained_pipeline(tmp_path / "lv", preset="micro", arch="lipvoicer")
    out = build_pipeline(tmp_path / "p", _components(untrained), name="lv", half=True)
    spec = read_spec(out)
    assert spec.guide_tokenizer == "char"  # its vocabulary is the character tokenizer's
    pipe = Lip2Speech.from_pretrained(out, device="cpu")
    assert pipe.describe()["generator_arch"] == "lipvoicer" and pipe.guide is not None
