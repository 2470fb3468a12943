"""Figures: word spans from the greedy CTC path, the synthesize --plot figure (prior, generated and reference mels,
words, F0 of the output and of the prior), and its reference option through the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from l2s.bench import write_synthetic_clip
from l2s.cli import main
from l2s.config import MEL_FRAMES_PER_VIDEO_FRAME, SAMPLE_RATE
from l2s.io.audio import write_wav
from l2s.pipeline import Lip2Speech, build_untrained_pipeline
from l2s.pipeline.words import Span, greedy_runs, greedy_word_spans, spans_text
from l2s.text.tokenizer import CharTokenizer

FRAMES = 20


def _posteriors(path, vocab: int) -> torch.Tensor:
    """``(T, V)`` log-posteriors whose frame-wise best token follows ``path``."""
    logits = torch.full((len(path), vocab), -5.0)
    logits[torch.arange(len(path)), torch.as_tensor(path)] = 5.0
    return logits.log_softmax(-1)


def test_greedy_word_spans_follow_the_emitting_frames():
    tok = CharTokenizer()
    i = {c: tok.token_list.index(c) for c in " abins"}
    # frames: b b _ i n _ _ ' ' a a _ s   ("bin as"; '_' the blank, a repeat after a blank is a new token)
    path = [i["b"], i["b"], 0, i["i"], i["n"], 0, 0, i[" "], i["a"], i["a"], 0, i["s"]]
    log_probs = _posteriors(path, len(tok.token_list))
    assert greedy_runs(log_probs) == [(0, 2, i["b"]), (3, 4, i["i"]), (4, 5, i["n"]), (7, 8, i[" "]),
                                      (8, 10, i["a"]), (11, 12, i["s"])]
    spans = greedy_word_spans(log_probs, tok, offset_frames=25)
    assert spans == (Span(25 / 25, 30 / 25, "bin"), Span(33 / 25, 37 / 25, "as"))
    assert spans_text(spans) == tok.decode(log_probs.argmax(-1).unique_consecutive().tolist())


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return build_untrained_pipeline(tmp_path_factory.mktemp("model") / "micro", "micro")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    write_synthetic_clip(folder / "talk.mp4", FRAMES, seed=5)
    return folder / "talk.mp4"


def test_result_carries_the_prior_mel_and_the_lip_read_words(model, clip):
    result = Lip2Speech.from_pretrained(model, device="cpu")(clip, steps=2, seed=0)
    assert result.prior_mel is not None and result.prior_mel.shape == result.mel.shape
    assert result.mel.shape[1] == FRAMES * MEL_FRAMES_PER_VIDEO_FRAME
    assert np.isfinite(result.prior_mel).all() and result.prior_mel.std() > 0
    assert spans_text(result.words) == " ".join(result.text.split())  # greedy: the text's own path
    assert all(0 <= w.start < w.end <= FRAMES / 25 for w in result.words)
    given = Lip2Speech.from_pretrained(model, device="cpu")(clip, steps=2, seed=0, text="bin blue")
    assert given.words == ()  # a given text has no lip-reading times


def test_synthesis_figure_draws_every_panel(model, clip, tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from l2s import figures

    result = Lip2Speech.from_pretrained(model, device="cpu")(clip, steps=2, seed=0)
    reference = np.sin(2 * np.pi * 120 * np.arange(FRAMES * 640) / SAMPLE_RATE).astype(np.float32) * 0.5
    made = {}
    original = figures.save

    def keep(fig, path):
        made["labels"] = [ax.get_ylabel() for ax in fig.axes]
        made["lines"] = {line.get_label() for ax in fig.axes for line in ax.get_lines()}
        return original(fig, path)

    figures.save = keep
    try:
        tiers = {"lip-read": result.words, "phonemes": (Span(0.1, 0.2, "b"), Span(0.2, 0.3, "ih"))}
        path = figures.synthesis_figure(result, tmp_path / "f.png", title="t", reference=reference, tiers=tiers)
    finally:
        figures.save = original
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bars = "log mel (model space)"
    labels = [label for label in made["labels"] if label and label != bars]
    assert labels == ["DDSP prior\nHz", "generated\nHz", "reference\nHz", "lip-read", "phonemes", "F0\nHz"]
    assert made["labels"].count(bars) == 3  # a colour bar beside each mel
    assert {"output audio", "prior", "reference"} <= made["lines"]
    ticks, names = figures.hz_ticks(80)
    assert names == ["250", "500", "1k", "2k", "4k"] and ticks == sorted(ticks)
    plt.close("all")


def test_plot_reference_takes_the_recording_beside_the_input(model, clip, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "voiced.wav"
    args = ["synthesize", str(clip), "-o", str(out), "--model", str(model), "--plot-reference", "--steps", "2",
            "--seed", "0", "--device", "cpu"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and result.stderr.strip() == (
        f"l2s: error: {clip.with_suffix('.wav')}: no such file (--plot-reference)")
    assert not out.exists()  # refused before anything was voiced
    write_wav(clip.with_suffix(".wav"), np.zeros(FRAMES * 640, np.float32))
    try:
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    finally:
        clip.with_suffix(".wav").unlink()
