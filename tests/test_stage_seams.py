"""The stage tables (:mod:`l2s.arch`): a toy generator and a toy vocoder join them from their own module
(``tests/toy_members.py``), a ``pipeline.yaml`` names them, and the pipeline runs them; every member of every
table saves and loads through them; the tables refuse what does not fit in one line."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from l2s import arch
from l2s.arch import FAMILIES, architectures, load_model, lookup, register, save_model, unregister
from l2s.cli import main
from l2s.config import ROI_SIZE, SAMPLES_PER_VIDEO_FRAME
from l2s.diffusion.schedules import NoiseScheduleConfig
from l2s.errors import InputError, ModelError
from l2s.pipeline import Lip2Speech, build_untrained_pipeline, read_spec
from l2s.pipeline.build import build_pipeline
from tests import toy_members
from tests.toy_members import ToyGenerator, ToySettings, ToyVocoder

FRAMES = 12
#: the whole of what a pipeline of the toy members needs beside their model directories
PIPELINE_YAML = """\
format_version: 2
kind: pipeline
name: toy
components: {vsr: vsr, prior: prior, generator: generator, vocoder: vocoder}
generator: {noise_scale: 0.0, passes: 3}
"""


@pytest.fixture
def toys():
    register(toy_members)
    yield
    unregister("generator", "toy")
    unregister("vocoder", "toy")


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    return build_untrained_pipeline(tmp_path_factory.mktemp("untrained") / "micro", "micro")


def _roi(frames: int = FRAMES) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (frames, ROI_SIZE, ROI_SIZE), dtype=np.uint8)


def _toy_pipeline(micro, root):
    root.mkdir()
    for component in ("vsr", "prior"):
        shutil.copytree(micro / component, root / component)
    save_model(lookup("generator", "toy").create("micro"), root / "generator")
    save_model(lookup("vocoder", "toy").create("loud"), root / "vocoder")
    (root / "pipeline.yaml").write_text(PIPELINE_YAML)
    return root


def test_a_toy_generator_and_vocoder_run_through_the_tables_alone(toys, micro, tmp_path):
    root = _toy_pipeline(micro, tmp_path / "toy")
    stored = yaml.safe_load((root / "generator" / "config.yaml").read_text())
    assert (stored["kind"], stored["arch"]) == ("generator", "toy")
    pipe = Lip2Speech.from_pretrained(root, device="cpu")
    assert isinstance(pipe.generator, ToyGenerator) and isinstance(pipe.vocoder, ToyVocoder)
    assert pipe.describe()["generator_arch"] == "toy" and pipe.vocoder.config.gain == 0.9
    assert pipe.generator.settings == ToySettings(noise_scale=0.0, passes=3)
    result = pipe(_roi(), seed=0)
    assert result.wav.shape == (FRAMES * SAMPLES_PER_VIDEO_FRAME,) and np.isfinite(result.wav).all()
    assert np.abs(result.wav).max() > 0
    assert result.network_evals == 3 and result.settings["passes"] == 3 and "solver" not in result.settings
    assert set(result.timings) == {"roi", "vsr", "aligner", "prior", "generator", "vocoder", "total"}
    # the mel is the toy's map of the lip reader's features (noise scale 0)
    with torch.no_grad():
        expected = pipe.generator.model(pipe.read_lips(_roi(), decode=False).features)[0].numpy()
    np.testing.assert_allclose(result.mel, expected, atol=1e-6)
    # a diffusion option means nothing to it: refused in one line naming the option
    with pytest.raises(InputError, match="toy generator has no option --steps"):
        pipe(_roi(), steps=3)
    with pytest.raises(InputError, match="--solver"):
        pipe.generator_settings(solver="ddpm")


def test_build_and_the_command_line_take_the_toy_members(toys, micro, tmp_path):
    root = _toy_pipeline(micro, tmp_path / "toy")
    built = build_pipeline(tmp_path / "built", {"vsr": micro / "vsr", "prior": micro / "prior",
                                                "generator": root / "generator", "vocoder": root / "vocoder"},
                           name="built", generator={"passes": 2})
    assert read_spec(built).generator == {"noise_scale": 0.1, "passes": 2}  # the rest: its settings' defaults
    assert Lip2Speech.from_pretrained(built, device="cpu")(_roi(), seed=1).network_evals == 2
    with pytest.raises(ModelError, match="steps"):
        build_pipeline(tmp_path / "bad", {"generator": root / "generator", "vocoder": root / "vocoder"}, name="x",
                       generator={"steps": 10})
    from l2s.bench import write_synthetic_clip

    video = write_synthetic_clip(tmp_path / "clip.mp4", FRAMES)
    out = tmp_path / "voiced.wav"
    args = ["synthesize", str(video), "-o", str(out), "--model", str(root), "--device", "cpu", "--seed", "0"]
    result = CliRunner().invoke(main, args + ["--steps", "3"])
    assert result.exit_code == 2 and not out.exists()
    assert result.stderr.strip().splitlines() == ["l2s: error: the toy generator has no option --steps "
                                                  "(its settings: noise_scale, passes)"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert out.is_file()


def test_l2s_train_runs_the_trainer_the_architecture_names(toys, tmp_path):
    """A generator with its own objective brings its own trainer: a recipe's ``arch`` picks it."""
    from l2s.train.runner import run

    recipe = tmp_path / "toy.yaml"
    recipe.write_text("stage: generator\narch: toy\npreset: micro\nmodel: {feature_dim: 16}\n"
                      "output_folder: !PLACEHOLDER\n")
    results = run([str(recipe), f"--output_folder={tmp_path / 'out'}"])
    assert results["loss"] > 0
    model = load_model(tmp_path / "out" / "model", "generator")
    assert type(model).__name__ == "ToyNet" and model.config.feature_dim == 16


def test_an_entry_point_module_joins_the_tables(tmp_path, monkeypatch):
    """A distribution that names a module in the ``l2s.architectures`` entry-point group adds its members."""
    dist = tmp_path / "toy_l2s-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-l2s\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{arch.ENTRY_POINT_GROUP}]\ntoys = tests.toy_members\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(arch, "_scanned", {})
    assert lookup("vocoder", "toy").model_cls is ToyVocoder
    assert lookup("generator", "toy").settings_cls is ToySettings
    assert "hifigan" in architectures("vocoder")  # the package's own members are still there
    (dist / "entry_points.txt").write_text(f"[{arch.ENTRY_POINT_GROUP}]\nbroken = tests.no_such_module\n")
    monkeypatch.setattr(arch, "_scanned", {})
    with pytest.raises(ModelError, match="tests.no_such_module"):
        architectures("vocoder")


def test_the_tables_hold_every_member():
    assert FAMILIES == ("vsr", "aligner", "prior", "generator", "guide", "vocoder")
    assert set(architectures("vsr")) == {"auto-avsr"}
    assert set(architectures("aligner")) == {"viterbi"}
    assert set(architectures("prior")) == {"ddsp"}
    assert set(architectures("generator")) == {"denoiser", "lipvoicer", "content-flow"}
    assert set(architectures("guide")) == {"ctc", "lipvoicer", "whisper"}
    assert set(architectures("vocoder")) == {"hifigan", "vocos", "griffinlim", "griffinlim-fast"}
    assert all(entry.family == family and entry.name == name for family in FAMILIES
               for name, entry in architectures(family).items())
    for family in ("generator", "guide"):  # what the pipeline runs is the architecture's stage
        assert all(entry.stage is not None for entry in architectures(family).values())
    assert all(entry.settings_cls is not None for entry in architectures("generator").values())


@pytest.mark.parametrize("family,name", [(f, n) for f in FAMILIES for n, e in architectures(f).items()
                                         if e.needs_weights])
def test_every_member_with_weights_saves_and_loads_through_the_table(family, name, tmp_path):
    entry = lookup(family, name)
    preset = next(p for p in ("micro", "tiny") if p in entry.presets)
    torch.manual_seed(0)
    model = entry.create(preset)
    loaded = load_model(save_model(model, tmp_path / name), family)
    assert type(loaded) is type(model) and loaded.config == model.config == entry.presets[preset]
    theirs, ours = loaded.state_dict(), model.state_dict()
    if family == "vocoder":  # loading folds weight norm, as inference wants it
        from l2s.vocoder.weight_norm import remove_weight_norm

        ours = remove_weight_norm(model).state_dict()
    assert theirs.keys() == ours.keys() and all(torch.equal(theirs[k], ours[k]) for k in ours)


def test_lookups_and_configs_refuse_what_does_not_fit(toys):
    with pytest.raises(ModelError, match=r"unknown vocoder architecture 'wavenet' \(known: .*hifigan"):
        lookup("vocoder", "wavenet")
    with pytest.raises(InputError, match="unknown stage family"):
        architectures("melgen")
    impostor = arch.Architecture(family="vocoder", name="toy", model_cls=ToyVocoder,
                                 config_cls=toy_members.ToyVocoderConfig)
    with pytest.raises(ModelError, match="two vocoder architectures are named 'toy'"):
        register(impostor)
    denoiser = lookup("generator", "denoiser")
    config = denoiser.configure("tiny", {"layers": 3, "schedule": {"kind": "cosine"}}, derived={"feature_dim": 32})
    assert (config.layers, config.feature_dim, config.channels) == (3, 32, 64)
    assert config.schedule == NoiseScheduleConfig(kind="cosine")  # the rest of the schedule: its defaults
    with pytest.raises(InputError, match="unknown DenoiserConfig field layerz"):
        denoiser.configure("tiny", {"layerz": 3})
    with pytest.raises(InputError, match="feature_dim cannot be set here"):
        denoiser.configure("tiny", {"feature_dim": 3}, derived={"feature_dim": 32})
    with pytest.raises(InputError, match="no preset 'huge'"):
        denoiser.configure("huge")
    with pytest.raises(InputError, match="expected bool"):
        denoiser.configure("tiny", {"residual_prior": "yes"})
