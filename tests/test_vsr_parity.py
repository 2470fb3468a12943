"""The small Auto-AVSR fixture model, loaded through the converter, reproduces every saved tensor."""

from __future__ import annotations

import json
from typing import Dict

import pytest
import torch

from l2s.models.vsr.convert import convert_state_dict, infer_config, load_checkpoint
from l2s.models.vsr.decoding import greedy_ctc
from l2s.models.vsr.roi_transforms import rgb_to_gray, roi_to_input
from l2s.models.vsr.transformer_decoder import causal_mask
from l2s.models.vsr.model import VSRModel, padding_mask
from l2s.models.vsr.loss import add_sos_eos
from tests.conftest import fixture_dir

ATOL = RTOL = 1e-4


@pytest.fixture(scope="module")
def fx():
    from safetensors.torch import load_file

    root = fixture_dir("auto_avsr")
    state_dict = convert_state_dict(load_checkpoint(root / "small.safetensors"))
    model = VSRModel(infer_config({k: tuple(v.shape) for k, v in state_dict.items()}))
    model.load_state_dict(state_dict, strict=True)
    return {"model": model.eval(), "io": load_file(str(root / "small.io.safetensors")),
            "decode": json.loads((root / "small.decode.json").read_text())}


def _close(ours: torch.Tensor, ref: torch.Tensor, key: str) -> None:
    assert ours.shape == ref.shape, f"{key}: shape {tuple(ours.shape)} != {tuple(ref.shape)}"
    if ref.dtype in (torch.bool, torch.int64):
        assert torch.equal(ours, ref), key
    else:
        torch.testing.assert_close(ours.to(ref.dtype), ref, atol=ATOL, rtol=RTOL, msg=key)


def _batched_outputs(model: VSRModel, io: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Every tensor of the batched path (``E2E.forward`` in eval mode), captured with forward hooks."""
    got: Dict[str, torch.Tensor] = {}
    hooks = []
    for name, module in model.named_modules():
        if name.startswith(("encoder.encoders.0.", "decoder.decoders.0.")) and name.count(".") == 3:
            hooks.append(module.register_forward_hook(
                lambda mod, args, out, name=name: got.__setitem__(f"{name}.out", out)))
    for name in ("encoder.encoders.0", "encoder.encoders.1", "decoder.decoders.0", "decoder.embed",
                 "decoder.after_norm"):
        hooks.append(model.get_submodule(name).register_forward_hook(
            lambda mod, args, out, name=name: got.__setitem__(f"{name}.out", out)))
    hooks.append(model.encoder.embed.register_forward_hook(
        lambda mod, args, out: got.update({"encoder.embed.out_x": out[0], "encoder.embed.out_pos_emb": out[1]})))
    for stage in range(1, 5):
        hooks.append(model.get_submodule(f"frontend.trunk.layer{stage}").register_forward_hook(
            lambda mod, args, out, stage=stage: got.__setitem__(f"frontend.trunk.layer{stage}.out_b0_t0to5",
                                                                out[:5])))
    hooks.append(model.frontend.frontend3D.register_forward_hook(
        lambda mod, args, out: got.__setitem__("frontend.frontend3D.out_b0_t0to5", out[:1, :, :5])))
    for attn in ("encoder.encoders.0.self_attn", "decoder.decoders.0.src_attn"):
        model.get_submodule(attn).keep_attention = True
    try:
        video, lengths, labels = io["input.video"], io["input.lengths"], io["input.labels"]
        with torch.no_grad():
            got["frontend.out"] = model.frontend(video)
            got["proj_encoder.out"] = model.proj_encoder(got["frontend.out"])
            mask = padding_mask(lengths, video.shape[1])
            enc = got["encoder.out"] = model.encoder(got["proj_encoder.out"], mask)
            got["encoder.out_mask"] = mask.unsqueeze(1)
            got["ctc.logits"] = model.ctc.ctc_lo(enc)
            got["ctc.log_probs"] = model.ctc(enc)
            got["ctc.frame_argmax"] = got["ctc.log_probs"].argmax(-1)
            ys_in, ys_out = add_sos_eos(labels, model.sos, model.eos)
            got["decoder.ys_in"], got["decoder.ys_out"] = ys_in, ys_out
            got["decoder.tgt_mask"] = causal_mask(ys_in.shape[1]).expand(ys_in.shape[0], -1, -1)
            got["decoder.logits"] = model.decoder(ys_in, enc, mask)
            got["decoder.log_probs"] = torch.log_softmax(got["decoder.logits"], -1)
            loss = model(video, lengths, labels)
        got.update({"loss.total": loss.total, "loss.ctc": loss.ctc, "loss.att": loss.attention,
                    "loss.decoder_acc": loss.accuracy})
        got["encoder.encoders.0.self_attn.attn"] = model.encoder.encoders[0].self_attn.attn
        got["decoder.decoders.0.src_attn.attn"] = model.decoder.decoders[0].src_attn.attn
    finally:
        for hook in hooks:
            hook.remove()
        for attn in ("encoder.encoders.0.self_attn", "decoder.decoders.0.src_attn"):
            model.get_submodule(attn).keep_attention = False
    return got


def test_batched_path_matches_every_saved_tensor(fx):
    io = fx["io"]
    got = _batched_outputs(fx["model"], io)
    expected = [k for k in io if not k.startswith(("input.", "single"))]
    assert sorted(expected) == sorted(k for k in got if k in io), "a saved tensor is not reproduced"
    for key in expected:
        _close(got[key], io[key], key)
    greedy = [greedy_ctc(got["ctc.log_probs"][b, :int(n)]) for b, n in enumerate(io["input.lengths"])]
    assert greedy == fx["decode"]["greedy_ctc_batched"]


def test_unbatched_inference_path(fx):
    model, io, decode = fx["model"], fx["io"], fx["decode"]
    for b, n in enumerate(io["input.lengths"].tolist()):
        video = io["input.video"][b:b + 1, :n]
        with torch.no_grad():
            front = model.frontend(video)
            enc = model.encode_video(video)
            log_probs = model.ctc(enc)
            labels = io["input.labels"][b]
            ys_in = torch.cat([torch.tensor([model.sos]), labels[labels != -1]]).unsqueeze(0)
            logits = model.decoder(ys_in, enc)
            steps, cache = [], None
            for k in range(ys_in.shape[1]):  # incremental, with the decoder cache, as beam search runs it
                step, cache = model.decoder.forward_one_step(ys_in[:, :k + 1], enc, cache)
                steps.append(step)
        _close(front, io[f"single{b}.frontend.out"], "frontend")
        _close(enc, io[f"single{b}.encoder.out"], "encoder")
        _close(log_probs, io[f"single{b}.ctc.log_probs"], "ctc")
        _close(logits, io[f"single{b}.decoder.logits"], "decoder logits")
        _close(torch.stack(steps, 1), io[f"single{b}.decoder.step_log_probs"], "decoder steps")
        assert greedy_ctc(log_probs[0]) == decode["single"][b]["greedy_ctc"]


def test_padding_leak_is_reproduced_and_optional(fx):
    """Auto-AVSR's conv module mixes padded frames into item 1; ``mask_conv_padding`` stops that."""
    model, io = fx["model"], fx["io"]
    video, lengths = io["input.video"], io["input.lengths"]
    n = int(lengths[1])
    with torch.no_grad():
        batched = model.encode_video(video, lengths)[1, :n]
        model.encoder.mask_conv_padding = True
        try:
            masked = model.encode_video(video, lengths)[1, :n]
        finally:
            model.encoder.mask_conv_padding = False
    single = io["single1.encoder.out"][0]
    assert (batched - single).abs().max() > 0.1  # the leak, as in the fixture
    torch.testing.assert_close(masked, single, atol=ATOL, rtol=RTOL)


def test_roi_transform_matches_upstream_video_transform(fx):
    io = fx["io"]
    for b, n in enumerate(io["input.lengths"].tolist()):
        gray = rgb_to_gray(io[f"input.raw_video_{b}_uint8"].float() / 255.0)  # (T, 96, 96) in [0, 1]
        _close(roi_to_input(gray), io["input.video"][b, :n, 0], f"video {b}")
    batch = torch.zeros(2, 29, 96, 96)
    for b, n in enumerate(io["input.lengths"].tolist()):
        batch[b, :n] = rgb_to_gray(io[f"input.raw_video_{b}_uint8"].float() / 255.0)
    _close(roi_to_input(batch, io["input.lengths"]), io["input.video"][:, :, 0], "padded batch")
