"""Auto-AVSR conversion: the full-size key listing, legacy key names, and ``l2s convert auto-avsr``."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from l2s.cli import main
from l2s.errors import ModelError
from l2s.models.vsr.convert import (check_keys, convert_state_dict, infer_config, model_shapes)
from l2s.models.vsr import VSR_BASE, VSRConfig, build_vsr, load_vsr
from tests.conftest import fixture_dir


def _listing():
    return json.loads((fixture_dir("auto_avsr") / "auto_avsr_vsr_base.keys.json").read_text())


def test_base_preset_has_exactly_auto_avsr_keys():
    listing = _listing()
    model = build_vsr(VSR_BASE, device="meta")
    ours = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    assert ours == [(e["key"], e["shape"]) for e in listing["state_dict"]]  # same keys, shapes and order
    assert sum(p.numel() for p in model.parameters()) == listing["num_parameters"]
    for name, count in listing["num_parameters_by_top_module"].items():
        assert sum(p.numel() for p in getattr(model, name).parameters()) == count, name


def test_full_size_listing_converts_without_missing_or_unexpected_keys():
    listing = _listing()
    weights = {e["key"]: torch.empty(e["shape"], device="meta") for e in listing["state_dict"]}
    converted = convert_state_dict(weights)
    shapes = {k: tuple(v.shape) for k, v in converted.items()}
    config = infer_config(shapes)
    assert config == VSR_BASE
    check_keys(shapes, model_shapes(config))  # raises on any missing, unexpected or mis-shaped key


def test_legacy_names_and_wrappers_are_converted():
    config = VSRConfig(vocab_size=12, frontend_widths=(4, 8, 8, 8), d_model=16, heads=2, encoder_ffn=8,
                       encoder_layers=1, conv_kernel=3, decoder_ffn=8, decoder_layers=1)
    expected = model_shapes(config)
    legacy = {}
    for key, shape in expected.items():
        if key.endswith("num_batches_tracked") and key.startswith("frontend.trunk.layer1"):
            continue  # very old files lack some counters
        key = key.replace("encoder.after_norm.", "encoder.norm.").replace("decoder.after_norm.",
                                                                          "decoder.output_norm.")
        legacy["model." + key] = torch.zeros(shape)
    legacy["model.encoder.embed.pe"] = torch.zeros(1, 10, 16)
    converted = convert_state_dict(legacy)
    check_keys({k: tuple(v.shape) for k, v in converted.items()}, expected)
    assert infer_config({k: tuple(v.shape) for k, v in converted.items()}) == config
    del converted["ctc.ctc_lo.bias"]
    converted["extra.weight"] = torch.zeros(1)
    with pytest.raises(ModelError, match="1 missing .*1 unexpected"):
        check_keys({k: tuple(v.shape) for k, v in converted.items()}, expected)


def _units_file(tmp_path, token_list):
    path = tmp_path / "units.txt"
    path.write_text("".join(f"{tok} {i}\n" for i, tok in enumerate(token_list[1:-1], start=1)), encoding="utf-8")
    return path


def test_cli_converts_the_small_model(tmp_path):
    from safetensors.torch import load_file

    root = fixture_dir("auto_avsr")
    tokens = json.loads((root / "tokens.json").read_text())
    # The small model has 72 outputs: a 70-unit slice of the real units makes a matching tokenizer.
    units = _units_file(tmp_path, tokens["token_list"][:71] + ["<eos>"])
    out = tmp_path / "vsr-small"
    result = CliRunner().invoke(main, ["convert", "auto-avsr", str(root / "small.safetensors"), str(out),
                                       "--spm", str(root / "unigram5000.model"), "--units", str(units)])
    assert result.exit_code == 0, result.output
    model = load_vsr(out)
    assert model.tokenizer is not None and model.tokenizer.vocab_size == 72
    io = load_file(str(root / "small.io.safetensors"))
    with torch.no_grad():
        enc = model.encode_video(io["input.video"][:1])
    torch.testing.assert_close(enc, io["single0.encoder.out"], atol=1e-4, rtol=1e-4)


def test_cli_refuses_bad_input(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    runner = CliRunner()
    result = runner.invoke(main, ["convert", "auto-avsr", str(bad), str(tmp_path / "out")])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    torch.save({"state_dict": {"model.foo.weight": torch.zeros(2)}}, tmp_path / "foreign.pth")
    result = runner.invoke(main, ["convert", "auto-avsr", str(tmp_path / "foreign.pth"), str(tmp_path / "out")])
    assert result.exit_code == 2 and "not an Auto-AVSR VSR checkpoint" in result.stderr
    result = runner.invoke(main, ["convert", "auto-avsr", str(tmp_path / "missing.pth"), str(tmp_path / "out")])
    assert result.exit_code == 2 and "no such file" in result.stderr
    assert not (tmp_path / "out").exists()


def test_cli_converts_a_lightning_checkpoint(tmp_path):
    from l2s.models.vsr import VSRModel

    config = VSRConfig(vocab_size=12, frontend_widths=(4, 8, 8, 8), frontend_blocks=(1, 1, 1, 1), d_model=16,
                       heads=2, encoder_ffn=8, encoder_layers=2, conv_kernel=3, decoder_ffn=8, decoder_layers=1)
    model = VSRModel(config)
    torch.save({"epoch": 3, "state_dict": {"model." + k: v for k, v in model.state_dict().items()}},
               tmp_path / "last.ckpt")
    result = CliRunner().invoke(main, ["convert", "auto-avsr", str(tmp_path / "last.ckpt"), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    loaded = load_vsr(tmp_path / "out")
    assert loaded.config == config and loaded.tokenizer is None
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert loaded.transcribe(torch.zeros(6, 96, 96, dtype=torch.uint8), beam=None).text is not None
