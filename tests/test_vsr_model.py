"""The VSR model on random tensors: training loss, padding, decoder cache, augmentation, save/load, transcribe."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from l2s.config import CROP_SIZE, ROI_SIZE
from l2s.errors import InputError
from l2s.models.vsr.decoding import BeamSearchOptions
from l2s.models.vsr.roi_transforms import AugmentOptions, augment_roi, roi_to_input
from l2s.models.vsr import VSR_TINY, VSRModel, load_vsr, save_vsr
from l2s.models.vsr.loss import add_sos_eos, label_smoothing_loss, pad_labels
from l2s.text import CharTokenizer

# Tiny preset with one block per stage: the same code, faster tests.
CONFIG = dataclasses.replace(VSR_TINY, frontend_blocks=(1, 1, 1, 1), encoder_layers=2, decoder_layers=1)


def _batch(frames=(12, 8)):
    video = torch.randn(len(frames), max(frames), CROP_SIZE, CROP_SIZE)
    for b, n in enumerate(frames):
        video[b, n:] = 0
    labels = torch.tensor([[3, 4, 5, 6], [7, 8, -1, -1]])
    return video, torch.tensor(frames), labels


def test_training_loss_and_gradients():
    model = VSRModel(CONFIG).train()
    video, lengths, labels = _batch()
    loss = model(video, lengths, labels)
    assert torch.isfinite(loss.total) and loss.ctc > 0 and loss.attention > 0
    torch.testing.assert_close(loss.total, 0.1 * loss.ctc + 0.9 * loss.attention)
    loss.total.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_label_smoothing_loss_definition():
    logits, target = torch.randn(2, 3, 7), torch.tensor([[1, 2, 6], [4, -1, -1]])
    unsmoothed = F.cross_entropy(logits.view(-1, 7), target.view(-1), ignore_index=-1, reduction="sum") / 2
    torch.testing.assert_close(label_smoothing_loss(logits, target, 0.0), unsmoothed)
    # With smoothing: KL to (0.9 on target, 0.1/6 elsewhere), summed over the 4 valid positions.
    dist = torch.full((4, 7), 0.1 / 6)
    valid = target.view(-1) != -1
    dist[torch.arange(4), target.view(-1)[valid]] = 0.9
    logp = torch.log_softmax(logits.view(-1, 7)[valid], -1)
    expected = (dist * (dist.log() - logp)).sum() / 2
    torch.testing.assert_close(label_smoothing_loss(logits, target, 0.1), expected)
    assert torch.equal(pad_labels([[1, 2, 6], [4]]), target)
    ys_in, ys_out = add_sos_eos(target, 9, 9)
    assert ys_in.tolist() == [[9, 1, 2, 6], [9, 4, 9, 9]] and ys_out.tolist() == [[1, 2, 6, 9], [4, 9, -1, -1]]


def test_masked_conv_padding_makes_batches_match_single_clips():
    model = VSRModel(dataclasses.replace(CONFIG, mask_conv_padding=True)).eval()
    video, lengths, _ = _batch()
    with torch.no_grad():
        batched = model.encode_video(video, lengths)
        single = model.encode_video(video[1:, :8])
    torch.testing.assert_close(batched[1, :8], single[0], atol=1e-5, rtol=1e-5)


def test_decoder_cache_gives_the_full_forward():
    model = VSRModel(CONFIG).eval()
    memory, ys = torch.randn(3, 9, CONFIG.d_model), torch.randint(1, CONFIG.vocab_size - 1, (3, 5))
    with torch.no_grad():
        full = torch.log_softmax(model.decoder(ys, memory), -1)
        cache = None
        for k in range(ys.shape[1]):
            step, cache = model.decoder.forward_one_step(ys[:, :k + 1], memory, cache)
            torch.testing.assert_close(step, full[:, k], atol=1e-5, rtol=1e-5)


def test_augmentation():
    roi = torch.randint(0, 256, (2, 30, ROI_SIZE, ROI_SIZE), dtype=torch.uint8)
    lengths = torch.tensor([30, 20])
    gen = torch.Generator().manual_seed(1)
    out = augment_roi(roi, lengths, generator=gen)
    assert out.shape == (2, 30, CROP_SIZE, CROP_SIZE) and out.dtype == torch.float32
    assert torch.equal(out[1, 20:], torch.zeros(10, CROP_SIZE, CROP_SIZE))
    again = augment_roi(roi, lengths, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out, again)
    # Without masks, every output clip is a (possibly flipped) crop of its input at some offset.
    plain = augment_roi(roi, None, AugmentOptions(flip_prob=1.0, mask_window=1), torch.Generator().manual_seed(2))
    flipped = roi[0].flip(-1).float() / 255.0
    offsets = [(top, left) for top in range(ROI_SIZE - CROP_SIZE + 1) for left in range(ROI_SIZE - CROP_SIZE + 1)
               if torch.allclose(plain[0], roi_to_input(flipped[:, top:top + CROP_SIZE, left:left + CROP_SIZE]),
                                 atol=1e-6)]
    assert len(offsets) == 1
    # Time masks replace whole frames by the clip's mean.
    masked = augment_roi(roi[:1], None, AugmentOptions(flip_prob=0.0, mask_window=10, mask_stride=5),
                         torch.Generator().manual_seed(3))
    flat = masked[0].flatten(1)
    constant = (flat.max(1).values - flat.min(1).values) < 1e-6
    assert 0 < int(constant.sum()) < 30


def test_encode_save_load_and_transcribe(tmp_path):
    model = VSRModel(CONFIG, CharTokenizer()).eval()
    roi = torch.randint(0, 256, (2, 10, ROI_SIZE, ROI_SIZE), dtype=torch.uint8)
    with torch.no_grad():
        features = model.encode(roi, torch.tensor([10, 7]))
    assert features.shape == (2, 10, CONFIG.d_model) and model.feature_dim == CONFIG.d_model
    with pytest.raises(InputError):
        model.encode(roi[0])
    path = save_vsr(model, tmp_path / "vsr")
    loaded = load_vsr(path)
    assert loaded.config == CONFIG and isinstance(loaded.tokenizer, CharTokenizer)
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    for beam in (BeamSearchOptions(beam_size=3), None):
        result = loaded.transcribe(roi[0], beam=beam)
        assert isinstance(result.text, str)
        assert len(result.token_ids) == len(result.tokens) == len(result.confidences)
        assert all(0.0 < c <= 1.0 for c in result.confidences)
        assert loaded.tokenizer.decode(result.token_ids) == result.text
    with pytest.raises(InputError):
        loaded.transcribe(roi)


class _BiasedLM:
    """A unigram language model: the same next-token log-probabilities after every prefix."""

    def __init__(self, vocab: int, favourite: int) -> None:
        logits = torch.zeros(vocab)
        logits[favourite] = 4.0
        self.log_probs = torch.log_softmax(logits, -1)

    def score(self, ys: torch.Tensor) -> torch.Tensor:
        return self.log_probs.expand(ys.shape[0], -1)


def test_language_model_hook_and_score_bookkeeping():
    from l2s.models.vsr.decoding import beam_search

    model = VSRModel(CONFIG).eval()
    memory = torch.randn(8, CONFIG.d_model)
    with torch.no_grad():
        log_probs = model.ctc(memory.unsqueeze(0))[0]
    lm = _BiasedLM(CONFIG.vocab_size, favourite=5)
    options = BeamSearchOptions(beam_size=4, ctc_weight=0.3, lm_weight=2.0, length_bonus=0.5)
    hyps = beam_search(model.decoder, memory, log_probs, model.sos, model.eos, 0, options, lm=lm)
    for hyp in hyps:
        expected = (0.7 * hyp.scores["decoder"] + 0.3 * hyp.scores["ctc"] + 2.0 * hyp.scores["lm"]
                    + 0.5 * hyp.scores["length_bonus"])
        assert hyp.score == pytest.approx(expected, abs=1e-3)
        scored = list(hyp.yseq[1:]) if len(hyp.yseq) <= 8 + 1 else list(hyp.yseq[1:-1])  # forced eos is unscored
        assert hyp.scores["lm"] == pytest.approx(float(sum(lm.log_probs[t] for t in scored)), abs=1e-4)
        assert hyp.scores["length_bonus"] == len(scored)
    assert hyps[0].token_ids.count(5) >= 1  # the LM's favourite token shows up
