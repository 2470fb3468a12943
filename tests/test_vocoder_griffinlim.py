"""Griffin-Lim baseline: copy-synthesis fidelity, output length, batching, chunking."""

import torch

from l2s.config import HOP_LENGTH
from l2s.features.mel import wav_to_mel
from l2s.vocoder import MEL_LOG, WHOLE, ChunkOptions, copy_synthesis, get_vocoder, render
from l2s.vocoder.griffinlim import FAST_ITERATIONS, GriffinLim, GriffinLimOptions
from tests._signals import harmonic


def mel_l1(wav, log_mel):
    return (wav_to_mel(wav, normalized=False)[..., :log_mel.shape[-1]] - log_mel).abs().mean().item()


def test_copy_synthesis_mel_l1():
    wav = harmonic()[None]
    log_mel = wav_to_mel(wav, normalized=False)
    out = GriffinLim(GriffinLimOptions(n_iter=32))(log_mel)
    assert out.shape == (1, log_mel.shape[-1] * HOP_LENGTH)
    # Measured 0.27 (16 iterations: 0.29, 64: 0.35; the log-mel L1 is dominated by the
    # quiet bins between harmonics); a noise input scores about 4.3.
    assert mel_l1(out, log_mel) < 0.4
    assert mel_l1(torch.randn_like(wav), log_mel) > 2.0


def test_pseudo_inverse_magnitude():
    from l2s.features.mel import MelSpectrogram

    log_mel = wav_to_mel(harmonic(0.5)[None], normalized=False)
    mag = GriffinLim().magnitude(log_mel)
    assert mag.shape == (1, 321, log_mel.shape[-1]) and (mag >= 0).all()
    remel = torch.log(torch.matmul(MelSpectrogram().filterbank, mag).clamp_min(1e-5))
    assert (remel - log_mel).abs().mean() < 0.1  # measured 0.064


def test_registry_and_copy_synthesis():
    voc = get_vocoder("griffinlim")  # also the default in a build without the bundled pipeline
    assert isinstance(voc, GriffinLim)
    wav = harmonic(0.5)
    out = copy_synthesis(voc, wav)
    assert out.shape == wav.shape
    assert mel_l1(out[None], wav_to_mel(wav[None], normalized=False)) < 0.5
    fast = get_vocoder("griffinlim-fast")  # half the iterations, the same front end
    assert isinstance(fast, GriffinLim) and fast.options.n_iter == FAST_ITERATIONS < voc.options.n_iter
    assert mel_l1(copy_synthesis(fast, wav)[None], wav_to_mel(wav[None], normalized=False)) < 0.5


def test_batched_equals_per_item_and_chunked_close():
    voc = GriffinLim(GriffinLimOptions(n_iter=16))
    log_mel = wav_to_mel(torch.stack([harmonic(0.6, 120.0), harmonic(0.6, 210.0, seed=1)]), normalized=False)
    batched = voc(log_mel)
    single = torch.cat([voc(log_mel[i:i + 1]) for i in range(2)])
    assert torch.allclose(batched, single, atol=1e-5)
    # Chunks solve their phase separately: not identical, but the crossfaded result is as faithful.
    chunked = render(voc, log_mel, MEL_LOG, ChunkOptions(chunk_frames=30, overlap_frames=8))
    assert chunked.shape == batched.shape
    assert mel_l1(chunked, log_mel) < mel_l1(render(voc, log_mel, MEL_LOG, WHOLE), log_mel) + 0.15
