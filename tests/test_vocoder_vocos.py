"""Vocos: at our contract (length, chunking, batching, saving) and official checkpoint directories."""

import pytest
import torch
import yaml

from l2s.config import HOP_LENGTH, N_MELS
from l2s.errors import ContractError, ModelError
from l2s.vocoder import MEL_NORM, WHOLE, ChunkOptions, copy_synthesis, get_vocoder, render, save_vocoder
from l2s.vocoder.vocos import VOCOS_TINY, PretrainedVocos, VocosVocoder, load_official_vocos

# The charactr/vocos-mel-24khz config.yaml layout, at a small width so the test is quick.
OFFICIAL_24K = {
    "feature_extractor": {"class_path": "vocos.feature_extractors.MelSpectrogramFeatures",
                          "init_args": {"sample_rate": 24000, "n_fft": 1024, "hop_length": 256, "n_mels": 100,
                                        "padding": "center"}},
    "backbone": {"class_path": "vocos.models.VocosBackbone",
                 "init_args": {"input_channels": 100, "dim": 64, "intermediate_dim": 192, "num_layers": 2}},
    "head": {"class_path": "vocos.heads.ISTFTHead",
             "init_args": {"dim": 64, "n_fft": 1024, "hop_length": 256, "padding": "center"}},
}


def test_length_and_chunking():
    model = VocosVocoder(VOCOS_TINY).eval()
    assert model.mel_space == MEL_NORM
    mel = torch.rand(2, N_MELS, 301) * 2 - 1
    with torch.no_grad():
        whole = render(model, mel, MEL_NORM, WHOLE)
        chunked = render(model, mel, MEL_NORM, ChunkOptions(chunk_frames=100, overlap_frames=16))
    assert whole.shape == chunked.shape == (2, 301 * HOP_LENGTH)
    assert whole.std() > 0.01
    assert (chunked - whole).abs().max() < 1e-6


def test_batched_equals_per_item():
    model = VocosVocoder(VOCOS_TINY).eval()
    mel = torch.rand(3, N_MELS, 25) * 2 - 1
    with torch.no_grad():
        batched = model(mel)
        single = torch.cat([model(mel[i:i + 1]) for i in range(3)])
    assert torch.allclose(batched, single, atol=1e-5)


def test_save_and_get_vocoder_roundtrip(tmp_path):
    model = VocosVocoder(VOCOS_TINY).eval()
    mel = torch.rand(1, N_MELS, 20) * 2 - 1
    with torch.no_grad():
        expected = model(mel)
    save_vocoder(model, tmp_path / "vocos")
    loaded = get_vocoder(tmp_path / "vocos")
    assert isinstance(loaded, VocosVocoder) and loaded.config == VOCOS_TINY
    with torch.no_grad():
        assert torch.allclose(loaded(mel), expected, atol=1e-6)


def _official_dir(tmp_path):
    from vocos.pretrained import Vocos

    root = tmp_path / "vocos-mel-24khz"
    root.mkdir()
    (root / "config.yaml").write_text(yaml.safe_dump(OFFICIAL_24K))
    reference = Vocos.from_hparams(str(root / "config.yaml")).eval()
    torch.save(reference.state_dict(), root / "pytorch_model.bin")
    return root, reference


def test_official_checkpoint_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root, reference = _official_dir(tmp_path)
    ours = load_official_vocos(root)
    assert isinstance(ours, PretrainedVocos) and (ours.sample_rate, ours.hop_length, ours.n_mels) == (24000, 256, 100)
    audio = torch.sin(2 * torch.pi * 220 * torch.arange(12000) / 24000)[None] * 0.5
    with torch.no_grad():
        features = reference.feature_extractor(audio)
        assert torch.allclose(ours(features), reference.decode(features), atol=1e-5)
        # Copy-synthesis of contract-rate audio: resampled to 24 kHz and back, same length.
        wav16 = torch.sin(2 * torch.pi * 220 * torch.arange(8000) / 16000)[None] * 0.5
        assert copy_synthesis(ours, wav16).shape == (1, 8000)
    # It has its own front end: refused as a contract vocoder, given when asked for.
    with pytest.raises(ContractError, match="own mel front end"):
        get_vocoder(root)
    assert isinstance(get_vocoder(root, allow_foreign=True), PretrainedVocos)


def test_official_offline_and_bad_configs(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache where it is read at call time
    with pytest.raises(ModelError, match="offline"):
        load_official_vocos("charactr/vocos-mel-24khz")
    root, _ = _official_dir(tmp_path)
    bad = dict(OFFICIAL_24K, head={"class_path": "os.system", "init_args": {}})
    (root / "config.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(ModelError, match="unsupported Vocos component"):
        load_official_vocos(root)
