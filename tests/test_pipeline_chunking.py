"""Long-input chunking: chunk plans, still-mouth cuts, the audio crossfade, text sharing, sharding."""

from __future__ import annotations

import numpy as np
import pytest

from l2s.errors import InputError
from l2s.pipeline.batch import shard
from l2s.pipeline.chunking import AudioAssembler, Chunk, core_slice, mouth_motion, plan_chunks
from l2s.pipeline.pipeline import split_text
from l2s.pipeline.spec import ChunkSpec

SPEC = ChunkSpec(max_frames=100, overlap_frames=10, search_frames=20)


@pytest.mark.parametrize("num_frames", [1, 99, 100, 101, 250, 1234, 3750])
def test_chunks_tile_the_input_within_the_size_bound(num_frames):
    rng = np.random.default_rng(num_frames)
    chunks = plan_chunks(num_frames, SPEC, rng.random(num_frames).astype(np.float32))
    assert chunks[0].start == chunks[0].core_start == 0
    assert chunks[-1].end == chunks[-1].core_end == num_frames
    for a, b in zip(chunks, chunks[1:]):
        assert a.core_end == b.core_start  # cores tile exactly
        assert a.end - b.start == SPEC.overlap_frames  # neighbours share the overlap, centred on the cut
        assert b.start == b.core_start - SPEC.overlap_frames // 2
    assert all(1 <= c.num_frames <= SPEC.max_frames for c in chunks)
    if num_frames > SPEC.max_frames:
        # as few chunks as the bound allows, give or take the search window
        assert len(chunks) <= int(np.ceil(num_frames / (SPEC.max_frames - SPEC.overlap_frames - SPEC.search_frames)))


def test_cut_lands_where_the_mouth_is_still():
    rng = np.random.default_rng(0)
    roi = rng.integers(0, 256, (300, 96, 96), dtype=np.uint8)
    roi[80:88] = roi[80]  # a still mouth inside the first search window (frames 75..95)
    motion = mouth_motion(roi)
    assert motion.shape == (300,)
    assert motion[82:87].max() < 0.2 * motion[:70].mean()
    first_cut = plan_chunks(300, SPEC, motion)[0].core_end
    assert 80 <= first_cut <= 88
    # without motion the cut is the latest allowed frame
    assert plan_chunks(300, SPEC)[0].core_end == SPEC.max_frames - SPEC.overlap_frames // 2


def test_crossfade_keeps_length_and_power():
    spf = 640
    chunks = plan_chunks(260, SPEC)
    assembler = AudioAssembler(260, spf)
    rng = np.random.default_rng(1)
    for c in chunks:  # independent unit-variance noise per chunk, as independently sampled chunks are
        assembler.add(c, rng.standard_normal(c.num_frames * spf).astype(np.float32))
    wav = assembler.wav
    assert wav.shape == (260 * spf,)
    cut = chunks[0].core_end
    overlap = wav[(cut - 5) * spf:(cut + 5) * spf]
    inside = wav[10 * spf:60 * spf]
    # equal-power fades: no dip in the overlap (an equal-gain fade would lose ~1.8 dB on average)
    assert abs(overlap.var() / inside.var() - 1.0) < 0.1


def test_single_chunk_passes_through_unchanged():
    wav = np.random.default_rng(2).standard_normal(50 * 640).astype(np.float32)
    assembler = AudioAssembler(50)
    assembler.add(Chunk(0, 50, 0, 50), wav)
    np.testing.assert_array_equal(assembler.wav, wav)
    own, whole = core_slice(Chunk(90, 200, 95, 195), 4)
    assert (own.start, own.stop, whole.start, whole.stop) == (20, 420, 380, 780)


def test_given_text_is_shared_by_frames():
    chunks = [Chunk(0, 105, 0, 100), Chunk(95, 200, 100, 200)]
    assert split_text("a b c d", chunks) == ["a b", "c d"]
    assert " ".join(split_text("one two three", chunks)).split() == ["one", "two", "three"]


def test_chunk_spec_refuses_nonsense():
    with pytest.raises(InputError):
        ChunkSpec(max_frames=20, overlap_frames=10, search_frames=5)
    with pytest.raises(InputError):
        ChunkSpec(overlap_frames=3)


def test_shard_gives_every_input_to_exactly_one_rank():
    items = list(range(11))
    parts = [shard(items, r, 4) for r in range(4)]
    assert parts[1] == [1, 5, 9]
    assert sorted(sum(parts, [])) == items
    with pytest.raises(ValueError):
        shard(items, 4, 4)
