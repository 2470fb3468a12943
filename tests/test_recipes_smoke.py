"""Smoke-train every stage of every recipe for one tiny epoch on CPU (as SpeechBrain's recipe tests do).

The recipes run unchanged; only command-line overrides shrink them: one epoch, small batches, no data
workers and micro-sized models (``--preset=tiny`` plus ``--model={field overrides}``, the one way every stage
sets its model size). Data: SynthGRID for its own recipe, and for GRID, LRS2 and LRS3 the miniature replicas of
``tests/replicas.py`` prepared once per session with :func:`l2s.corpora.prepare_corpus.prepare_corpus`.
The later stages read the fresh tiny lip reader and coarse prior of ``tests/_tiny_corpus.py``; the LRS
lip readers train with a SentencePiece tokenizer trained here on the replicas' transcripts.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, List

import pytest
import torch

from l2s.data.manifest import read_manifest
from tests import replicas
from tests._tiny_corpus import tiny_corpus

REPO = Path(__file__).resolve().parents[1]
CORPORA = ("grid", "lrs2", "lrs3")
STAGES = ("vsr", "prior", "guide", "generator")
BUILDERS = {"grid": replicas.build_grid, "lrs2": replicas.build_lrs2, "lrs3": replicas.build_lrs3}

COMMON = ["--number_of_epochs=1", "--num_workers=0", "--device=cpu"]
# A micro lip reader: the tiny preset narrowed further (the recipe's tokenizer kind is kept).
VSR_MICRO = ("frontend_widths: [8, 8, 8, 16], d_model: 32, heads: 2, encoder_ffn: 64, encoder_layers: 1, "
             "conv_kernel: 3, decoder_ffn: 64, decoder_layers: 1")
TINY: Dict[str, List[str]] = {
    "vsr": ["--max_frames_per_batch=80", "--valid_beam_size=0", "--test_beam_size=2", "--warmup_steps=2"],
    "prior": ["--preset=tiny", "--max_frames_per_batch=80", "--stat_batches=1"],
    "guide": ["--preset=tiny", "--max_frames_per_batch=80", "--eval_steps=[0, 300]", "--warmup_steps=2",
              "--model={d_model: 32, heads: 2, ffn: 64, layers: 1, conv_kernel: 3, step_dim: 16}"],
    "generator": ["--preset=tiny", "--max_frames_per_batch=80", "--eval_steps=[10, 300]",
                  "--model={channels: 8, layers: 2, dilation_cycle: 2, cond_channels: 8, step_dim: 8, "
                  "step_hidden: 16}"],
}
VOCODER_TINY = {
    "vocos": ["--model={dim: 16, intermediate_dim: 32, num_layers: 1}"],
    "hifigan": ["--model={upsample_initial_channel: 16, resblock_kernel_sizes: [3], "
                "resblock_dilation_sizes: [[1, 3]]}"],
}
VOCODER_COMMON = ["--mpd_channels=[4, 8, 8, 8, 8]", "--mrd_channels=4", "--segment_frames=20", "--max_batch=2",
                  "--metric_utterances=0", "--max_frames_per_batch=80"]


def _spm_dir(texts: List[str], out: Path) -> Path:
    """A tiny SentencePiece model + Auto-AVSR units file (upper case, as Auto-AVSR's) in ``out``."""
    import io

    import sentencepiece as spm

    from l2s.text.tokenizer import SPM_MODEL_FILE, SPM_UNITS_FILE, UNK

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter([t.upper() for t in texts]), model_writer=model,
                                   vocab_size=40, hard_vocab_limit=False, model_type="unigram",
                                   minloglevel=2, num_threads=1)
    out.mkdir(parents=True)
    (out / SPM_MODEL_FILE).write_bytes(model.getvalue())
    proc = spm.SentencePieceProcessor(model_proto=model.getvalue())
    pieces = [proc.id_to_piece(i) for i in range(proc.get_piece_size())
              if not (proc.is_unknown(i) or proc.is_control(i))]
    units = [UNK, *pieces]
    (out / SPM_UNITS_FILE).write_text("".join(f"{u} {i}\n" for i, u in enumerate(units, start=1)))
    return out


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> Dict[str, Path]:
    """Recipe name -> its prepared data folder (each replica built and prepared once)."""
    from l2s.corpora.prepare_corpus import prepare_corpus, read_corpus

    rows = replicas.make_source_clips(tmp_path_factory.mktemp("smoke_synthgrid"), n=6, seed=3)
    folders = {"synthgrid": tiny_corpus().data}
    for name, build in BUILDERS.items():
        root = tmp_path_factory.mktemp(f"smoke_{name}_root")
        build(rows, root)
        out = tmp_path_factory.mktemp(f"smoke_{name}_data")
        result = prepare_corpus(read_corpus(name, root), out)
        assert result.done == 6 and result.rejected == 1  # the replica's broken clip
        _fill_empty_splits(out)
        folders[name] = out
    return folders


def _fill_empty_splits(folder: Path) -> None:
    """Six clips leave some hash-drawn splits empty (GRID's valid/test-seen, LRS3's valid): give them
    the training clips, so that every recipe's valid and test loops run."""
    from l2s.data.manifest import write_manifest

    train = read_manifest(folder / "train.jsonl")
    assert train
    for manifest in folder.glob("*.jsonl"):
        if not read_manifest(manifest):
            write_manifest(manifest, train)


@pytest.fixture(scope="module")
def spm_dir(corpora, tmp_path_factory) -> Path:
    texts = [u.text for name in ("lrs2", "lrs3") for split in ("train", "valid", "test")
             for u in read_manifest(corpora[name] / f"{split}.jsonl")]
    return _spm_dir(texts, tmp_path_factory.mktemp("smoke_spm") / "spm")


def _recipe(name: str, stage: str) -> Path:
    return REPO / "recipes" / name / "hparams" / f"{stage}.yaml"


def _stage_args(name: str, stage: str, spm: Path) -> List[str]:
    small = tiny_corpus()
    args = list(TINY[stage])
    if stage == "vsr":
        if name in ("lrs2", "lrs3"):
            from l2s.text.tokenizer import load_tokenizer

            vocab = load_tokenizer("sentencepiece", spm).vocab_size
            args += [f"--tokenizer_dir={spm}", "--preset=tiny",
                     f"--model={{tokenizer: sentencepiece, vocab_size: {vocab}, {VSR_MICRO}}}"]
        else:
            args += ["--preset=tiny", f"--model={{tokenizer: char, vocab_size: 31, {VSR_MICRO}}}"]
        if name == "synthgrid":
            args += ["--lm_order=3", "--lm_weight=0.3"]
    if stage in ("prior", "generator"):
        args.append(f"--vsr_model={small.vsr}")
    if stage == "generator":
        args.append(f"--prior_model={small.prior}")
    return args


def _placeholders(recipe: Path, data: Path, out: Path) -> str:
    """Overrides filling every ``!PLACEHOLDER`` of ``recipe`` and the recipes it extends (data and output
    folders, dummy model paths)."""
    from l2s.train.runner import recipe_chain

    values = {"data_folder": data, "output_folder": out}
    text = "\n".join(path.read_text() for path in recipe_chain(str(recipe)))
    keys = [line.split(":")[0] for line in text.splitlines() if "!PLACEHOLDER" in line]
    return "".join(f"{k}: {values.get(k, '/nowhere')}\n" for k in keys)


def _check_run(results, out: Path, test_splits) -> None:
    """One real optimiser pass happened, every test split was scored, the model was exported."""
    assert results["rank_weight_digests"] == [results["rank_weight_digests"][0]]
    assert results["rank_weight_digests"][0] != results["initial_weight_digest"]  # the weights moved
    for split in test_splits:
        assert math.isfinite(results[split]["loss"]), (split, results[split])
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(test_splits) <= set(metrics)
    assert (out / "model").is_dir() and any((out / "model").iterdir())
    assert "epoch: 1" in (out / "train_log.txt").read_text()


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("name", ("synthgrid", *CORPORA))
def test_recipe_stage_smoke_trains(name, stage, corpora, spm_dir, tmp_path):
    from l2s.train.runner import load_hparams, run

    torch.set_num_threads(1)
    recipe = _recipe(name, stage)
    out = tmp_path / "exp"
    argv = [str(recipe), f"--data_folder={corpora[name]}", f"--output_folder={out}", *COMMON,
            *_stage_args(name, stage, spm_dir)]
    results = run(argv)
    # the recipe's own defaults are untouched by the overrides above
    defaults = load_hparams(str(recipe), _placeholders(recipe, corpora[name], tmp_path / "d"))
    assert defaults["preset"] == ("tiny" if name == "synthgrid" else "base")
    _check_run(results, out, list(defaults["test_manifests"]))
    if stage == "vsr":
        from l2s.models.vsr import load_vsr

        model = load_vsr(out / "model")
        # with lm_order set (here for synthgrid only), a language model counted on the training text
        # joins the test beam search and is exported with the model
        assert (model.lm is not None) == (name == "synthgrid")
        if model.lm is not None:
            assert model.lm.options.order == 3 and model.beam_options(2).lm_weight == 0.3
        if name != "synthgrid":
            assert model.config.tokenizer == ("char" if name == "grid" else "sentencepiece")
            assert model.config.d_model == 32


@pytest.mark.parametrize("recipe", ["vocoders/vocos/hparams.yaml", "vocoders/vocos-small/hparams.yaml",
                                    "vocoders/hifigan/hparams.yaml", "recipes/lrs2/hparams/vocoder.yaml",
                                    "recipes/lrs3/hparams/vocoder.yaml"])
def test_vocoder_recipe_smoke_trains(recipe, corpora, tmp_path):
    from l2s.train.runner import load_hparams, run

    torch.set_num_threads(1)
    name = "grid" if recipe.startswith("vocoders/") else recipe.split("/")[1]
    out = tmp_path / "exp"
    arch = load_hparams(str(REPO / recipe), _placeholders(REPO / recipe, corpora[name], out))["arch"]
    results = run([str(REPO / recipe), f"--data_folder={corpora[name]}", f"--output_folder={out}", *COMMON,
                   *VOCODER_TINY[arch], *VOCODER_COMMON])
    assert results["steps"] >= 1
    splits = ["test-seen", "test-unseen"] if name == "grid" else ["test"]
    for split in ["valid", *splits]:
        assert math.isfinite(results[split]["mel_l1"]) and results[split]["mel_l1"] > 0, (split, results)
    assert (out / "model").is_dir() and "epoch: 1" in (out / "train_log.txt").read_text()


def test_content_flow_recipe_smoke_trains(tmp_path):
    """The content-flow generator's recipe (SynthGRID): the transcripts aligned on the lip reader's CTC head
    (no aligner model), one epoch of the micro networks, exported and loadable."""
    from l2s.arch import load_model
    from l2s.models.generator.content_flow import ContentFlow
    from l2s.train.runner import load_hparams, run

    torch.set_num_threads(1)
    small = tiny_corpus()
    recipe = _recipe("synthgrid", "content_flow")
    out = tmp_path / "exp"
    results = run([str(recipe), f"--data_folder={small.data}", f"--output_folder={out}", *COMMON, "--preset=micro",
                   "--max_frames_per_batch=80", f"--vsr_model={small.vsr}", f"--prior_model={small.prior}"])
    defaults = load_hparams(str(recipe), _placeholders(recipe, small.data, tmp_path / "d"))
    assert defaults["preset"] == "tiny" and defaults["arch"] == "content-flow"
    _check_run(results, out, list(defaults["test_manifests"]))
    for key in ("mean_l1", "mean_rms", "prior_l1", "sample_l1", "refiner_l1_t0.5"):
        assert math.isfinite(results["test-unseen"][key]), key
    model = load_model(out / "model", "generator")
    assert isinstance(model, ContentFlow) and model.config.feature_dim == 128  # the lip reader's width
