"""The sync expert on synthetic clips whose mouth opening follows the audio envelope."""

import numpy as np
import pytest

from l2s.config import ROI_SIZE, SAMPLE_RATE, SAMPLES_PER_VIDEO_FRAME
from l2s.metrics.sync import (LABEL, SyncExpertConfig, SyncTrainConfig, load_sync_expert, save_sync_expert,
                              sync_score, train_sync_expert)


def synthetic_clip(rng, frames=40):
    """A voiced buzz whose loudness changes every video frame, and a dark 'mouth' whose size follows it."""
    env = rng.random(frames) ** 2
    gain = np.repeat(env, SAMPLES_PER_VIDEO_FRAME)
    t = np.arange(len(gain)) / SAMPLE_RATE
    wav = 0.5 * gain * np.sin(2 * np.pi * rng.uniform(120, 250) * t) + 0.01 * rng.standard_normal(len(gain))
    yy, xx = np.mgrid[:ROI_SIZE, :ROI_SIZE] - ROI_SIZE // 2
    roi = np.stack([np.where(yy ** 2 / 4 + xx ** 2 < (8 + 30 * e) ** 2, 40, 200) for e in env]).astype(np.uint8)
    return roi, wav.astype(np.float32)


@pytest.fixture(scope="module")
def expert():
    rng = np.random.default_rng(0)
    pairs = [synthetic_clip(rng) for _ in range(32)]
    return train_sync_expert(pairs, SyncExpertConfig(channels=8, embed_dim=32),
                             SyncTrainConfig(steps=120, batch_size=8, train_shift=3))


def test_finds_offset_zero_and_known_shifts(expert):
    roi, wav = synthetic_clip(np.random.default_rng(1), frames=60)
    aligned = sync_score(expert, roi, wav)
    assert aligned.offset == 0 and aligned.label == LABEL
    for lag in (3, -2):  # audio late by `lag` frames
        shifted = np.roll(wav, lag * SAMPLES_PER_VIDEO_FRAME)
        assert sync_score(expert, roi, shifted).offset == lag
    other = synthetic_clip(np.random.default_rng(2), frames=60)[1]
    unrelated = sync_score(expert, roi, other)
    assert aligned.confidence > unrelated.confidence
    assert aligned.min_distance < unrelated.min_distance


def test_save_load_round_trip(expert, tmp_path):
    roi, wav = synthetic_clip(np.random.default_rng(3), frames=30)
    loaded = load_sync_expert(save_sync_expert(expert, tmp_path / "sync"))
    assert loaded.config == expert.config
    a, b = sync_score(expert, roi, wav), sync_score(loaded, roi, wav)
    assert a.offset == b.offset and a.confidence == pytest.approx(b.confidence, abs=1e-6)


def test_manifest_pairs_and_cli_sync_column(expert, tmp_path):
    import json

    from click.testing import CliRunner

    from l2s.cli import main
    from l2s.io.audio import write_wav
    from l2s.metrics.sync import load_pairs

    roi, wav = synthetic_clip(np.random.default_rng(1), frames=60)
    for side in ("ref", "hyp"):
        (tmp_path / side).mkdir()
        write_wav(tmp_path / side / "c1.wav", wav)
    np.save(tmp_path / "ref" / "c1.roi.npy", roi)
    (tmp_path / "train.jsonl").write_text(json.dumps({"id": "c1", "wav": "ref/c1.wav", "roi": "ref/c1.roi.npy"}))
    [(r, w)] = load_pairs(tmp_path / "train.jsonl")
    np.testing.assert_array_equal(r, roi)
    assert len(w) == len(wav)

    model_dir = save_sync_expert(expert, tmp_path / "sync")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["evaluate", "--ref", str(tmp_path / "ref"), "--hyp", str(tmp_path / "hyp"),
                                    "--metrics", "sync", "--sync-model", str(model_dir), "--out", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    assert report["aggregates"]["sync_offset"]["value"] == 0.0
    assert "NOT comparable" in (out / "report.md").read_text()


def test_cli_trains_an_expert_from_a_prepared_manifest(tmp_path):
    import json

    from click.testing import CliRunner

    from l2s.cli import main
    from l2s.io.audio import write_wav

    rng = np.random.default_rng(2)
    lines = []
    for i in range(3):
        roi, wav = synthetic_clip(rng)
        np.save(tmp_path / f"c{i}.roi.npy", roi)
        write_wav(tmp_path / f"c{i}.wav", wav)
        lines.append(json.dumps({"id": f"c{i}", "wav": f"c{i}.wav", "roi": f"c{i}.roi.npy"}))
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "expert"
    res = CliRunner().invoke(main, ["sync-expert", str(tmp_path / "train.jsonl"), str(out), "--steps", "3",
                                    "--batch-size", "4"])
    assert res.exit_code == 0, res.stderr
    assert load_sync_expert(out).config == SyncExpertConfig()
    bad = CliRunner().invoke(main, ["sync-expert", str(tmp_path / "missing.jsonl"), str(tmp_path / "x")])
    assert bad.exit_code == 2 and len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "x").exists()
