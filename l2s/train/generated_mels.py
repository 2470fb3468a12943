"""The mels a pipeline's generator makes for a prepared corpus split: the inputs of a vocoder's fine-tuning on
generated mels (ground-truth-aligned fine-tuning, as HiFi-GAN's and Tacotron 2's vocoders are tuned).

    python -m l2s.train.generated_mels MANIFEST OUT [--model PIPELINE] [--text lip|truth] [--steps N] [--seed S]
        [--device auto|cpu|cuda[:N]]

Each clip's mouth crops (the manifest's ``roi``, as ``l2s prepare`` writes them) go through the pipeline as
``l2s synthesize`` takes them (:class:`~l2s.pipeline.Lip2Speech` called on the crops: lip reading, the prior,
the timeline, the generator with its own settings unless ``--steps`` is given, long clips in chunks).
``--text lip`` (the default) voices the lip-read text, which is what the vocoder will hear at inference;
``--text truth`` places the manifest's transcript on the timeline instead.

The generated mel is frame-aligned with the recording (4 mel hops per video frame from the clip's first frame),
so a vocoder can learn to render it as the real audio. Writes ``OUT/mel/<id>.npy`` (``(T_m, 80)`` float32,
model space: the layout of ``l2s prepare``'s mels) and ``OUT/<MANIFEST's name>``: the same utterances with
``mel`` naming the generated mel (every other field kept). The vocoder recipes train on that manifest with
``--input_mel=manifest``. A rerun skips the clips whose mel is already there.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np

from l2s.errors import L2SError
from l2s.io.atomic import atomic_path

TEXT_SOURCES = ("lip", "truth")


@dataclass(frozen=True)
class GeneratedMelOptions:
    """How the mels are made.

    Attributes:
        model: the pipeline (a bundled name, a directory or a hub id).
        text: ``"lip"``: the lip-read text; ``"truth"``: the manifest's transcript.
        steps: the generator's sampler steps (None: the pipeline's own).
        seed: the seed of every clip's sampling.
        device: where the networks run (``auto``: CUDA when available).
    """

    model: str = "synthgrid-small"
    text: str = "lip"
    steps: Optional[int] = None
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.text not in TEXT_SOURCES:
            raise ValueError(f"text must be one of {TEXT_SOURCES}, got {self.text!r}")


@dataclass(frozen=True)
class GeneratedMels:
    """What a run wrote: the manifest, how many clips it voiced now and how many it found done."""

    manifest: Path
    voiced: int
    reused: int


def generate(manifest: Path, out: Path, options: GeneratedMelOptions = GeneratedMelOptions(),
             progress: bool = True) -> GeneratedMels:
    """Voice every clip of ``manifest`` to a mel under ``out`` (see the module's docstring).

    Raises:
        InputError: the manifest is missing or has a clip without ``roi`` (or without text for ``truth``),
            or ``out`` is the manifest's own folder (its manifest would be replaced).
    """
    from tqdm import tqdm

    from l2s.data.dataset import load_roi
    from l2s.data.manifest import read_manifest, write_manifest
    from l2s.errors import InputError
    from l2s.pipeline import Lip2Speech

    utts = read_manifest(manifest)
    if out.resolve() == manifest.resolve().parent:
        raise InputError(f"{out}: the manifest's own folder; give another OUT (its manifest would be replaced)")
    for u in utts:
        if u.roi is None:
            raise InputError(f"{manifest}: clip {u.id!r} has no 'roi' (prepare the corpus with l2s prepare)")
        if options.text == "truth" and not u.text:
            raise InputError(f"{manifest}: clip {u.id!r} has no text for --text truth")
    pipe = Lip2Speech.from_pretrained(options.model, device=options.device)
    folder = out / "mel"
    folder.mkdir(parents=True, exist_ok=True)
    written: List = []
    voiced = 0
    for u in tqdm(utts, unit="clip", disable=not progress):
        path = folder / f"{u.id}.npy"
        if not path.is_file():
            # the pipeline's own path, chunking included: the mel the vocoder will be given at inference
            result = pipe(load_roi(u.roi), text=u.text if options.text == "truth" else None, steps=options.steps,
                          seed=options.seed)
            with atomic_path(path) as tmp:  # a killed run leaves no half-written mel to be reused
                np.save(tmp, np.ascontiguousarray(result.mel.T, dtype=np.float32))  # (T_m, 80)
            voiced += 1
        written.append(dataclasses.replace(u, mel=path.resolve()))
    target = out / manifest.name
    write_manifest(target, written)
    return GeneratedMels(manifest=target, voiced=voiced, reused=len(utts) - voiced)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m l2s.train.generated_mels",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", type=Path, help="a prepared split's manifest (with 'roi' per clip)")
    parser.add_argument("out", type=Path, help="the folder for mel/<id>.npy and the new manifest")
    parser.add_argument("--model", default=GeneratedMelOptions.model, help="the pipeline (default: %(default)s)")
    parser.add_argument("--text", choices=TEXT_SOURCES, default="lip",
                        help="voice the lip-read text (default) or the manifest's transcript")
    parser.add_argument("--steps", type=int, default=None, help="the generator's steps (default: the pipeline's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.steps is not None and args.steps < 0:
        parser.error(f"--steps must be >= 0, got {args.steps}")
    try:
        options = GeneratedMelOptions(args.model, args.text, args.steps, args.seed, args.device)
        result = generate(args.manifest, args.out, options, progress=not args.quiet)
    except L2SError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps({"manifest": str(result.manifest), "voiced": result.voiced, "reused": result.reused}))


if __name__ == "__main__":
    main()
