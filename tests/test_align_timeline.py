"""The Alignment dataclass: segments, JSON round trip and the per-mel-frame rendering."""

from __future__ import annotations

import pytest
import torch

from l2s.align.timeline import Alignment, PhonemeSpan, WordSpan, render_frames
from l2s.errors import InputError
from l2s.text.phonemes import DEFAULT_INVENTORY, SIL_ID


def _alignment() -> Alignment:
    words = (WordSpan("bin", 0.20, 0.36, 0.9), WordSpan("blue", 0.40, 0.68, 0.8), WordSpan("now", 1.40, 1.80, 0.7))
    phones = (PhonemeSpan("b", 0.20, 0.25, 0.9, 0), PhonemeSpan("ɪ", 0.25, 0.30, 0.9, 0),
              PhonemeSpan("n", 0.30, 0.36, 0.9, 0),
              PhonemeSpan("b", 0.40, 0.403, 0.8, 1), PhonemeSpan("l", 0.403, 0.406, 0.8, 1),
              PhonemeSpan("u", 0.406, 0.68, 0.8, 1),
              PhonemeSpan("n", 1.40, 1.50, 0.7, 2), PhonemeSpan("a", 1.50, 1.70, 0.7, 2),
              PhonemeSpan("ʊ", 1.70, 1.80, 0.7, 2))
    return Alignment(text="bin blue now", words=words, phonemes=phones, duration=2.0)


def test_render_frames_at_the_mel_rate():
    frames = render_frames(_alignment())
    assert frames.num_frames == 200  # 4 per video frame: 2 s at 100 Hz
    ids = frames.phoneme_ids
    inv = DEFAULT_INVENTORY
    assert ids[:20].eq(SIL_ID).all() and ids[36:40].eq(SIL_ID).all() and ids[180:].eq(SIL_ID).all()
    assert ids[20:25].eq(inv.id("b")).all() and ids[30:36].eq(inv.id("n")).all()
    # "b" and "l" of "blue" last 3 ms each: each still keeps one frame, in order
    assert ids[40:43].tolist() == [inv.id("b"), inv.id("l"), inv.id("u")]
    assert frames.word_start.nonzero().flatten().tolist() == [20, 40, 140]
    assert frames.word_end.nonzero().flatten().tolist() == [35, 67, 179]
    assert frames.position[20:25].tolist() == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    assert frames.position[:20].eq(0).all() and frames.position.lt(1).all()
    assert frames.confidence[150] == pytest.approx(0.7) and frames.confidence[100] == 0
    assert render_frames(_alignment(), num_frames=50).num_frames == 50


def test_segments_split_at_pauses_and_word_counts():
    segs = _alignment().segments()
    assert [s.text for s in segs] == ["bin blue", "now"]  # a 0.72 s pause before "now"
    assert [s.text for s in _alignment().segments(max_words=1)] == ["bin", "blue", "now"]
    assert segs[0].start == 0.20 and segs[0].end == 0.68
    assert _alignment().word_frames() == ((5, 9), (10, 17), (35, 45))  # at 25 fps


def test_json_round_trip():
    data = _alignment().to_dict()
    assert set(data) >= {"text", "language", "segments", "words", "phonemes"}
    assert data["words"][0] == {"word": "bin", "start": 0.2, "end": 0.36, "confidence": 0.9}
    back = Alignment.from_dict(data)
    assert back.words == _alignment().words and len(back.phonemes) == 9
    assert torch.equal(render_frames(back).phoneme_ids, render_frames(_alignment()).phoneme_ids)
    with pytest.raises(InputError):
        Alignment.from_dict({"text": "x"})


def test_merge_chunks_keeps_each_word_once_on_the_whole_timeline():
    from l2s.align.timeline import merge_chunks

    a = _alignment()  # words at 0.2-0.36, 0.4-0.68, 1.4-1.8 s of each chunk
    merged = merge_chunks([(a, 0.0, 0.0, 1.0), (a, 0.8, 1.0, 2.8)], duration=2.8)
    # chunk 1 owns [0, 1) s: bin, blue; chunk 2 (from 0.8 s) owns [1, 2.8): its bin (1.08), blue, now (2.4)
    assert [w.word for w in merged.words] == ["bin", "blue", "bin", "blue", "now"]
    assert merged.words[2].start == pytest.approx(1.0) and merged.words[4].end == pytest.approx(2.6)
    assert [p.word for p in merged.phonemes] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert merged.text == "bin blue bin blue now" and merged.duration == 2.8
