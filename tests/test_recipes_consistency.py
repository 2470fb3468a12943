"""Every key a recipe YAML sets at top level is read by the code (as SpeechBrain's ``tests/consistency``),
and a recipe that extends another sets only what differs from it.

A key counts as read when the sources of its stage (the stage module of ``l2s.train.runner.STAGES``,
the ``l2s.train`` modules it imports, and the shared ``brain``/``common``/``runner``) name it as a
string (``hparams["key"]``, ``hparams.get("key")``) or an attribute (``self.hparams.key``), when it is one
of SpeechBrain's ``Brain`` run options (``max_grad_norm``, ``ckpt_interval_minutes``...: ``Brain`` reads
them from the hparams), or when another key of the recipe (the file or one it extends) uses it through
``!ref <key>``. Keys starting with ``__`` run at load time (``__set_seed``) and need no reader. A key set but
never read is a bug: a researcher would change it and nothing would happen.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import re
from pathlib import Path
from typing import List, Optional, Set

import pytest

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted([*REPO.glob("recipes/*/hparams/*.yaml"), *REPO.glob("recipes/common/*.yaml"),
                  *REPO.glob("vocoders/*/hparams.yaml")])
DATASETS = ("synthgrid", "grid", "lrs2", "lrs3")
STAGES = ("vsr", "prior", "guide", "generator")
#: every dataset's stage recipes, and those of the stages only some datasets train (the aligner needs true timings)
DATASET_RECIPES = [(name, stage) for name in DATASETS for stage in STAGES] + [("synthgrid", "aligner")]
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


def stage_modules(stage: str, arch: Optional[str] = None) -> List[str]:
    """The stage's trainer module (the architecture's own, if it has one), the ``l2s.train`` modules it imports,
    and the shared training modules."""
    from l2s.arch import lookup
    from l2s.train.runner import STAGES

    trainer = (lookup(stage, arch).trainer if arch else None) or STAGES[stage]
    names = [trainer]
    tree = ast.parse(Path(importlib.import_module(trainer).__file__).read_text())
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


def chain_text(recipe: Path) -> str:
    """The text of ``recipe`` and of every recipe it extends."""
    from l2s.train.runner import recipe_chain

    return "\n".join(path.read_text() for path in recipe_chain(str(recipe)))


def stage_of(recipe: Path) -> str:
    stage = re.search(r"^stage:\s*(\w+)", chain_text(recipe), re.MULTILINE)
    assert stage, f"{recipe}: no stage"
    return stage.group(1)


def arch_of(recipe: Path) -> Optional[str]:
    """The recipe's ``arch`` (the last one set along its chain: a dataset's recipe overrides the shared one)."""
    found = re.findall(r"^arch:\s*([\w-]+)", chain_text(recipe), re.MULTILINE)
    return found[-1] if found else None


def stage_source(stage: str, arch: Optional[str] = None) -> str:
    return "\n".join(Path(importlib.import_module(m).__file__).read_text() for m in stage_modules(stage, arch))


def unread_keys(recipe: Path) -> List[str]:
    source = stage_source(stage_of(recipe), arch_of(recipe))
    used = referenced_keys(chain_text(recipe)) | run_options()
    return [k for k in top_level_keys(recipe.read_text())
            if not k.startswith("__") and k not in used and not read_in_source(k, source)]


@pytest.mark.parametrize("recipe", RECIPES, ids=[str(r.relative_to(REPO)) for r in RECIPES])
def test_every_recipe_key_is_read(recipe):
    assert unread_keys(recipe) == [], f"{recipe.relative_to(REPO)} sets keys no code reads"


def test_the_check_catches_an_unread_key(tmp_path):
    """The scanner is not vacuous: a made-up key is reported, read and referenced keys are not."""
    recipe = tmp_path / "generator.yaml"
    recipe.write_text("stage: generator\nlr: 0.1\nopt_class: !name:torch.optim.Adam\n    lr: !ref <lr>\n"
                      "model: {}\nmax_grad_norm: 1.0\n__set_seed: 1\nwarmup_stepz: 3  # <lr>\n")
    assert unread_keys(recipe) == ["warmup_stepz"]
    # keys of an extended recipe are checked too, and its references count
    child = tmp_path / "child.yaml"
    child.write_text("extends: generator.yaml\nlr: 0.2\nmisspelt_key: 1\n")
    assert unread_keys(child) == ["misspelt_key"]


def test_recipes_are_found():
    names = {f"{r.parent.parent.name}/{r.stem}" if r.parent.name == "hparams" else
             (f"common/{r.stem}" if r.parent.name == "common" else r.parent.name) for r in RECIPES}
    assert {f"{c}/{s}" for c, s in DATASET_RECIPES} <= names
    assert {f"common/{s}" for s in (*STAGES, "aligner", "vocoder")} <= names
    assert {"vocos", "vocos-small", "hifigan"} <= names


@pytest.mark.parametrize("name, stage", DATASET_RECIPES, ids=[f"{n}-{s}" for n, s in DATASET_RECIPES])
def test_dataset_recipes_extend_the_shared_one_and_set_only_what_differs(name, stage):
    """No copies: a dataset's recipe extends ``recipes/common/<stage>.yaml`` and every value it sets differs from
    the shared recipe's (the test splits excepted, which the shared recipe leaves to the datasets)."""
    from l2s.train.runner import _yaml, recipe_chain

    recipe = REPO / "recipes" / name / "hparams" / f"{stage}.yaml"
    chain = recipe_chain(str(recipe))
    assert [p.resolve() for p in chain] == [(REPO / "recipes" / "common" / f"{stage}.yaml").resolve(), recipe]
    base, own = (_yaml().load(p.read_text()) for p in chain)
    assert "test_manifests" in own and "test_manifests" not in base
    same = [k for k, v in own.items() if k not in ("extends", "test_manifests") and k in base and base[k] == v]
    assert same == [], f"{recipe.relative_to(REPO)} restates the shared recipe's {same}"


def required_reads(source: str) -> Set[str]:
    """Keys the code reads without a default (``hparams["key"]``, ``self.hparams.key``), less those it sets itself."""
    reads = set(re.findall(r"""hparams\[["'](\w+)["']\](?!\s*=[^=])""", source))
    reads |= set(re.findall(r"self\.hparams\.(\w+)", source))
    return reads - set(re.findall(r"""hparams\[["'](\w+)["']\]\s*=[^=]""", source))


#: the recipes one trains (the shared ones in recipes/common/ leave the test splits to them)
TRAINED = [r for r in RECIPES if r.parent.name != "common"]


@pytest.mark.parametrize("recipe", TRAINED, ids=[str(r.relative_to(REPO)) for r in TRAINED])
def test_every_key_the_stage_requires_is_set(recipe):
    """The reverse check: a key its stage reads without a default is in the recipe or one it extends (else a
    KeyError mid-run)."""
    source = stage_source(stage_of(recipe), arch_of(recipe))
    assert sorted(required_reads(source) - set(top_level_keys(chain_text(recipe)))) == []


def _placeholder_overrides(recipe: Path) -> str:
    keys = [line.split(":")[0] for line in chain_text(recipe).splitlines() if "!PLACEHOLDER" in line]
    return "".join(f"{k}: /nowhere\n" for k in keys)


@pytest.mark.parametrize("name", DATASETS)
def test_guide_and_generator_share_a_schedule(name):
    """Guidance is only right when the guide was trained on the generator's noise levels (a pipeline refuses
    the pair otherwise): the configs both recipes build agree."""
    from l2s.train.common import model_config
    from l2s.train.runner import load_hparams

    folder = REPO / "recipes" / name / "hparams"
    loaded = {stage: load_hparams(str(folder / f"{stage}.yaml"), _placeholder_overrides(folder / f"{stage}.yaml"))
              for stage in ("guide", "generator")}
    _, guide = model_config(loaded["guide"], "guide")
    _, generator = model_config(loaded["generator"], "generator")
    assert guide.schedule == generator.schedule
    assert 0 < guide.t_max <= generator.schedule.num_steps
    assert loaded["guide"]["preset"] == loaded["generator"]["preset"]


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
    """``recipes/lrs*/hparams/vocoder.yaml`` only gives its test manifest to the shared vocoder recipe, as
    ``vocoders/hifigan`` gives SynthGRID's: no copy that could drift."""
    from l2s.train.runner import _yaml, recipe_chain

    shared = (REPO / "recipes" / "common" / "vocoder.yaml").resolve()
    lrs = REPO / "recipes" / name / "hparams" / "vocoder.yaml"
    for recipe in (lrs, REPO / "vocoders" / "hifigan" / "hparams.yaml"):
        chain = recipe_chain(str(recipe))
        assert [p.resolve() for p in chain] == [shared, recipe.resolve()]
        assert set(_yaml().load(recipe.read_text())) == {"extends", "test_manifests"}
    assert "    test: !ref <data_folder>/test.jsonl" in lrs.read_text()
