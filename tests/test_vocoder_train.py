"""Vocoder training: the GAN objectives, the schedule, segments, and a smoke run of each recipe.

The smoke runs train 2 steps of each recipe (tiny generator and discriminators) on
harmonic tones written in the test, resume, evaluate, and export a vocoder directory
that :func:`l2s.vocoder.get_vocoder` loads.
"""

from __future__ import annotations

import dataclasses

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from l2s.cli import main
from l2s.config import HOP_LENGTH, N_MELS, SAMPLE_RATE
from l2s.data.manifest import Utterance, write_manifest
from l2s.io.audio import read_audio, write_wav
from l2s.train.vocoder import LRSchedule, random_segments
from l2s.train.vocoder_gan import (HIFIGAN_OBJECTIVE, VOCOS_OBJECTIVE, GANObjective, discriminator_objective,
                                   generator_objective)
from l2s.vocoder.losses import discriminator_loss, feature_matching_loss, generator_adversarial_loss

REPO = Path(__file__).resolve().parents[1]

# Tiny networks: enough to exercise every path in a few seconds on one thread.
TINY = {
    "vocos": "--model={dim: 16, intermediate_dim: 32, num_layers: 1}",
    "hifigan": "--model={upsample_initial_channel: 16, resblock_kernel_sizes: [3], "
               "resblock_dilation_sizes: [[1, 3]]}",
}
COMMON = ["--mpd_channels=[4, 8, 8, 8, 8]", "--mrd_channels=4", "--segment_frames=20", "--max_batch=2",
          "--metric_utterances=1", "--device=cpu"]


def _judgements(seed: int, sizes=(3, 2)):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(2, n, generator=g), [torch.randn(2, 4, 5, generator=g), torch.randn(2, 1, n, generator=g)])
            for n in sizes]


def test_hifigan_objective_is_the_papers_sum():
    real, fake = _judgements(0), _judgements(1)
    mel = torch.tensor(0.3)
    groups = {"mpd": (real, fake), "mrd": (real[:1], fake[:1])}
    d = discriminator_objective(groups, HIFIGAN_OBJECTIVE)
    want_d = discriminator_loss(real, fake) + discriminator_loss(real[:1], fake[:1])
    torch.testing.assert_close(d, want_d)
    g = generator_objective(groups, mel, HIFIGAN_OBJECTIVE)
    adv = generator_adversarial_loss(fake) + generator_adversarial_loss(fake[:1])
    fm = feature_matching_loss(real, fake) + feature_matching_loss(real[:1], fake[:1])
    torch.testing.assert_close(g["total"], adv + 2.0 * fm + 45.0 * mel)


def test_vocos_objective_hinge_averaged_and_weighted():
    real, fake = _judgements(2), _judgements(3)
    groups = {"mpd": (real, fake), "mrd": (real, fake)}
    d = discriminator_objective(groups, VOCOS_OBJECTIVE)
    hinge_d = sum(torch.relu(1 - r).mean() + torch.relu(1 + f).mean() for (r, _), (f, _) in zip(real, fake))
    torch.testing.assert_close(d, (1.0 + 0.1) * hinge_d / len(real))
    mel = torch.tensor(0.5)
    g = generator_objective(groups, mel, VOCOS_OBJECTIVE)
    hinge_g = sum(torch.relu(1 - f).mean() for f, _ in fake)
    fm = feature_matching_loss(real, fake)
    torch.testing.assert_close(g["adversarial"], 1.1 * hinge_g / len(real))
    torch.testing.assert_close(g["total"], 1.1 * (hinge_g + fm) / len(real) + 45.0 * mel)
    # Mel-only warm-up: no discriminator terms.
    torch.testing.assert_close(generator_objective({}, mel, VOCOS_OBJECTIVE)["total"], 45.0 * mel)
    # An STFT term counts only with a positive weight.
    stft = torch.tensor(2.0)
    torch.testing.assert_close(generator_objective({}, mel, VOCOS_OBJECTIVE, stft)["total"], 45.0 * mel)
    with_stft = dataclasses.replace(VOCOS_OBJECTIVE, stft=2.5)
    torch.testing.assert_close(generator_objective({}, mel, with_stft, stft)["total"], 45.0 * mel + 5.0)
    with pytest.raises(ValueError):
        GANObjective(adversarial="wasserstein")


def test_lr_schedules():
    assert LRSchedule().factor(123, 1000) == 1.0
    assert LRSchedule("exponential", gamma=0.5, every_steps=10).factor(20, 0) == pytest.approx(0.25)
    cosine = LRSchedule("cosine", warmup_steps=10)
    assert cosine.factor(4, 110) == pytest.approx(0.5)
    assert cosine.factor(10, 110) == pytest.approx(1.0)
    assert cosine.factor(60, 110) == pytest.approx(0.5)
    assert cosine.factor(500, 110) == pytest.approx(0.0)


def test_random_segments_stay_inside_each_utterance():
    wav = torch.zeros(3, 1000)
    lengths = torch.tensor([1000, 600, 100])
    for i, n in enumerate(lengths.tolist()):
        wav[i, :n] = torch.arange(1, n + 1, dtype=torch.float32)  # sample value = position + 1
    seg = random_segments(wav, lengths, 300, torch.Generator().manual_seed(0))
    assert seg.shape == (3, 300)
    for i in range(2):  # long enough: a contiguous window of real samples
        assert torch.all(seg[i, 1:] - seg[i, :-1] == 1) and seg[i, -1] <= lengths[i]
    torch.testing.assert_close(seg[2, :100], wav[2, :100])  # too short: the whole clip, zero-padded
    assert torch.all(seg[2, 100:] == 0)


def _tone(seed: int, seconds: float) -> np.ndarray:
    """A voiced-speech-like tone: harmonics of a gliding F0, an amplitude envelope, a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = rng.uniform(100, 220) * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    wav = sum(np.sin(k * phase) / k for k in range(1, 12))
    wav *= 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    return (0.3 * wav / np.abs(wav).max() + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vocoder_corpus")
    splits = {"train": 4, "valid": 2, "test-seen": 1, "test-unseen": 1}
    seed = 0
    for split, count in splits.items():
        utts = []
        for _ in range(count):
            seconds = 0.6 + 0.1 * seed
            path = root / "wav" / f"u{seed}.wav"
            write_wav(path, _tone(seed, seconds))
            utts.append(Utterance(f"u{seed}", wav=path, duration=seconds))
            seed += 1
        write_manifest(root / f"{split}.jsonl", utts)
    return root


def _train(recipe: str, data: Path, out: Path, epochs: int = 1):
    from l2s.train.runner import run

    return run([str(REPO / "vocoders" / recipe / "hparams.yaml"), f"--data_folder={data}", f"--output_folder={out}",
                TINY[recipe], *COMMON, f"--number_of_epochs={epochs}"])


@pytest.mark.parametrize("recipe", ["vocos", "hifigan"])
def test_recipe_smoke_run_resume_and_export(recipe, tiny_corpus, tmp_path):
    from l2s.vocoder import get_vocoder, render

    torch.set_num_threads(1)
    out = tmp_path / recipe
    first = _train(recipe, tiny_corpus, out)
    assert first["steps"] == 2  # 4 train clips, 2 per batch
    for split in ("valid", "test-seen", "test-unseen"):
        assert np.isfinite(first[split]["mel_l1"]) and first[split]["mel_l1"] > 0
    assert -1.0 <= first["valid"]["stoi"] <= 1.0 and 1.0 <= first["valid"]["pesq_wb"] <= 4.7
    log = (out / "train_log.txt").read_text()
    assert "epoch: 1" in log and "mel_l1" in log

    # Resume: a second epoch continues from the saved optimiser step and epoch counter.
    second = _train(recipe, tiny_corpus, out, epochs=2)
    assert second["steps"] == 4
    log = (out / "train_log.txt").read_text()
    assert log.count("epoch: 1,") == 1 and log.count("epoch: 2,") == 1  # epoch 1 was not trained again
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 4 and "test-unseen" in metrics

    # The export is an l2s vocoder directory: the registry and `l2s vocode` load it.
    vocoder = get_vocoder(out / "model")
    assert vocoder.sample_rate == SAMPLE_RATE and vocoder.hop_length == HOP_LENGTH
    with torch.no_grad():
        wav = render(vocoder, torch.rand(1, N_MELS, 30) * 2 - 1)
    assert wav.shape == (1, 30 * HOP_LENGTH) and torch.isfinite(wav).all()
    src = tiny_corpus / "wav" / "u0.wav"
    result = CliRunner().invoke(main, ["vocode", str(src), "-o", str(tmp_path / "copy.wav"),
                                       "--vocoder", str(out / "model"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert abs(len(read_audio(tmp_path / "copy.wav")) - len(read_audio(src))) <= HOP_LENGTH


def test_recipe_refuses_unknown_model_fields():
    from l2s.errors import InputError
    from l2s.train.runner import load_hparams
    from l2s.train.vocoder import build_modules

    hparams = load_hparams(str(REPO / "vocoders" / "vocos" / "hparams.yaml"),
                           "data_folder: x\noutput_folder: y\nmodel: {dimm: 16}")
    with pytest.raises(InputError, match="dimm"):
        build_modules(hparams)
