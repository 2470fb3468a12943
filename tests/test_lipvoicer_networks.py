"""LipVoicer networks loaded through our converter reproduce LipVoicer's outputs (fixtures/lipvoicer)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from l2s.arch import load_model
from l2s.errors import ModelError
from l2s.models.lipvoicer import ASRGuide, MelGen
from l2s.models.lipvoicer.convert import convert_asr, convert_melgen, read_checkpoint
from l2s.models.lipvoicer.melgen import step_embedding
from l2s.models.lipvoicer.preprocess import face_input, roi_input
from l2s.pipeline.lipvoicer import LipVoicerSources, write_pipeline
from tests.conftest import fixture_dir

ATOL = 1e-4


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The small LipVoicer checkpoints written as an l2s pipeline by the converter, then loaded back."""
    fx = fixture_dir("lipvoicer")
    out = tmp_path_factory.mktemp("lipvoicer") / "pipeline"
    reports = write_pipeline(LipVoicerSources(
        melgen=fx / "melgen.small.safetensors", asr=fx / "asr.small.safetensors",
        vocoder=fx / "hifigan.small.safetensors", vocoder_config=fx / "hifigan.small.config.json"), out)
    return {"fx": fx, "out": out, "reports": reports,
            "melgen": load_model(out / "generator", "generator"), "asr": load_model(out / "guide", "guide")}


def _close(actual: torch.Tensor, expected: torch.Tensor, what: str, atol: float = ATOL) -> None:
    assert actual.shape == expected.shape, what
    err = (actual - expected).abs().max().item()
    assert err <= atol, f"{what}: max |diff| {err:.3g} > {atol}"


def test_reports_account_for_every_key(converted):
    melgen, asr = converted["reports"]
    assert melgen.clean and asr.clean
    assert len(melgen.aliases) == 65  # net_facial.conv1 + 6 per TCN block... all verified identical
    assert set(melgen.ignored) == {"net_lipreading.tcn.tcn_output.weight", "net_lipreading.tcn.tcn_output.bias"}
    assert all(k.startswith("encoder.audio_preprocessing.") for k in asr.ignored) and len(asr.ignored) == 2


def test_melgen_matches_lipvoicer(converted):
    io = load_file(str(converted["fx"] / "melgen.small.io.safetensors"))
    model: MelGen = converted["melgen"]
    batch, frames = io["mouthroi"].shape[0], io["mouthroi"].shape[2]
    with torch.no_grad():
        _close(step_embedding(io["diffusion_steps"]), io["step_embedding_128"], "step_embedding_128")
        _close(model.lip(io["mouthroi"]), io["lip_feature"], "lip_feature")
        _close(model.face(io["face_image"]), io["identity_feature"], "identity_feature")
        _close(model.lip(model.null_roi.expand(batch, 1, frames, -1, -1)), io["lip_feature_null"], "lip_feature_null")
        _close(model.face(model.null_face.expand(batch, -1, -1, -1)), io["identity_feature_null"],
               "identity_feature_null")
        cond = model.encode(io["mouthroi"], io["face_image"])
        null = model.encode_null(batch, frames)
        _close(cond, io["visual_feature"], "visual_feature")
        _close(null, io["visual_feature_null"], "visual_feature_null")
        _close(model(io["x"], io["diffusion_steps"], cond), io["eps_cond"], "eps_cond")
        _close(model(io["x"], io["diffusion_steps"], null), io["eps_uncond"], "eps_uncond")


def test_preprocessing_matches_lipvoicer(lipvoicer_fixtures):
    io = load_file(str(lipvoicer_fixtures / "melgen.small.io.safetensors"))
    _close(roi_input(io["mouthroi_uint8"]), io["mouthroi"], "mouthroi", atol=1e-5)
    _close(face_input(io["face_uint8_hwc"]), io["face_image"], "face_image", atol=1e-5)


def test_asr_guide_matches_lipvoicer(converted):
    io = load_file(str(converted["fx"] / "asr.small.io.safetensors"))
    model: ASRGuide = converted["asr"]
    logits, out_lengths = model(io["x"], io["lengths"], io["diffusion_steps"])
    _close(logits.detach(), io["logits"], "logits")
    _close(logits.detach().log_softmax(-1), io["log_probs"], "log_probs")
    assert out_lengths.tolist() == io["out_lengths"].tolist()
    x = io["x"].clone().requires_grad_(True)
    loss = model.ctc_loss(x, io["lengths"], io["diffusion_steps"], io["targets"], io["target_lengths"])
    loss.backward()
    _close(loss.detach().reshape(1), io["ctc_loss"], "ctc_loss")
    _close(x.grad, io["grad_x"], "grad_x")


@pytest.mark.parametrize("name", ["melgen", "asr"])
def test_full_size_keys_convert_exactly(lipvoicer_fixtures, name):
    listing = json.loads((lipvoicer_fixtures / f"{name}.keys.json").read_text())
    theirs = {k: torch.empty(v["shape"], dtype=getattr(torch, v["dtype"]), device="meta")
              for k, v in listing["state_dict"].items()}
    convert, cls = (convert_melgen, MelGen) if name == "melgen" else (convert_asr, ASRGuide)
    cfg, ours, report = convert(theirs)
    assert report.missing == () and report.unexpected == ()
    with torch.device("meta"):
        model = cls(cfg)
    model.load_state_dict(ours, strict=True, assign=True)
    n_ours = sum(p.numel() for p in model.parameters())
    # ours = theirs - weight-norm gains (folded into the weights) - the unused word classifier
    dropped = sum(torch.Size(v["shape"]).numel() for k, v in listing["state_dict"].items()
                  if k.endswith(".weight_g") or ".tcn_output." in k)
    assert n_ours == listing["param_count"] - dropped


def test_alias_mismatch_is_refused(lipvoicer_fixtures):
    theirs = load_file(str(lipvoicer_fixtures / "melgen.small.safetensors"))
    theirs["net_facial.conv1.weight"] = theirs["net_facial.conv1.weight"] + 1
    with pytest.raises(ModelError, match="alias"):
        convert_melgen(theirs)


def test_asr_unexpected_reported_and_missing_refused(lipvoicer_fixtures):
    theirs = load_file(str(lipvoicer_fixtures / "asr.small.safetensors"))
    theirs["encoder.interctc_module.proj.weight"] = torch.zeros(2, 2)
    _, _, report = convert_asr(theirs)
    assert report.unexpected == ("encoder.interctc_module.proj.weight",)
    del theirs["encoder.head.bias"]
    with pytest.raises(ModelError, match="head.bias"):
        convert_asr(theirs)


def test_distributed_prefix_removed(tmp_path, lipvoicer_fixtures):
    theirs = load_file(str(lipvoicer_fixtures / "asr.small.safetensors"))
    ckpt = tmp_path / "ddp.ckpt"
    torch.save({"model_state_dict": {k.replace("encoder.", "encoder.module.", 1): v for k, v in theirs.items()},
                "is_distributed": True, "model_step": 3}, ckpt)
    state, notes = read_checkpoint(ckpt, "model_state_dict")
    assert set(state) == set(theirs) and notes
