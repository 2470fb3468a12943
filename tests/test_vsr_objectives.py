"""The lip reader's fine-tuning objectives: the phoneme CTC head, LIBS distillation, PCPG, the frozen front-end."""

from __future__ import annotations

import itertools
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from l2s.arch import save_model
from l2s.cli import main
from l2s.models.guide.ctc import CTC_GUIDE_MICRO, CTCGuide
from l2s.models.vsr import VSR_MICRO, VSR_TINY, build_vsr, load_vsr, save_vsr
from l2s.text.phonemes import DEFAULT_INVENTORY
from l2s.text.tokenizer import CharTokenizer
from l2s.train.distill import (DistillHeads, DistillWeights, TeacherOutput, distill_loss, frame_loss,
                               pool_to_frames, soft_target_loss)
from l2s.train.pcpg import PCPGOptions, pcpg_loss, prefix_distances, pseudo_convolve, step_rewards
from tests._tiny_corpus import tiny_corpus

RECIPE = Path(str(resources.files("l2s"))).parent / "recipes" / "synthgrid" / "hparams" / "vsr.yaml"


def _levenshtein(a, b) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def test_pool_to_frames_averages_groups_and_ignores_padding():
    x = torch.arange(10, dtype=torch.float32).view(1, 10, 1).repeat(2, 1, 1)
    pooled, lengths = pool_to_frames(x, torch.tensor([10, 5]), frames=6, factor=2)
    assert pooled.shape == (2, 6, 1)
    assert pooled[0, :5, 0].tolist() == [0.5, 2.5, 4.5, 6.5, 8.5] and pooled[0, 5, 0] == 0
    assert pooled[1, :3, 0].tolist() == [0.5, 2.5, 4.0]  # the partial last group averages its valid frame only
    assert lengths.tolist() == [5, 3]


def test_distillation_terms_vanish_when_the_student_matches_the_teacher():
    torch.manual_seed(0)
    states = torch.randn(2, 7, 4)
    log_probs = torch.log_softmax(torch.randn(2, 7, 5), -1)
    mask = torch.ones(2, 7, dtype=torch.bool)
    teacher = TeacherOutput(states=states, log_probs=log_probs, mask=mask)
    heads = DistillHeads(4, 4)
    with torch.no_grad():
        heads.frame.weight.copy_(torch.eye(4))
        heads.frame.bias.zero_()
    assert float(frame_loss(heads, states, teacher)) == pytest.approx(0.0, abs=1e-10)
    assert float(soft_target_loss(log_probs, teacher, 2.0)) == pytest.approx(0.0, abs=1e-5)
    assert float(frame_loss(heads, states + 1.0, teacher)) == pytest.approx(7.0, rel=1e-5)  # 7 frames x 1.0 per item
    with pytest.raises(Exception, match="one vocabulary"):
        soft_target_loss(torch.log_softmax(torch.randn(2, 7, 6), -1), teacher, 1.0)
    # only the active terms enter, each logged
    total, parts = distill_loss(DistillWeights(frame=0.5), heads, teacher, states + 1.0, log_probs)
    assert set(parts) == {"distill_frame"} and float(total) == pytest.approx(3.5, rel=1e-5)
    with pytest.raises(Exception, match="distillation weight"):
        DistillWeights(frame=-1.0)


def test_pcpg_rewards_track_the_edit_distance():
    rng = np.random.default_rng(0)
    for _ in range(20):
        ref = list(rng.integers(1, 4, rng.integers(1, 8)))
        hyp = list(rng.integers(1, 4, rng.integers(0, 9)))
        dist = prefix_distances(hyp, ref)
        assert [int(d) for d in dist] == [_levenshtein(hyp[:t], ref) for t in range(len(hyp) + 1)]
        rewards = step_rewards(hyp, ref)
        assert len(rewards) == len(hyp) + 1
        assert rewards.sum() == pytest.approx(1.0 - _levenshtein(hyp, ref) / len(ref))
    assert step_rewards([1, 2, 3], [1, 2, 3]).tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0.0])
    r = np.array([0.0, 0.0, 1.0, 0.0, 0.0])
    assert pseudo_convolve(r, 1).tolist() == r.tolist()
    spread = pseudo_convolve(r, 3)
    assert spread.tolist() == pytest.approx([0.0, 0.25, 0.5, 0.25, 0.0]) and spread.sum() == pytest.approx(1.0)
    with pytest.raises(Exception, match="odd"):
        PCPGOptions(kernel=4)


def test_pcpg_loss_samples_the_decoder_and_reaches_it():
    torch.manual_seed(0)
    model = build_vsr(VSR_MICRO, CharTokenizer()).train()
    features = torch.randn(2, 12, VSR_MICRO.d_model, requires_grad=True)
    refs = [[3, 4, 5], [6, 7]]
    loss, cer = pcpg_loss(model.decoder, features, torch.tensor([12, 9]), refs, model.sos, model.eos,
                          PCPGOptions(weight=1.0, samples=3, extra_tokens=2), torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and cer >= 0.0
    loss.backward()
    assert features.grad is not None and float(features.grad.abs().sum()) > 0
    assert model.decoder.training  # put back in training mode after sampling


def test_phoneme_head_is_saved_with_its_table(tmp_path):
    model = build_vsr(VSR_MICRO.__class__(**{**vars(VSR_MICRO), "phoneme_vocab": len(DEFAULT_INVENTORY)}),
                      CharTokenizer())
    out = save_vsr(model, tmp_path / "m")
    assert (out / "phonemes.txt").is_file()
    loaded = load_vsr(out)
    assert loaded.inventory == DEFAULT_INVENTORY
    feats = torch.randn(1, 5, VSR_MICRO.d_model)
    assert torch.allclose(loaded.phoneme_log_probs(feats), model.eval().phoneme_log_probs(feats))
    plain = build_vsr(VSR_MICRO, CharTokenizer())
    with pytest.raises(Exception, match="no phoneme CTC head"):
        plain.phoneme_log_probs(feats)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return save_model(CTCGuide(CTC_GUIDE_MICRO), tmp_path_factory.mktemp("teacher") / "guide")


def test_finetune_with_every_objective_starts_from_a_reader_and_exports_the_phoneme_head(tmp_path, teacher):
    corpus = tiny_corpus()
    out = tmp_path / "ft"
    cache = tmp_path / "frontend"
    args = ["train", str(RECIPE), f"--data_folder={corpus.data}", f"--output_folder={out}", "--number_of_epochs=1",
            "--max_frames_per_batch=400", "--test_beam_size=2", "--valid_beam_size=0", "--warmup_steps=2",
            f"--init_from={corpus.vsr}", "--freeze_frontend=true", f"--frontend_cache={cache}",
            "--phoneme_ctc_weight=0.1", f"--distill_teacher={teacher}", "--distill_frame_weight=0.1",
            "--distill_sequence_weight=0.1", "--distill_soft_weight=0.01", "--pcpg_weight=0.5", "--pcpg_samples=1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    log = (out / "train_log.txt").read_text()
    for term in ("phoneme_ctc", "distill_frame", "distill_sequence", "distill_soft", "pcpg", "sample_cer"):
        assert f"train {term}:" in log
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["test-unseen"]["WER"]
    start, tuned = load_vsr(corpus.vsr), load_vsr(out / "model")
    assert tuned.config.phoneme_vocab == len(DEFAULT_INVENTORY) and tuned.inventory == DEFAULT_INVENTORY
    # the frozen front-end is the source's, unchanged; the encoder moved
    for a, b in zip(start.frontend.state_dict().values(), tuned.frontend.state_dict().values()):
        assert torch.equal(a, b)
    assert not all(torch.equal(a, b) for a, b in zip(start.encoder.parameters(), tuned.encoder.parameters()))
    # its outputs were kept for the next run: one file per clip and view seen
    assert len(list(itertools.chain.from_iterable(d.glob("*.pt") for d in cache.iterdir()))) >= 4


@pytest.mark.parametrize("extra, message", [
    (["--distill_frame_weight=1"], "distill_teacher"),
    (["--pcpg_kernel=2", "--pcpg_weight=1"], "odd"),
    (["--phoneme_ctc_weight=-1"], "phoneme_ctc_weight"),
])
def test_bad_objective_settings_are_refused_in_one_line(tmp_path, extra, message):
    corpus = tiny_corpus()
    out = tmp_path / "bad"
    result = CliRunner().invoke(main, ["train", str(RECIPE), f"--data_folder={corpus.data}",
                                       f"--output_folder={out}", *extra])
    assert result.exit_code == 2 and message in result.output
    assert not (out / "model").exists()


def test_init_from_another_architecture_is_refused(tmp_path):
    corpus = tiny_corpus()
    other = save_vsr(build_vsr(VSR_TINY.__class__(**{**vars(VSR_TINY), "encoder_layers": 2}), CharTokenizer()),
                     tmp_path / "other")
    result = CliRunner().invoke(main, ["train", str(RECIPE), f"--data_folder={corpus.data}",
                                       f"--output_folder={tmp_path / 'o'}", f"--init_from={other}",
                                       "--number_of_epochs=1"])
    assert result.exit_code == 2 and "another architecture (differs in encoder_layers)" in result.output


def test_read_decoders_and_the_score_reader_command(tmp_path):
    """A phoneme-head reader saved with its lexicon reads through every decoder; the command scores them."""
    from l2s.models.vsr.lexicon import Lexicon, WordLM
    from l2s.models.vsr.reading import ReadOptions, read

    corpus = tiny_corpus()
    texts = [u["text"] for u in map(json.loads, (corpus.data / "train.jsonl").read_text().splitlines())]
    torch.manual_seed(0)
    model = build_vsr(VSR_TINY.__class__(**{**vars(VSR_TINY), "phoneme_vocab": len(DEFAULT_INVENTORY)}),
                      CharTokenizer())
    model.lexicon, model.word_lm = Lexicon.from_texts(texts), WordLM.from_texts(texts)
    path = save_vsr(model, tmp_path / "reader")
    loaded = load_vsr(path)
    assert loaded.lexicon == model.lexicon and loaded.word_lm is not None
    feats = torch.randn(20, VSR_TINY.d_model)
    words = set(w for t in texts for w in t.split())
    for decoder in ("greedy", "joint", "lexicon", "rescore"):
        text = read(loaded, feats, ReadOptions(decoder=decoder, beam_size=3))
        assert isinstance(text, str)
        if decoder == "lexicon" and text:
            assert set(text.split()) <= words  # only lexicon words
    assert read(loaded, feats, ReadOptions(decoder="lexicon"), reconstructor=lambda lp: f"{lp.shape[1]}") == "101"
    with pytest.raises(Exception, match="phoneme CTC head"):
        read(build_vsr(VSR_MICRO, CharTokenizer()), torch.randn(5, VSR_MICRO.d_model), ReadOptions(decoder="rescore"))
    out = tmp_path / "scores.json"
    args = ["score-reader", str(corpus.data / "test-unseen.jsonl"), "-m", str(path), "--decoder", "greedy",
            "--decoder", "lexicon", "--beam", "2", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    scores = json.loads(out.read_text())
    assert set(scores["decoders"]) == {"greedy", "lexicon"} and scores["decoders"]["lexicon"]["wer"] >= 0
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    plain = CliRunner().invoke(main, ["score-reader", str(corpus.data / "test-unseen.jsonl"), "-m", str(corpus.vsr),
                                      "--decoder", "rescore"])
    assert plain.exit_code == 2 and "phoneme CTC head" in plain.output


def test_finetune_exports_the_weight_average_with_ema_decay(tmp_path):
    corpus = tiny_corpus()
    out = tmp_path / "ema"
    args = ["train", str(RECIPE), f"--data_folder={corpus.data}", f"--output_folder={out}", "--number_of_epochs=1",
            "--max_frames_per_batch=100", "--test_beam_size=0", "--valid_beam_size=0", "--warmup_steps=2",
            f"--init_from={corpus.vsr}", "--freeze_frontend=true", "--ema_decay=0.9"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    (ckpt,) = (out / "save").glob("CKPT*")
    raw = torch.load(ckpt / "vsr.ckpt", map_location="cpu")
    average = {k[len("model."):]: v for k, v in torch.load(ckpt / "ema.ckpt", map_location="cpu").items()
               if k.startswith("model.")}
    exported = load_vsr(out / "model").state_dict()
    moved = [k for k in raw if k.startswith("encoder.") and not torch.equal(raw[k], average[k])]
    assert moved  # several steps: the average lags the last weights
    assert all(torch.equal(exported[k], average[k]) for k in moved)  # and the export is the average
    bad = CliRunner().invoke(main, ["train", str(RECIPE), f"--data_folder={corpus.data}",
                                    f"--output_folder={tmp_path / 'bad'}", "--ema_decay=1.5"])
    assert bad.exit_code == 2 and "ema_decay" in bad.output and not (tmp_path / "bad").exists()
