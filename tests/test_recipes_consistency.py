"""Every key a recipe YAML sets at top level is read by the code (as SpeechBrain's ``tests/consistency``).

A key counts as read when the sources of its stage (the stage module of ``l2s.train.runner.STAGES``,
the ``l2s.train`` modules it imports, and the shared ``brain``/``common``/``runner``) name it as a
string (``hparams["key"]``, ``hparams.get("key")``) or an attribute (``self.hparams.key``), when it is one
of SpeechBrain's ``Brain`` run options (``max_grad_norm``, ``ckpt_interval_minutes``...: ``Brain`` reads
them from the hparams), or when another key of the same YAML uses it through ``!ref <key>``. Keys starting
with ``__`` run at load time (``__set_seed``) and need no reader. A key set but never read is a bug: a
researcher would change it and nothing would happen.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import re
from pathlib import Path
from typing import List, Set

import pytest

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted([*REPO.glob("recipes/*/hparams/*.yaml"), *REPO.glob("vocoders/*/hparams.yaml")])
SHARED = ("l2s.train.brain", "l2s.train.common", "l2s.train.runner")
TOP_KEY = re.compile(r"^([A-Za-z_]\w*)\s*:", re.MULTILINE)
REF = re.compile(r"<([A-Za-z_]\w*)")


def top_level_keys(text: str) -> List[str]:
    """The keys a YAML sets at column 0 (comments and nested keys left out)."""
    return TOP_KEY.findall(text)


def referenced_keys(text: str) -> Set[str]:
    """Keys used through ``!ref <key>`` / ``!copy <key>`` (the first name inside the brackets)."""
    refs: Set[str] = set()
    for line in text.splitlines():
        code = line.split("#", 1)[0]
        if "!ref" in code or "!copy" in code:
            refs.update(REF.findall(code))
    return refs


def stage_modules(stage: str) -> List[str]:
    """The stage's module, the ``l2s.train`` modules it imports, and the shared training modules."""
    from l2s.train.runner import STAGES

    names = [STAGES[stage]]
    tree = ast.parse(Path(importlib.import_module(STAGES[stage]).__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("l2s.train."):
            names.append(node.module)
    return sorted(set(names) | set(SHARED))


def read_in_source(key: str, source: str) -> bool:
    """``key`` as a string literal or an attribute name in ``source``."""
    return re.search(rf"""(["']){key}\1|\.{key}\b""", source) is not None


def run_options() -> Set[str]:
    """SpeechBrain's ``Brain`` run options: it takes each from the hparams when the recipe sets it."""
    from speechbrain.core import RunOptions

    return {f.name for f in dataclasses.fields(RunOptions)}


def unread_keys(recipe: Path) -> List[str]:
    text = recipe.read_text()
    stage = re.search(r"^stage:\s*(\w+)", text, re.MULTILINE)
    assert stage, f"{recipe}: no stage"
    source = "\n".join(Path(importlib.import_module(m).__file__).read_text() for m in stage_modules(stage.group(1)))
    used = referenced_keys(text) | run_options()
    return [k for k in top_level_keys(text)
            if not k.startswith("__") and k not in used and not read_in_source(k, source)]


@pytest.mark.parametrize("recipe", RECIPES, ids=[str(r.relative_to(REPO)) for r in RECIPES])
def test_every_recipe_key_is_read(recipe):
    assert unread_keys(recipe) == [], f"{recipe.relative_to(REPO)} sets keys no code reads"


def test_the_check_catches_an_unread_key(tmp_path):
    """The scanner is not vacuous: a made-up key is reported, read and referenced keys are not."""
    recipe = tmp_path / "melgen.yaml"
    recipe.write_text("stage: melgen\nlr: 0.1\nopt_class: !name:torch.optim.Adam\n    lr: !ref <lr>\n"
                      "cond_dropout: 0.2\nmax_grad_norm: 1.0\n__set_seed: 1\nwarmup_stepz: 3  # <lr>\n")
    assert unread_keys(recipe) == ["warmup_stepz"]


def test_recipes_are_found():
    names = {f"{r.parent.parent.name}/{r.stem}" if r.parent.name == "hparams" else r.parent.name for r in RECIPES}
    stages = ("vsr", "f0_ddsp", "asr_guide", "melgen")
    assert {f"{c}/{s}" for c in ("synthgrid", "grid", "lrs2", "lrs3") for s in stages} <= names
    assert {"vocos", "hifigan"} <= names


def required_reads(source: str) -> Set[str]:
    """Keys the code reads without a default (``hparams["key"]``, ``self.hparams.key``), less those it sets itself."""
    reads = set(re.findall(r"""hparams\[["'](\w+)["']\](?!\s*=[^=])""", source))
    reads |= set(re.findall(r"self\.hparams\.(\w+)", source))
    return reads - set(re.findall(r"""hparams\[["'](\w+)["']\]\s*=[^=]""", source))


@pytest.mark.parametrize("recipe", RECIPES, ids=[str(r.relative_to(REPO)) for r in RECIPES])
def test_every_key_the_stage_requires_is_set(recipe):
    """The reverse check: a key its stage reads without a default is in the recipe (else a KeyError mid-run)."""
    text = recipe.read_text()
    stage = re.search(r"^stage:\s*(\w+)", text, re.MULTILINE).group(1)
    source = "\n".join(Path(importlib.import_module(m).__file__).read_text() for m in stage_modules(stage))
    assert sorted(required_reads(source) - set(top_level_keys(text))) == []


@pytest.mark.parametrize("folder", sorted({r.parent for r in RECIPES if (r.parent / "melgen.yaml").is_file()}),
                         ids=lambda p: p.parent.name)
def test_guide_asr_and_mel_generator_share_a_schedule(folder):
    """ASR guidance is only right when the guide was trained on the mel generator's noise levels."""
    from l2s.train.runner import load_hparams

    loaded = {}
    for stage in ("asr_guide", "melgen"):
        text = (folder / f"{stage}.yaml").read_text()
        keys = [line.split(":")[0] for line in text.splitlines() if "!PLACEHOLDER" in line]
        loaded[stage] = load_hparams(str(folder / f"{stage}.yaml"), "".join(f"{k}: /nowhere\n" for k in keys))
    assert loaded["asr_guide"]["schedule"] == loaded["melgen"]["schedule"]
    assert 0 < loaded["asr_guide"]["t_max"] <= loaded["melgen"]["schedule"].num_steps
    assert loaded["asr_guide"]["preset"] == loaded["melgen"]["preset"]


def test_guide_tokenizer_covers_lrs_text():
    """LRS transcripts after ``normalise_text`` are a-z, apostrophes and spaces: all in the guide's characters.
    Anything else (a digit, an accented letter) becomes ``<unk>`` and is dropped from decoded text."""
    from l2s.corpora.layout import normalise_text
    from l2s.text.tokenizer import CharTokenizer

    tok = CharTokenizer()
    text = normalise_text("AND I DON'T  {LAUGHTER} KNOW WHY THEY'RE HERE")
    ids = tok.encode(text)
    assert tok.unk_id not in ids and tok.decode(ids) == text == "and i don't laughter know why they're here"
    odd = tok.encode(normalise_text("TOP 10 CAFÉS"))
    assert odd.count(tok.unk_id) == 3 and tok.decode(odd) == "top  cafs"


@pytest.mark.parametrize("name", ["lrs2", "lrs3"])
def test_lrs_vocoder_recipe_is_the_shared_hifigan_one(name):
    """``recipes/lrs*/hparams/vocoder.yaml`` only swaps the test manifests of ``vocoders/hifigan``: no drift."""
    def body(path: Path) -> List[str]:
        lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
        start = lines.index("test_manifests:")
        end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith(" "))
        return lines[:start] + lines[end:]

    recipe = REPO / "recipes" / name / "hparams" / "vocoder.yaml"
    assert body(recipe) == body(REPO / "vocoders/hifigan/hparams.yaml")
    assert "    test: !ref <data_folder>/test.jsonl" in recipe.read_text()
