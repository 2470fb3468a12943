"""Lip2Speech end to end on UNTRAINED components (random weights): shapes, stages, reproducibility,
long inputs with bounded intermediate sizes. The audio is noise."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from l2s.config import MEL_FRAMES_PER_VIDEO_FRAME, N_MELS, SAMPLE_RATE, SAMPLES_PER_VIDEO_FRAME
from l2s.diffusion.sampler import SampleResult
from l2s.errors import InputError, ModelError
from l2s.hub import PIPELINE_FILE
from l2s.pipeline import ChunkSpec, L2SWarning, Lip2Speech, build_untrained_pipeline, read_spec


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return build_untrained_pipeline(tmp_path_factory.mktemp("pipe") / "tiny", "tiny")


@pytest.fixture(scope="module")
def pipe(tiny_dir) -> Lip2Speech:
    return Lip2Speech.from_pretrained(tiny_dir, device="cpu")


def _roi(frames: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (frames, 96, 96), dtype=np.uint8)


def test_pipeline_yaml_round_trips(tiny_dir):
    spec = read_spec(tiny_dir)
    assert spec.weights == "untrained" and spec.name == "untrained-tiny"
    assert set(spec.components) == {"vsr", "aligner", "prior", "generator", "guide", "vocoder"}
    assert spec.generator["solver"] == "dpmsolver++" and spec.generator["steps"] == 10
    stored = yaml.safe_load((tiny_dir / PIPELINE_FILE).read_text())
    assert stored["format_version"] == 2 and "sampler" not in stored  # the generator owns its settings
    generator = yaml.safe_load((tiny_dir / "generator" / "config.yaml").read_text())
    assert generator["config"]["schedule"]["num_steps"] == 400


def test_roi_in_speech_out(pipe):
    result = pipe(_roi(40), seed=3)
    assert result.sample_rate == SAMPLE_RATE
    assert result.wav.shape == (40 * SAMPLES_PER_VIDEO_FRAME,) and result.wav.dtype == np.float32
    assert np.isfinite(result.wav).all() and np.abs(result.wav).max() > 0
    assert result.mel.shape == (N_MELS, 40 * MEL_FRAMES_PER_VIDEO_FRAME)
    assert result.f0.shape == (40 * MEL_FRAMES_PER_VIDEO_FRAME,)
    assert set(result.timings) == {"roi", "vsr", "aligner", "prior", "generator", "vocoder", "total"}
    assert result.timings["total"] >= result.timings["generator"] > 0
    assert result.settings["steps"] == 10 and result.settings["text_source"] == "vsr"
    # guided: CFG doubles the denoiser passes; the guide runs at the steps t <= asr_start
    assert result.network_evals > 20
    assert pipe.generator.arch == "denoiser" and pipe.guide.arch == "ctc"
    assert len(result.confidences) == len(result.text) or result.text == ""
    again = pipe(_roi(40), seed=3)
    np.testing.assert_array_equal(result.wav, again.wav)  # seeded: reproducible


def test_stages_alone_compose(pipe):
    roi = _roi(30, seed=1)
    lips = pipe.read_lips(roi)
    assert lips.features.shape == (1, 30, pipe.vsr.feature_dim)
    prior = pipe.prior(lips.features, seed=0)
    assert prior.mel_norm.shape == (1, N_MELS, 120) and prior.f0.shape == (1, 120)
    settings, guidance = pipe.generator_settings(steps=4), pipe.guidance(w_asr=0.0, w_video=0.0)
    sample = pipe.sample_mel(roi, lips.features, prior.mel_norm, text="bin blue", settings=settings,
                             guidance=guidance, seed=0)
    assert sample.mel.shape == (1, N_MELS, 120)
    assert (sample.generator_evals, sample.guide_evals) == (4, 0)  # no guidance: one pass per step
    wav = pipe.vocode(sample.mel)
    assert wav.shape == (120 * 160,)


def test_text_override_and_options(pipe):
    result = pipe(_roi(30), text="Place Red At", steps=3, w_video=0.0, seed=0)
    assert result.text == "Place Red At" and result.confidences == ()
    assert result.settings["text_source"] == "given" and result.settings["steps"] == 3
    with pytest.raises(InputError, match="ddpm"):
        pipe(_roi(30), solver="ddpm", steps=5)
    with pytest.raises(InputError):
        pipe(np.zeros((10, 64, 64), np.uint8))
    # a text with ASR guidance off cannot steer: say so
    with pytest.warns(L2SWarning, match="--w-asr"):
        unsteered = pipe(_roi(30), text="place red at", steps=2, w_asr=0.0, seed=0)
    assert unsteered.text == "place red at" and unsteered.settings["w_asr"] == 0.0


def test_synthetic_model_warns_on_real_video(pipe):
    from dataclasses import replace

    from l2s.pipeline.inputs import ClipInput

    synthetic = Lip2Speech(replace(pipe.spec, trained_on="synthgrid"), pipe.root, pipe.generator, pipe.vocoder,
                           pipe.device, pipe.vsr, pipe.prior_model, pipe.guide)
    detected = ClipInput(roi=_roi(20), face=None, detected=True)
    with pytest.warns(L2SWarning, match="synthetic faces"):
        synthetic(detected, steps=2, w_asr=0.0, w_video=0.0, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", L2SWarning)
        synthetic(_roi(20), steps=2, w_asr=0.0, w_video=0.0, seed=0)  # a bare ROI (or a sidecar) is not real-world


def test_lipvoicer_variant_runs_through_the_same_pipeline(tmp_path):
    lv = Lip2Speech.from_pretrained(build_untrained_pipeline(tmp_path / "lv", "micro", arch="lipvoicer"), "cpu")
    assert lv.generator.arch == "lipvoicer" and lv.guide.arch == "lipvoicer"
    face = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    from l2s.pipeline.inputs import ClipInput

    result = lv(ClipInput(roi=_roi(12), face=face), text="bin blue", steps=3, seed=0)
    assert result.wav.shape == (12 * SAMPLES_PER_VIDEO_FRAME,) and np.isfinite(result.wav).all()
    settings = lv.generator_settings(steps=3)
    sample = lv.sample_mel(_roi(12), None, None, "bin blue", face, None, settings, seed=0)
    # CFG: two denoiser passes a step; the guide at the steps t <= asr_start
    assert sample.generator_evals == 6
    assert sample.guide_evals == sum(t <= settings.asr_start for t in sample.timesteps) >= 1


def test_not_a_pipeline_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="pipeline"):
        Lip2Speech.from_pretrained(tmp_path, device="cpu")
    with pytest.raises(ModelError):
        Lip2Speech.from_pretrained(tmp_path / "absent", device="cpu")


class _RecordingGenerator:
    """A tiny random conv net from VSR features to a mel (a stand-in for the denoiser, without settings or a
    schedule): it keeps the largest input it was given, so the test can check that chunking bounds every
    network's input."""

    arch, takes_speaker, needs_features, settings, schedule = "test-double", False, True, None, None
    needs_alignment = False

    def __init__(self, feature_dim: int):
        self.model = torch.nn.Conv1d(feature_dim, N_MELS, 3, padding=1)
        self.largest = 0

    def with_settings(self, settings):
        return self

    def sample(self, inputs, guidance, asr_loss, noise):
        self.largest = max(self.largest, inputs.features.shape[1], inputs.prior_mel.shape[-1] // 4)
        with torch.no_grad():
            mel = self.model(inputs.features.transpose(1, 2)).tanh()
        return SampleResult(mel=mel.repeat_interleave(MEL_FRAMES_PER_VIDEO_FRAME, -1), timesteps=(0,),
                            generator_evals=1, guide_evals=0)


class _RecordingVocoder:
    def __init__(self, inner):
        self.inner, self.largest = inner, 0
        for key in ("mel_space", "sample_rate", "hop_length", "context_frames"):
            setattr(self, key, getattr(inner, key))

    def __call__(self, mel):
        self.largest = max(self.largest, mel.shape[-1])
        return self.inner(mel)


def test_long_input_memory_is_bounded_by_the_chunk(tmp_path):
    spec = ChunkSpec(max_frames=250, overlap_frames=10, search_frames=25)
    micro = Lip2Speech.from_pretrained(build_untrained_pipeline(tmp_path / "micro", "micro", chunking=spec), "cpu")
    micro.generator = _RecordingGenerator(micro.vsr.feature_dim)
    micro.vocoder = _RecordingVocoder(micro.vocoder)
    sizes = {}
    for seconds in (20, 120):  # 2 minutes of random ROI
        frames = seconds * 25
        result = micro(_roi(frames, seed=seconds), seed=0)
        assert result.wav.shape == (frames * SAMPLES_PER_VIDEO_FRAME,)
        assert result.mel.shape == (N_MELS, frames * MEL_FRAMES_PER_VIDEO_FRAME)
        assert np.isfinite(result.wav).all()
        assert max(end - start for start, end in result.chunks) <= spec.max_frames
        sizes[seconds] = (micro.generator.largest, micro.vocoder.largest, len(result.chunks))
    # six times the duration: more chunks, but no network input grew
    assert sizes[120][2] > 3 * sizes[20][2]
    for seconds in sizes:
        assert spec.max_frames - spec.search_frames <= sizes[seconds][0] <= spec.max_frames
        assert sizes[seconds][1] <= spec.max_frames * MEL_FRAMES_PER_VIDEO_FRAME


def test_ref_audio_sets_the_voice_or_warns(pipe):
    pytest.importorskip("resemblyzer")
    ref = (0.1 * np.random.default_rng(0).standard_normal(2 * SAMPLE_RATE)).astype(np.float32)
    voiced = pipe(_roi(20), ref_audio=ref, steps=2, seed=0)
    plain = pipe(_roi(20), steps=2, seed=0)
    assert voiced.settings["speaker"] == "ref_audio" and plain.settings["speaker"] is None
    assert not np.array_equal(voiced.f0, plain.f0)  # the speaker-conditioned prior heard the voice
    no_voice = Lip2Speech(pipe.spec, pipe.root, pipe.generator, pipe.vocoder, pipe.device, pipe.vsr, None,
                          pipe.guide)
    with pytest.warns(L2SWarning, match="reference voice"):
        ignored = no_voice(_roi(20), ref_audio=ref, steps=2, seed=0)
    assert ignored.settings["speaker"] is None


def test_ref_audio_sets_the_pitch_level_of_a_prior_without_speaker_input(pipe):
    import dataclasses

    from l2s.models.prior.ddsp import CoarsePrior, CoarsePriorConfig

    config = pipe.prior_model.config
    no_embedding = CoarsePrior(CoarsePriorConfig(f0=dataclasses.replace(config.f0, speaker_dim=0),
                                                 ddsp=dataclasses.replace(config.ddsp, speaker_dim=0))).eval()
    with torch.no_grad():
        no_embedding.f0.head.bias[1] = 8.0  # every frame voiced, so every frame carries the level
    levelled = Lip2Speech(pipe.spec, pipe.root, pipe.generator, pipe.vocoder, pipe.device, pipe.vsr, no_embedding,
                          pipe.guide)
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    tone = sum(0.2 / k * np.sin(2 * np.pi * 180.0 * k * t) for k in range(1, 6)).astype(np.float32)
    result = levelled(_roi(20), ref_audio=tone, steps=2, seed=0)
    assert result.settings["ref_log_f0"] == pytest.approx(np.log(180.0), abs=0.02)
    assert result.settings["speaker"] == "ref_audio"
    voiced = result.f0[result.f0 > 0]
    assert voiced.size == result.f0.size and np.exp(np.log(voiced).mean()) == pytest.approx(180.0, rel=0.01)
    # a speaker-conditioned prior takes the embedding instead
    assert pipe(_roi(20), ref_audio=tone, steps=2, seed=0).settings["ref_log_f0"] is None


def test_a_video_file_uses_its_sidecar_and_first_frame(pipe, tmp_path):
    from l2s.bench import write_synthetic_clip
    from l2s.io.video import read_video
    from l2s.vision.roi import extract_roi

    video = write_synthetic_clip(tmp_path / "talk.mp4", 20, seed=4)
    clip = pipe.roi(video)
    frames = read_video(video, with_audio=False).frames
    assert clip.roi.shape == (20, 96, 96) and not clip.detected  # the sidecar beside it was used
    np.testing.assert_array_equal(clip.roi, extract_roi(frames, sidecar=tmp_path / "talk.landmarks.npz").roi)
    np.testing.assert_array_equal(clip.face, frames[0])
