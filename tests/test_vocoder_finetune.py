"""Fine-tuning a vocoder on generated mels: the frame-aligned windows, ``init_from``, ``input_mel: manifest``,
and the generated mels of a pipeline (``python -m l2s.train.generated_mels``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from l2s.config import HOP_LENGTH, MEL_FRAMES_PER_VIDEO_FRAME, N_MELS, SILENT_MEL
from l2s.data.manifest import Utterance, read_manifest, write_manifest
from l2s.errors import InputError
from l2s.features.mel import wav_to_mel
from l2s.io.audio import write_wav
from l2s.train.vocoder import aligned_segments
from tests.test_vocoder_train import COMMON, REPO, TINY, _tone

RECIPE = str(REPO / "vocoders" / "vocos" / "hparams.yaml")


def test_aligned_segments_take_the_audio_under_the_mel_frames():
    lengths = torch.tensor([60 * HOP_LENGTH, 30 * HOP_LENGTH + 7, 5 * HOP_LENGTH])
    mel_lengths = torch.tensor([60, 31, 5])
    wav = torch.zeros(3, 60 * HOP_LENGTH)
    mel = torch.zeros(3, 60, N_MELS)
    for i, (n, t) in enumerate(zip(lengths.tolist(), mel_lengths.tolist())):
        wav[i, :n] = torch.arange(1, n + 1, dtype=torch.float32)  # sample value = position + 1
        mel[i, :t] = torch.arange(t, dtype=torch.float32)[:, None]  # frame value = frame index
    audio, frames = aligned_segments(wav, lengths, mel, mel_lengths, 20, torch.Generator().manual_seed(3))
    assert audio.shape == (3, 20 * HOP_LENGTH) and frames.shape == (3, N_MELS, 20)
    for i in range(2):
        first = int(frames[i, 0, 0])
        assert torch.equal(frames[i, 0], torch.arange(first, first + 20, dtype=torch.float32))
        # frame f is centred on sample f * hop: the window's audio starts there
        assert int(audio[i, 0]) == first * HOP_LENGTH + 1 and torch.all(audio[i, 1:] - audio[i, :-1] == 1)
    # shorter than the window: the whole clip, then silence in the mel and zeros in the audio
    torch.testing.assert_close(frames[2, 0, :5], torch.arange(5, dtype=torch.float32))
    assert torch.all(frames[2, :, 5:] == SILENT_MEL) and torch.all(audio[2, 5 * HOP_LENGTH:] == 0)


@pytest.fixture(scope="module")
def generated_corpus(tmp_path_factory) -> Path:
    """Tones with a 'generated' mel each: their own mel, blurred over time and shifted (a stand-in for a mel
    generator's output, frame-aligned with the recording)."""
    root = tmp_path_factory.mktemp("gta_corpus")
    seed = 0
    for split, count in {"train": 4, "valid": 2, "test-seen": 1, "test-unseen": 1}.items():
        utts = []
        for _ in range(count):
            wav = _tone(seed, 0.6 + 0.1 * seed)
            path = root / "wav" / f"u{seed}.wav"
            write_wav(path, wav)
            mel = wav_to_mel(torch.from_numpy(wav)).T.numpy()
            blurred = np.stack([np.convolve(band, np.ones(5) / 5, mode="same") for band in mel.T], axis=1) - 0.05
            (root / "mel").mkdir(exist_ok=True)
            np.save(root / "mel" / f"u{seed}.npy", blurred.astype(np.float32))
            utts.append(Utterance(f"u{seed}", wav=path, mel=root / "mel" / f"u{seed}.npy", duration=len(wav) / 16000))
            seed += 1
        write_manifest(root / f"{split}.jsonl", utts)
    return root


def _run(data: Path, out: Path, *extra: str):
    from l2s.train.runner import run

    return run([RECIPE, f"--data_folder={data}", f"--output_folder={out}", TINY["vocos"], *COMMON,
                "--number_of_epochs=1", *extra])


def test_fine_tuning_on_generated_mels_starts_from_the_trained_vocoder(generated_corpus, tmp_path):
    from l2s.vocoder import get_vocoder

    torch.set_num_threads(1)
    base = _run(generated_corpus, tmp_path / "base")  # copy-synthesis training
    assert base["steps"] == 2
    source = get_vocoder(tmp_path / "base" / "model").state_dict()
    # At a zero learning rate the fine-tuned export is the source itself: init_from copied every weight.
    source_dir = f"--init_from={tmp_path / 'base' / 'model'}"
    still = _run(generated_corpus, tmp_path / "still", "--input_mel=manifest", source_dir, "--lr=0")
    kept = get_vocoder(tmp_path / "still" / "model").state_dict()
    assert kept.keys() == source.keys() and all(torch.equal(kept[k], source[k]) for k in source)
    # Evaluating on the generated mels differs from copy-synthesis with the same weights.
    assert still["valid"]["mel_l1"] != pytest.approx(base["valid"]["mel_l1"])
    tuned = _run(generated_corpus, tmp_path / "tuned", "--input_mel=manifest", source_dir)
    assert tuned["steps"] == 2 and np.isfinite(tuned["test-unseen"]["mel_l1"])
    moved = get_vocoder(tmp_path / "tuned" / "model").state_dict()
    assert any(not torch.equal(moved[k], source[k]) for k in source)


def test_fine_tuning_refuses_a_source_of_another_size_and_an_unknown_input(generated_corpus, tmp_path):
    from l2s.train.runner import run

    _run(generated_corpus, tmp_path / "base")
    with pytest.raises(InputError, match="init_from .*do not fit"):
        run([RECIPE, f"--data_folder={generated_corpus}", f"--output_folder={tmp_path / 'wide'}",
             "--model={dim: 24, intermediate_dim: 32, num_layers: 1}", *COMMON,
             f"--init_from={tmp_path / 'base' / 'model'}"])
    assert not (tmp_path / "wide").exists()  # refused before the output folder was made
    with pytest.raises(InputError, match="input_mel"):
        _run(generated_corpus, tmp_path / "other", "--input_mel=video")


def test_generated_mels_of_a_pipeline(tmp_path):
    from l2s.pipeline import build_untrained_pipeline
    from l2s.train.generated_mels import GeneratedMelOptions, generate, main

    model = build_untrained_pipeline(tmp_path / "micro", preset="micro")
    rng = np.random.default_rng(0)
    utts = []
    for i, frames in enumerate((12, 17)):
        roi = tmp_path / "corpus" / f"c{i}.roi.npy"
        roi.parent.mkdir(exist_ok=True)
        np.save(roi, rng.integers(0, 256, (frames, 96, 96), dtype=np.uint8))
        utts.append(Utterance(f"c{i}", text="bin blue at f two now", roi=roi, num_frames=frames))
    manifest = tmp_path / "corpus" / "train.jsonl"
    write_manifest(manifest, utts)
    out = tmp_path / "gen"
    done = generate(manifest, out, GeneratedMelOptions(model=str(model), text="truth"), progress=False)
    assert (done.voiced, done.reused) == (2, 0) and done.manifest == out / "train.jsonl"
    written = read_manifest(done.manifest)
    for before, after in zip(utts, written):
        mel = np.load(after.mel)
        assert mel.shape == (before.num_frames * MEL_FRAMES_PER_VIDEO_FRAME, N_MELS) and np.isfinite(mel).all()
        assert dataclasses.replace(after, mel=None) == dataclasses.replace(before, roi=before.roi.resolve())
    # a rerun reuses what is there
    again = generate(manifest, out, GeneratedMelOptions(model=str(model)), progress=False)
    assert (again.voiced, again.reused) == (0, 2)
    # refusals: the manifest's own folder (its manifest would be replaced), a clip without crops
    with pytest.raises(InputError, match="own folder"):
        generate(manifest, manifest.parent, GeneratedMelOptions(model=str(model)), progress=False)
    write_manifest(tmp_path / "bare.jsonl", [Utterance("x", text="a")])
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "bare.jsonl"), str(tmp_path / "gen2"), "--model", str(model), "-q"])
    assert exit_info.value.code == 2 and not (tmp_path / "gen2" / "bare.jsonl").exists()


def test_generated_mels_help(capsys):
    from l2s.train.generated_mels import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0 and "--text" in capsys.readouterr().out
