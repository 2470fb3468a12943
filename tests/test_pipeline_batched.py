"""Chunks in batches (the GPU path), checked on CPU: a batch gives what its chunks give one by one."""

from __future__ import annotations

import numpy as np
import pytest

from l2s.pipeline import Lip2Speech, build_untrained_pipeline
from l2s.pipeline.batched import CUDA_BATCH, batched_chunk_outputs, chunk_batch_size, even_spans
from l2s.pipeline.chunking import Chunk
from l2s.pipeline.spec import ChunkSpec

CHUNKING = ChunkSpec(max_frames=40, overlap_frames=4, search_frames=6)


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    path = build_untrained_pipeline(tmp_path_factory.mktemp("micro") / "micro", "micro", chunking=CHUNKING)
    return Lip2Speech.from_pretrained(path, device="cpu")


def _roi(frames: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (frames, 96, 96), dtype=np.uint8)


def test_even_spans_widen_with_real_frames_and_keep_cores():
    chunks = [Chunk(0, 38, 0, 36), Chunk(34, 72, 36, 70), Chunk(68, 100, 70, 100)]
    spans = even_spans(chunks, 100)
    assert [s.num_frames for s in spans] == [38, 38, 38]
    assert spans[:2] == chunks[:2] and spans[2] == Chunk(62, 100, 70, 100)  # the last one grows backwards
    assert all(s.start <= c.start and c.end <= s.end for s, c in zip(spans, chunks))


def test_batch_size_rules(pipe, monkeypatch):
    guidance = pipe.guidance(w_asr=0.0)
    assert chunk_batch_size(pipe, guidance, 5) == 1  # CPU: one by one unless asked
    pipe.chunk_batch = 3
    try:
        assert chunk_batch_size(pipe, guidance, 5) == 3 and chunk_batch_size(pipe, guidance, 2) == 2
        assert chunk_batch_size(pipe, guidance, 1) == 1
        # ASR guidance scales its gradient by norms over the whole batch: never batched
        assert chunk_batch_size(pipe, pipe.guidance(w_asr=1.5), 5) == 1
        # a generator that cannot batch (or does not say) runs its chunks one by one
        assert pipe.generator.batches
        monkeypatch.setattr(pipe.generator, "batches", False)
        assert chunk_batch_size(pipe, guidance, 5) == 1
        monkeypatch.setattr(pipe, "generator", object())
        assert chunk_batch_size(pipe, guidance, 5) == 1
    finally:
        del pipe.chunk_batch
    assert CUDA_BATCH > 1


def test_a_batch_of_equal_chunks_gives_what_they_give_one_by_one(pipe):
    from l2s.pipeline.inputs import ClipInput

    clip = ClipInput(roi=_roi(100))
    chunks = [Chunk(0, 36, 0, 34), Chunk(32, 68, 34, 66), Chunk(64, 100, 66, 100)]  # equal lengths
    texts = [None, "bin blue at f two now", None]
    settings, guidance = pipe.generator_settings(), pipe.guidance(w_asr=0.0)
    one_by_one = list(pipe._chunk_outputs(clip, chunks, texts, None, None, settings, guidance, seed=5))
    batched = list(batched_chunk_outputs(pipe, clip, chunks, texts, None, None, settings, guidance, seed=5,
                                         batch=3))
    assert len(batched) == 3
    for a, b in zip(one_by_one, batched):
        assert a.chunk == b.chunk and a.text == b.text and a.timesteps == b.timesteps
        assert a.network_evals == b.network_evals
        np.testing.assert_allclose(a.confidences, b.confidences, atol=1e-5)
        np.testing.assert_allclose(b.f0, a.f0, atol=1e-3)
        assert [w.label for w in b.words] == [w.label for w in a.words]
        assert (a.alignment is None) == (b.alignment is None) and a.alignment_start == b.alignment_start
        if a.alignment is not None:
            assert a.alignment.text == b.alignment.text
            assert [w.start for w in a.alignment.words] == pytest.approx([w.start for w in b.alignment.words])
        np.testing.assert_allclose([w.start for w in b.words], [w.start for w in a.words])
        # float rounding of batched matrix products, grown through ten solver steps of random networks (and,
        # in the prior's mel, by the log of near-silent bins)
        for x, y, worst in ((b.prior_mel, a.prior_mel, 2e-2), (b.mel, a.mel, 2e-3), (b.wav, a.wav, 2e-3)):
            scale = np.abs(y).max()
            assert scale > 0 and np.abs(x - y).max() < worst * scale and np.abs(x - y).mean() < 1e-4 * scale


def test_pipeline_runs_uneven_chunks_in_batches(pipe):
    roi = _roi(150, seed=1)
    single = pipe(roi, seed=0, w_asr=0.0)
    pipe.chunk_batch = 4
    try:
        batched = pipe(roi, seed=0, w_asr=0.0)
    finally:
        del pipe.chunk_batch
    assert len(single.chunks) >= 4 and batched.chunks == single.chunks
    assert batched.wav.shape == single.wav.shape and np.isfinite(batched.wav).all()
    assert batched.network_evals == single.network_evals
    # the widened chunks see a little more context: close to, not equal to, the one-by-one output
    corr = np.corrcoef(batched.mel.ravel(), single.mel.ravel())[0, 1]
    assert corr > 0.5, corr
