"""l2s.io.video: decoding at 25 fps by presentation time, rotation, audio track, writing and muxing."""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest

from l2s.config import FPS, SAMPLE_RATE
from l2s.errors import InputError
from l2s.io.video import (_collect, _frame_rotation, apply_rotation, decode_ahead, iter_video_frames, mux_audio,
                          probe_video, read_video, write_video)
from tests._io_media import frame_index, make_audio_only, make_clip, make_corrupt_copy, video_packets

VFR_PTS_MS = [0, 30, 90, 100, 180, 260, 300, 420, 430, 440, 600, 610]


def _expected_indices(source_times: np.ndarray, num_out: int) -> list:
    """Reference retiming: output k shows the last source frame starting at or before k / 25 s."""
    out_times = np.arange(num_out) / FPS
    return list(np.searchsorted(source_times, out_times + 1e-9, side="right") - 1)


def _peak_hz(wav: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wav * np.hanning(len(wav))))
    return float(np.fft.rfftfreq(len(wav), 1.0 / sample_rate)[np.argmax(spectrum)])


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    return SimpleNamespace(
        dir=d,
        c24=make_clip(d / "c24.mp4", fps=Fraction(24), num_frames=48),
        c30=make_clip(d / "c30.mp4", fps=Fraction(30), num_frames=45),
        c50=make_clip(d / "c50.mp4", fps=Fraction(50), num_frames=50),
        ntsc=make_clip(d / "ntsc.mp4", fps=Fraction(30000, 1001), num_frames=30),
        vfr=make_clip(d / "vfr.mp4", pts_ms=VFR_PTS_MS),
        rot=make_clip(d / "rot.mp4", rotation=90, marker=True, num_frames=10),
        tone=make_clip(d / "tone.mp4", fps=Fraction(24), num_frames=36, audio=(440.0, 44100, 2)),
    )


@pytest.mark.parametrize("name,fps,n", [("c24", Fraction(24), 48), ("c30", Fraction(30), 45),
                                        ("c50", Fraction(50), 50), ("ntsc", Fraction(30000, 1001), 30)])
def test_constant_rate_resampled_by_presentation_time(media, name, fps, n):
    clip = read_video(getattr(media, name))
    duration = float(n / fps)
    assert clip.fps == FPS and clip.source_fps == pytest.approx(float(fps), rel=1e-3)
    assert clip.duration == pytest.approx(duration, abs=1e-3)
    assert abs(clip.num_frames - round(duration * FPS)) <= 1
    assert clip.frames.shape == (clip.num_frames, 48, 64, 3) and clip.frames.dtype == np.uint8
    assert clip.frames.flags["C_CONTIGUOUS"]
    source_times = np.array([float(i / fps) for i in range(n)])
    assert [frame_index(f) for f in clip.frames] == _expected_indices(source_times, clip.num_frames)


def test_24fps_repeats_one_frame_per_second(media):
    idx = [frame_index(f) for f in read_video(media.c24).frames]
    # 24 -> 25 fps: exactly one source frame shown twice per second, nothing skipped.
    assert sorted(set(idx)) == list(range(48))
    assert len(idx) - len(set(idx)) == 2


def test_variable_frame_rate(media):
    clip = read_video(media.vfr)
    source_times = np.array(VFR_PTS_MS) / 1000.0
    assert clip.num_frames == int(np.ceil(clip.duration * FPS - 1e-6))
    assert abs(clip.duration - (VFR_PTS_MS[-1] / 1000.0 + 0.04)) < 0.05
    assert [frame_index(f) for f in clip.frames] == _expected_indices(source_times, clip.num_frames)


def test_rotation_metadata_is_applied(media):
    info = probe_video(media.rot)
    assert (info.rotation, info.width, info.height) == (90, 48, 64)
    clip = read_video(media.rot)
    assert clip.frames.shape[1:] == (64, 48, 3)
    # Coded top-left marker, rotated 90 degrees counter-clockwise for display, lands bottom-left.
    first = clip.frames[0]
    assert first[-8:, :8].min() == 255
    assert first[:8, :8].max() < 255 and first[-8:, -8:].max() < 255


def test_rotation_helpers():
    img = np.arange(6 * 4 * 3, dtype=np.uint8).reshape(6, 4, 3)
    assert apply_rotation(img, 0) is img
    assert np.array_equal(apply_rotation(apply_rotation(img, 90), -90), img)
    assert np.array_equal(apply_rotation(img, 180), img[::-1, ::-1])
    assert apply_rotation(img, -90)[0, -1].tolist() == img[0, 0].tolist()  # clockwise: top-left -> top-right
    # The legacy ``rotate`` tag is clockwise; the display matrix (frame.rotation) counter-clockwise.
    assert _frame_rotation(SimpleNamespace(rotation=0), SimpleNamespace(metadata={"rotate": "90"})) == -90
    assert _frame_rotation(SimpleNamespace(rotation=-90.0), SimpleNamespace(metadata={})) == -90
    assert _frame_rotation(SimpleNamespace(rotation=180), SimpleNamespace(metadata={})) == 180


def test_frame_buffer_grows_and_trims():
    images = [np.full((2, 3, 3), i, np.uint8) for i in range(10)]
    for expected in (1, 10, 11, 40):  # estimate too small, exact, one over, far too large
        out = _collect(iter(images), expected)
        assert out.shape == (10, 2, 3, 3) and out.flags["C_CONTIGUOUS"]
        assert [int(f[0, 0, 0]) for f in out] == list(range(10))
    assert _collect(iter([]), 5) is None


def test_audio_track_is_16k_mono_same_tone(media):
    clip = read_video(media.tone)
    assert clip.audio is not None and clip.audio.dtype == np.float32 and clip.audio.ndim == 1
    assert abs(len(clip.audio) - clip.duration * SAMPLE_RATE) <= SAMPLE_RATE // 100
    assert _peak_hz(clip.audio, SAMPLE_RATE) == pytest.approx(440.0, abs=2.0)
    # Left at 0.5, right at 0.25 amplitude: the average is a 0.375 sine (RMS 0.265), AAC is near-transparent.
    middle = clip.audio[2000:-2000]
    assert np.sqrt(np.mean(middle ** 2)) == pytest.approx(0.375 / np.sqrt(2), rel=0.05)
    assert read_video(media.tone, with_audio=False).audio is None
    assert read_video(media.c24).audio is None


def test_max_frames_and_streaming_agree(media):
    full = read_video(media.tone)
    part = read_video(media.tone, max_frames=10)
    assert part.num_frames == 10 and np.array_equal(part.frames, full.frames[:10])
    assert len(part.audio) == 10 * SAMPLE_RATE // FPS
    streamed = np.stack(list(iter_video_frames(media.tone)))
    assert np.array_equal(streamed, full.frames)


def test_probe(media):
    info = probe_video(media.tone)
    assert info.duration == pytest.approx(1.5, abs=1e-3)
    assert info.fps == pytest.approx(24.0)
    assert (info.width, info.height, info.rotation, info.codec) == (64, 48, 0, "h264")
    assert info.has_audio and info.audio_sample_rate == 44100 and info.audio_channels == 2
    assert info.num_frames == read_video(media.tone).num_frames
    assert not probe_video(media.c30).has_audio


def _bad_inputs(d, good):
    (d / "text.mp4").write_text("this is not a video\n")
    (d / "empty.mp4").write_bytes(b"")
    (d / "folder.mp4").mkdir(exist_ok=True)
    data = good.read_bytes()
    (d / "cut.mp4").write_bytes(data[: len(data) // 2])  # moov atom (at the end) lost
    make_audio_only(d / "voice.m4a")
    make_corrupt_copy(good, d / "junk.mp4")
    return {"missing": d / "nope.mp4", "directory": d / "folder.mp4", "empty": d / "empty.mp4",
            "text": d / "text.mp4", "truncated": d / "cut.mp4", "audio-only": d / "voice.m4a",
            "corrupt": d / "junk.mp4"}


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, media):
    return _bad_inputs(tmp_path_factory.mktemp("bad"), media.c24)


@pytest.mark.parametrize("kind", ["missing", "directory", "empty", "text", "truncated", "audio-only", "corrupt"])
def test_bad_inputs_raise_one_line_input_error(bad_inputs, kind):
    path = bad_inputs[kind]
    for reader in (read_video, probe_video, lambda p: list(iter_video_frames(p))):
        with pytest.raises(InputError) as err:
            reader(path)
        message = str(err.value)
        assert "\n" not in message and str(path) in message


@pytest.mark.parametrize("kind", ["missing", "corrupt"])
def test_decode_ahead_raises_the_decoders_error_in_the_caller(bad_inputs, kind):
    with pytest.raises(InputError) as err:
        list(decode_ahead(bad_inputs[kind]))
    assert str(bad_inputs[kind]) in str(err.value)


def test_decode_ahead_gives_the_same_frames_and_stops_when_closed(media):
    import threading

    expected = np.stack(list(iter_video_frames(media.c30)))
    for depth in (0, 1, 4):
        timings = {}
        got = np.stack(list(decode_ahead(media.c30, depth=depth, timings=timings)))
        assert np.array_equal(got, expected)
        assert timings["decode"] > 0 and 0 <= timings["decode_wait"]
    before = threading.active_count()
    frames = decode_ahead(media.c30, depth=2)
    first = next(frames)
    assert np.array_equal(first, expected[0])
    frames.close()  # the consumer gives up early: the decoder thread must end, not block on a full queue
    assert threading.active_count() == before


def test_truncated_with_index_at_front(tmp_path):
    """A 'faststart' file cut short still opens; its index betrays the missing tail."""
    import av

    path = tmp_path / "fast.mp4"
    with av.open(str(path), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        rng = np.random.default_rng(0)
        for i in range(25):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    data = path.read_bytes()
    cut = tmp_path / "fast_cut.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])
    assert read_video(path).num_frames == 25
    for reader in (read_video, probe_video):
        with pytest.raises(InputError, match="truncated"):
            reader(cut)


def _gradient_frames(n: int, height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    frames = [np.stack([(x * 4 + 6 * t) % 256, (y * 4) % 256, np.full_like(x, 40 + 5 * t)], axis=-1)
              for t in range(n)]
    return np.asarray(frames, dtype=np.uint8)


def test_write_video_round_trip_with_audio(tmp_path):
    frames = _gradient_frames(20, 47, 63)  # odd sides: padded to even for yuv420p
    t = np.arange(int(0.9 * SAMPLE_RATE)) / SAMPLE_RATE
    wav = (0.3 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)  # longer than the 0.8 s of video: cut
    out = tmp_path / "out.mp4"
    write_video(out, frames, audio=wav, crf=12)
    clip = read_video(out)
    assert clip.frames.shape == (20, 48, 64, 3)
    assert np.abs(clip.frames[:, :47, :63].astype(int) - frames.astype(int)).mean() < 4.0
    assert clip.duration == pytest.approx(0.8, abs=1e-3)
    assert abs(len(clip.audio) - 0.8 * SAMPLE_RATE) <= 160
    assert _peak_hz(clip.audio, SAMPLE_RATE) == pytest.approx(1000.0, abs=3.0)
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # no temporary file left


def test_mux_audio_copies_video_and_replaces_audio(media, tmp_path):
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE  # 1 s of speech for a 1.5 s clip: padded with silence
    wav = (0.4 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    out = tmp_path / "dubbed.mp4"
    mux_audio(media.tone, wav, out)
    assert video_packets(out) == video_packets(media.tone)
    before, after = read_video(media.tone), read_video(out)
    assert np.array_equal(after.frames, before.frames)
    assert abs(len(after.audio) - before.duration * SAMPLE_RATE) <= 160
    head = after.audio[: SAMPLE_RATE - 1000]
    assert _peak_hz(head, SAMPLE_RATE) == pytest.approx(1000.0, abs=3.0)  # the old 440 Hz track is gone
    assert np.abs(after.audio[SAMPLE_RATE + 1200:]).max() < 0.02
    info = probe_video(out)
    assert info.audio_sample_rate == SAMPLE_RATE and info.audio_channels == 1
    assert info.fps == pytest.approx(24.0, rel=1e-3)


def test_edit_list_hidden_frames_and_mux_alignment(tmp_path):
    src = make_clip(tmp_path / "edit.mp4", num_frames=20, hidden=3)
    clip = read_video(src)
    assert [frame_index(f) for f in clip.frames] == list(range(3, 20))  # the hidden frames stay hidden
    wav = np.zeros(SAMPLE_RATE, np.float32)
    wav[1600:] = 0.5 * np.sin(2 * np.pi * 500.0 * np.arange(SAMPLE_RATE - 1600) / SAMPLE_RATE)
    out = tmp_path / "edit_dub.mp4"
    mux_audio(src, wav, out)
    assert video_packets(out) == video_packets(src)
    dubbed = read_video(out)
    assert np.array_equal(dubbed.frames, clip.frames)
    # Speech starting 0.1 s after the first shown frame still starts 0.1 s after it.
    onset = int(np.argmax(np.abs(dubbed.audio) > 0.1))
    assert abs(onset - 1600) <= 40 and abs(len(dubbed.audio) - 17 * SAMPLE_RATE // FPS) <= 16


def test_mux_audio_into_matroska(media, tmp_path):
    out = tmp_path / "dubbed.mkv"
    mux_audio(media.tone, np.zeros(SAMPLE_RATE, np.float32), out)
    assert video_packets(out) == video_packets(media.tone)
    info = probe_video(out)
    assert info.fps == pytest.approx(24.0, rel=1e-3) and info.duration == pytest.approx(1.5, abs=0.01)
    assert np.array_equal(read_video(out).frames, read_video(media.tone).frames)


def test_mux_audio_keeps_rotation_and_leaves_nothing_on_error(media, tmp_path):
    out = tmp_path / "rot_dub.mp4"
    mux_audio(media.rot, np.zeros(SAMPLE_RATE // 2, np.float32), out)
    assert probe_video(out).rotation == 90
    assert read_video(out).frames.shape[1:] == (64, 48, 3)
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    with pytest.raises(InputError):
        mux_audio(bad, np.zeros(100, np.float32), tmp_path / "never.mp4")
    assert not (tmp_path / "never.mp4").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4", "rot_dub.mp4"]


def test_real_clip_remux_keeps_edit_list_cut(pyfeat_data, tmp_path):
    """no_face.mp4's edit list hides three leading frames and shortens the last one."""
    src = pyfeat_data / "no_face.mp4"
    before = read_video(src, with_audio=False)
    out = tmp_path / "no_face_dub.mp4"
    mux_audio(src, np.zeros(SAMPLE_RATE, np.float32), out)
    after = read_video(out)
    assert after.num_frames == before.num_frames == round(probe_video(src).duration * FPS)
    assert np.array_equal(after.frames, before.frames)
    assert abs(len(after.audio) - before.duration * SAMPLE_RATE) <= 16


@pytest.mark.parametrize("name", ["WolfgangLanger_Pexels.mp4", "no_face.mp4", "face_noface.mov"])
def test_real_clips_frame_count_matches_duration(pyfeat_data, name):
    """23.976 fps H.264, an mp4 edit list hiding leading frames, and HEVC in .mov."""
    path = pyfeat_data / name
    info = probe_video(path)
    count, first = 0, None
    for frame in iter_video_frames(path):  # streamed: these clips are up to 960x540
        first = frame if first is None else first
        count += 1
    assert count == info.num_frames
    assert abs(count - round(info.duration * FPS)) <= 1
    assert first.shape == (info.height, info.width, 3) and first.std() > 10  # a real picture, not a blank frame
