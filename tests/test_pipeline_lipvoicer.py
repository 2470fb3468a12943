"""A LipVoicer pipeline (converted from the fixture checkpoints) through Lip2Speech: the recorded 10-step
guided run of LipVoicer's own sampling() is replayed by the pipeline's generator, guide and vocoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from l2s.arch import load_stage
from l2s.diffusion import DiffusionSettings, ReplayNoise
from l2s.errors import ModelError
from l2s.hub import CONFIG_FILE, PIPELINE_FILE
from l2s.models.generator.base import GeneratorInputs
from l2s.pipeline import L2SWarning, Lip2Speech
from tests._lipvoicer import converted_pipeline


def _pipeline(fx, out):
    converted_pipeline(fx, out, num_steps=10)  # the recorded run's schedule
    meta = yaml.safe_load((out / PIPELINE_FILE).read_text())
    meta["generator"]["asr_start"] = 6
    (out / PIPELINE_FILE).write_text(yaml.safe_dump(meta))
    return Lip2Speech.from_pretrained(out, device="cpu")


def test_pipeline_replays_lipvoicer(tmp_path, lipvoicer_fixtures):
    io = load_file(str(lipvoicer_fixtures / "sampler.small.io.safetensors"))
    pipe = _pipeline(lipvoicer_fixtures, tmp_path / "lipvoicer")
    assert pipe.generator.arch == "lipvoicer" and pipe.vsr is None and pipe.prior_model is None
    assert pipe.guide is None  # the bundle has no SentencePiece file: no text -> tokens here
    assert pipe.generator.schedule.num_steps == 10
    assert pipe.generator.settings == DiffusionSettings(solver="ddpm", asr_start=6)
    guide = load_stage(tmp_path / "lipvoicer" / "guide", "guide", tokenizer="char")
    frames = io["x_init"].shape[-1]
    inputs = GeneratorInputs(roi=io["mouthroi_uint8"], face=io["face_uint8_hwc"])
    result = pipe.generator.sample(inputs, pipe.spec.guidance, guide.token_loss(io["text_tokens"], frames),
                                   ReplayNoise(io["x_init"], io["noise"]))
    assert (result.generator_evals, result.guide_evals) == (20, 7)
    assert (result.mel - io["x0"]).abs().max() < 1e-4
    wav = pipe.vocode(result.mel)
    wav = wav / (1.1 * np.abs(wav).max())  # LipVoicer's output normalisation
    np.testing.assert_allclose(wav, io["audio_final"].numpy(), atol=1e-3)


def test_lipvoicer_pipeline_voices_a_bare_roi(tmp_path, lipvoicer_fixtures):
    pipe = _pipeline(lipvoicer_fixtures, tmp_path / "lipvoicer")
    roi = torch.randint(0, 256, (10, 96, 96), dtype=torch.uint8).numpy()
    result = pipe(roi, seed=0)  # no face frame: the stored null face; no lip reader and no text: unguided
    assert result.wav.shape == (10 * 640,) and result.text == "" and result.f0 is None
    assert result.network_evals == 20 and result.settings["text_source"] == "none"
    with pytest.warns(L2SWarning, match="cannot steer"):  # no tokenizer for the guide in this bundle
        pipe(roi, text="bin blue", seed=0)


def test_a_guide_on_another_schedule_than_the_generator_is_refused(tmp_path, lipvoicer_fixtures):
    """The guide's gradient only means something on the noise levels it was trained on: loading refuses the pair."""
    out = converted_pipeline(lipvoicer_fixtures, tmp_path / "lv")
    meta = yaml.safe_load((out / PIPELINE_FILE).read_text())
    meta["text"]["guide_tokenizer"] = "char"  # so that the guide is loaded
    (out / PIPELINE_FILE).write_text(yaml.safe_dump(meta))
    Lip2Speech.from_pretrained(out, device="cpu")  # the converter writes LipVoicer's schedule in both
    path = out / "guide" / CONFIG_FILE
    guide = yaml.safe_load(path.read_text())
    guide["config"]["schedule"]["num_steps"] = 200
    path.write_text(yaml.safe_dump(guide))
    with pytest.raises(ModelError, match="noise schedule") as caught:
        Lip2Speech.from_pretrained(out, device="cpu")
    assert len(str(caught.value).splitlines()) == 1
