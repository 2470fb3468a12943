"""The compatibility reader (:mod:`l2s.compat`): what l2s wrote before the stages were renamed still loads.

Format 1 named the stages ``f0_ddsp``, ``melgen`` and ``guide_asr`` (recipes: ``asr_guide``), kept an ``arch``
inside ``config`` (vocoders, LipVoicer networks) or none, and gave ``pipeline.yaml`` one ``sampler:`` section.
The bundled ``synthgrid-small`` was such a directory until its rebuild; :func:`to_format1` writes them as that
code did.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from l2s.arch import load_model
from l2s.compat import stage_name
from l2s.diffusion import Guidance
from l2s.errors import ModelError
from l2s.hub import CONFIG_FILE, PIPELINE_FILE, bundled_dir, read_model_meta
from l2s.pipeline import Lip2Speech, build_untrained_pipeline, read_spec

OLD = {"prior": "f0_ddsp", "generator": "melgen", "guide": "guide_asr"}


def to_format1(root: Path) -> Path:
    """Rewrite a pipeline directory in place as format 1: old component and kind names, ``arch`` inside
    ``config`` for vocoders and LipVoicer networks (none for l2s's own), one ``sampler:`` section."""
    meta = yaml.safe_load((root / PIPELINE_FILE).read_text())
    components = {}
    for component, sub in meta["components"].items():
        old = OLD.get(component, component)
        components[old] = old
        model = yaml.safe_load((root / sub / CONFIG_FILE).read_text())
        arch, config = model.pop("arch"), model["config"]
        if component == "vocoder" or arch == "lipvoicer":
            config = {"arch": arch, **config}
            if arch == "lipvoicer":
                config.pop("schedule")  # LipVoicer's own schedule was pipeline.yaml's
        if arch == "denoiser":
            config["drop_prior_with_video"] = True
        model.update(format_version=1, kind=OLD.get(model["kind"], model["kind"]), config=config)
        (root / sub / CONFIG_FILE).write_text(yaml.safe_dump(model, sort_keys=False))
        if old != sub:
            (root / sub).rename(root / old)
    sampler = {"schedule": {"num_steps": 400, "beta_0": 0.0001, "beta_T": 0.02}, **meta.pop("generator"),
               **meta.pop("guidance")}
    meta.update(format_version=1, components=components, sampler=sampler)
    (root / PIPELINE_FILE).write_text(yaml.safe_dump(meta, sort_keys=False))
    return root


def _roi(frames: int = 12) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (frames, 96, 96), dtype=np.uint8)


def test_the_bundled_pipeline_is_format2_with_the_content_flow_generator():
    """The bundle was rebuilt with the content-flow generator in the current format (the format-1 reader is
    covered by :func:`to_format1` below)."""
    from l2s.diffusion.flow import FlowSettings

    root = bundled_dir("synthgrid-small")
    stored = yaml.safe_load((root / PIPELINE_FILE).read_text())
    assert stored["format_version"] == 2 and "sampler" not in stored
    spec = read_spec(root)
    assert spec.components == {c: c for c in ("vsr", "aligner", "prior", "generator", "guide", "vocoder")}
    expected = {"vsr": "auto-avsr", "aligner": "viterbi", "prior": "ddsp", "generator": "content-flow",
                "guide": "ctc", "vocoder": "vocos"}
    for sub, arch in expected.items():
        meta = read_model_meta(root / sub)
        assert (meta["kind"], meta["arch"]) == (sub, arch)
    pipe = Lip2Speech.from_pretrained("synthgrid-small", device="cpu")
    # the content decoder's mean alone: it measured better than the refiner's 4 steps
    assert pipe.generator.arch == "content-flow" and pipe.generator.settings == FlowSettings(steps=0)
    assert pipe.spec.guidance == Guidance(w_video=0.0, w_asr=0.0)
    # the generator reads the aligner's phonemes: the same inventory
    assert pipe.generator.model.inventory == pipe.aligner.inventory


@pytest.mark.parametrize("variant", ["l2s", "lipvoicer"])
def test_a_format1_pipeline_gives_the_same_speech(variant, tmp_path):
    current = build_untrained_pipeline(tmp_path / "current", "micro", arch=variant)
    old = to_format1(shutil.copytree(current, tmp_path / "old"))
    assert yaml.safe_load((old / "melgen" / CONFIG_FILE).read_text())["kind"] == "melgen"
    a = Lip2Speech.from_pretrained(current, device="cpu")
    b = Lip2Speech.from_pretrained(old, device="cpu")
    assert b.spec.components["generator"] == "melgen" and b.generator.settings == a.generator.settings
    assert b.spec.guidance == a.spec.guidance and b.generator.schedule == a.generator.schedule
    for kwargs in ({}, {"text": "bin blue", "w_asr": 1.5}):
        wa, wb = a(_roi(), seed=0, **kwargs), b(_roi(), seed=0, **kwargs)
        np.testing.assert_array_equal(wa.mel, wb.mel)
        np.testing.assert_array_equal(wa.wav, wb.wav)
        assert wa.alignment == wb.alignment and wa.alignment is not None


def test_format1_leftovers_that_change_behaviour_are_refused(tmp_path):
    old = to_format1(build_untrained_pipeline(tmp_path / "p", "micro"))
    meta = yaml.safe_load((old / PIPELINE_FILE).read_text())
    meta["sampler"]["schedule"]["num_steps"] = 200
    (old / PIPELINE_FILE).write_text(yaml.safe_dump(meta))
    with pytest.raises(ModelError, match="schedule is now stored in its own config.yaml"):
        read_spec(old)
    meta["format_version"] = 3
    (old / PIPELINE_FILE).write_text(yaml.safe_dump(meta))
    with pytest.raises(ModelError, match="format_version 3"):
        read_spec(old)
    model = yaml.safe_load((old / "melgen" / CONFIG_FILE).read_text())
    model["config"]["drop_prior_with_video"] = False
    (old / "melgen" / CONFIG_FILE).write_text(yaml.safe_dump(model))
    with pytest.raises(ModelError, match="drop_prior_with_video"):
        load_model(old / "melgen", "generator")


def test_old_stage_names_in_recipes_are_read(tmp_path):
    from l2s.train.runner import STAGES, load_hparams

    assert [stage_name(s) for s in ("f0_ddsp", "melgen", "guide_asr", "asr_guide", "vsr", "vocoder")] == \
        ["prior", "generator", "guide", "guide", "vsr", "vocoder"]
    recipe = tmp_path / "old.yaml"
    recipe.write_text("extends: " + str(Path(__file__).resolve().parents[1] / "recipes/common/generator.yaml")
                      + "\nstage: melgen\n")
    hparams = load_hparams(str(recipe), "data_folder: x\nvsr_model: x\nprior_model: x\noutput_folder: y\n")
    assert hparams["stage"] == "generator" and hparams["stage"] in STAGES
