"""A four-clip SynthGRID corpus with ROIs, a fresh tiny lip reader and a fresh coarse prior, for the
smoke runs of the ``prior``, ``guide`` and ``generator`` training stages (built once per test process)."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

SPLITS = ("train", "valid", "test-seen", "test-unseen")


@dataclass(frozen=True)
class TinyCorpus:
    """``data``: a folder with the recipe's manifests; ``vsr`` and ``prior``: model directories."""

    data: Path
    vsr: Path
    prior: Path


@lru_cache(maxsize=1)
def tiny_corpus() -> TinyCorpus:
    from l2s.arch import save_model
    from l2s.corpora.prepare_corpus import prepare_corpus, read_corpus
    from l2s.corpora.synthgrid.generate import make_clips
    from l2s.data.manifest import read_manifest, write_manifest
    from l2s.models.prior.ddsp import COARSE_PRIOR_TINY, CoarsePrior
    from l2s.models.vsr import VSR_TINY, build_vsr, save_vsr
    from l2s.text.tokenizer import CharTokenizer

    root = Path(tempfile.mkdtemp(prefix="l2s_tiny_corpus_"))
    atexit.register(shutil.rmtree, root, True)
    rows = make_clips(root / "clips", n=4, seed=0, speakers=2)
    (root / "clips" / "all.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    prepare_corpus(read_corpus("synthgrid", root / "clips"), root / "prep")
    utts = read_manifest(root / "prep" / "all.jsonl")
    data = root / "data"
    data.mkdir()
    parts = {"train": utts, "valid": utts[:2], "test-seen": utts[2:3], "test-unseen": utts[3:]}
    for split in SPLITS:
        write_manifest(data / f"{split}.jsonl", parts[split])
    vsr = save_vsr(build_vsr(VSR_TINY, CharTokenizer()), root / "vsr")
    prior = save_model(CoarsePrior(COARSE_PRIOR_TINY), root / "prior")
    return TinyCorpus(data=data, vsr=vsr, prior=prior)
