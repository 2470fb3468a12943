"""The vocoder contract: mel spaces, chunk spans, the crossfade and the registry."""

import pytest
import torch

from l2s.config import HOP_LENGTH, N_MELS
from l2s.errors import ContractError, InputError, ModelError
from l2s.features.mel import denormalize_mel
from l2s.vocoder import MEL_LOG, MEL_NORM, WHOLE, ChunkOptions, convert_mel_space, get_vocoder, render
from l2s.vocoder.base import chunk_spans


class FrameHold(torch.nn.Module):
    """A vocoder with no context: each frame's mean, held for a hop (chunking must be exact)."""

    mel_space = MEL_LOG
    sample_rate = 16000
    hop_length = HOP_LENGTH
    context_frames = 0

    def forward(self, mel):
        return mel.mean(dim=1).repeat_interleave(self.hop_length, dim=-1)


def test_mel_space_conversion():
    x = torch.randn(2, N_MELS, 7)
    assert torch.equal(convert_mel_space(x, MEL_NORM, MEL_NORM), x)
    assert torch.allclose(convert_mel_space(x, MEL_NORM, MEL_LOG), denormalize_mel(x))
    assert torch.allclose(convert_mel_space(convert_mel_space(x, MEL_NORM, MEL_LOG), MEL_LOG, MEL_NORM), x, atol=1e-6)
    with pytest.raises(ValueError):
        convert_mel_space(x, "db", MEL_LOG)


@pytest.mark.parametrize("frames", [50, 100, 101, 184, 185, 1000, 1234])
def test_chunk_spans_cover_with_exact_overlap(frames):
    opts = ChunkOptions(chunk_frames=100, overlap_frames=16)
    spans = chunk_spans(frames, opts)
    assert spans[0][0] == 0 and spans[-1][1] == frames
    for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
        assert e0 - s1 == 16 and e1 - s1 > 16 and e0 - s0 == 100


def test_options_validated():
    with pytest.raises(ValueError):
        ChunkOptions(chunk_frames=32, overlap_frames=16)


def test_crossfade_is_equal_gain():
    voc = FrameHold()
    mel = torch.randn(3, N_MELS, 437)
    whole = render(voc, mel, MEL_LOG, WHOLE)
    chunked = render(voc, mel, MEL_LOG, ChunkOptions(chunk_frames=64, overlap_frames=8))
    assert chunked.shape == (3, 437 * HOP_LENGTH)
    assert torch.allclose(chunked, whole, atol=1e-6)


def test_render_converts_space_and_squeezes():
    voc = FrameHold()
    mel_norm = torch.rand(N_MELS, 10) * 2 - 1
    out = render(voc, mel_norm, MEL_NORM)
    assert out.shape == (10 * HOP_LENGTH,)
    assert torch.allclose(out, voc(denormalize_mel(mel_norm)[None])[0], atol=1e-6)
    with pytest.raises(InputError):
        render(voc, torch.zeros(N_MELS, 0))


def test_registry_errors():
    with pytest.raises(ModelError, match="registered vocoders: griffinlim"):
        get_vocoder("no-such-vocoder")


def test_a_pipeline_names_its_vocoder_and_the_bundled_one_is_the_default(tmp_path, monkeypatch):
    from l2s.pipeline import build_untrained_pipeline
    from l2s.vocoder import registry
    from l2s.vocoder.hifigan import HiFiGAN

    pipe = build_untrained_pipeline(tmp_path / "pipe", "micro")
    assert isinstance(get_vocoder(pipe), HiFiGAN)
    monkeypatch.setattr("l2s.hub.bundled_dir", lambda name: None)
    assert registry.default_vocoder() == registry.FALLBACK_VOCODER
    monkeypatch.setattr("l2s.hub.bundled_dir", lambda name: pipe if name == registry.DEFAULT_PIPELINE else None)
    assert registry.default_vocoder() == registry.DEFAULT_PIPELINE
    assert isinstance(get_vocoder(), HiFiGAN)


def test_registry_refuses_other_contract(tmp_path):
    from l2s.vocoder.base import check_contract_vocoder

    voc = FrameHold()
    voc.sample_rate = 22050
    with pytest.raises(ContractError, match="22050"):
        check_contract_vocoder(voc, "test")


@pytest.mark.parametrize("frames", [1, 2, 7])
def test_every_vocoder_gives_t_times_hop(frames):
    from l2s.vocoder.griffinlim import GriffinLim
    from l2s.vocoder.hifigan import HIFIGAN_TINY, HiFiGAN
    from l2s.vocoder.vocos import VOCOS_TINY, VocosVocoder

    mel = torch.rand(2, N_MELS, frames) * 2 - 1
    for voc in (HiFiGAN(HIFIGAN_TINY), VocosVocoder(VOCOS_TINY), GriffinLim()):
        with torch.no_grad():
            assert render(voc, mel).shape == (2, frames * HOP_LENGTH)


def test_real_time_factor_restores_threads():
    from l2s.vocoder.speed import real_time_factor

    before = torch.get_num_threads()
    result = real_time_factor(FrameHold(), "hold", seconds=0.5, repeats=2)
    assert torch.get_num_threads() == before
    assert result.threads == 1 and 0 < result.real_time_factor < 1 and result.best_cpu_s >= 0
