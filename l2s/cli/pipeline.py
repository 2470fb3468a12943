"""``l2s pipeline build OUT --vsr DIR ...``: assemble a pipeline directory from trained components."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import click


def human_size(size: int) -> str:
    """``1234567`` -> ``"1.2 MB"`` (decimal units)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"  # pragma: no cover - the loop always returns


@click.group()
def pipeline() -> None:
    """Make and inspect pipeline directories (pipeline.yaml plus one model directory per component)."""


@pipeline.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--vsr", "vsr", metavar="DIR", help="Lip reader model directory (or a training run folder).")
@click.option("--aligner", "aligner", metavar="DIR",
              help="Aligner model directory (timing head + duration model of that lip reader).")
@click.option("--prior", "prior", metavar="DIR", help="Coarse prior (F0 + DDSP) model directory.")
@click.option("--generator", "generator", metavar="DIR", required=True, help="Mel generator model directory.")
@click.option("--guide", "guide", metavar="DIR|NAME",
              help="Guide model directory, or a guide that needs none (whisper).")
@click.option("--vocoder", "vocoder", metavar="DIR|NAME", required=True,
              help="Vocoder model directory, or a training-free vocoder (griffinlim).")
@click.option("--name", required=True, help="Model id recorded in pipeline.yaml (e.g. synthgrid-small).")
@click.option("--trained-on", default=None, metavar="CORPUS",
              help="Corpus family, e.g. synthgrid (synthetic-face models warn on real-world video).")
@click.option("--solver", default=None, metavar="NAME",
              help="The generator's default solver (default: its architecture's; a diffusion generator's is "
                   "LipVoicer's ddpm over every schedule step).")
@click.option("--steps", type=click.IntRange(min=0), default=None,
              help="The generator's default steps (default: its architecture's; content-flow: 0 is its "
                   "content decoder's mean alone).")
@click.option("--start-step", type=click.IntRange(min=1), default=None,
              help="Shallow diffusion from the coarse prior noised to this step (default: from pure noise).")
@click.option("--asr-start", type=click.IntRange(min=0), default=None,
              help="The guide applies at schedule steps t <= this (default: the generator's).")
@click.option("--asr-end", type=click.IntRange(min=0), default=None,
              help="... and at steps t >= this (default: the generator's; the last steps are then left to it).")
@click.option("--w-video", type=click.FloatRange(min=0), default=None,
              help="Classifier-free video guidance weight (default: LipVoicer's w1).")
@click.option("--w-asr", type=click.FloatRange(min=0), default=None,
              help="Guide weight (default: LipVoicer's w2; 0: the text does not steer the speech).")
@click.option("--beam-size", type=click.IntRange(min=0), default=0, show_default=True,
              help="Lip reader decoding: 0 greedy CTC, else the joint CTC/attention beam width.")
@click.option("--half", is_flag=True, help="Store float weights as float16 (half the size; loads as float32).")
@click.option("--card", "card_file", type=click.Path(exists=True, dir_okay=False), default=None, metavar="YAML",
              help="Model card text and results (summary, training, limitations, results) for OUT/README.md.")
@click.option("--eval-report", "eval_reports", multiple=True, type=click.Path(exists=True), metavar="REPORT",
              help="An `l2s evaluate` report.json (or its folder) whose figures and command go into the card "
                   "(repeatable).")
def build(out: str, vsr: Optional[str], aligner: Optional[str], prior: Optional[str], generator: str,
          guide: Optional[str], vocoder: str, name: str, trained_on: Optional[str], solver: Optional[str],
          steps: Optional[int], start_step: Optional[int], asr_start: Optional[int], asr_end: Optional[int],
          w_video: Optional[float], w_asr: Optional[float], beam_size: int, half: bool, card_file: Optional[str],
          eval_reports: Tuple[str, ...]) -> None:
    """Assemble OUT from trained component model directories.

    Each component is copied into OUT/<component>/ after checking it holds the right kind of model
    and our signal contract; the pipeline is loaded once before OUT appears (atomically). The
    sampler options set the generator's defaults in pipeline.yaml; an option its architecture does
    not have is refused. OUT/README.md is its model card (Hugging Face metadata: licence,
    library_name l2s, training data, results).
    """
    from l2s.diffusion.guidance import Guidance
    from l2s.pipeline.build import build_pipeline, directory_size
    from l2s.pipeline.card import card_text_from

    given = {"vsr": vsr, "aligner": aligner, "prior": prior, "generator": generator, "guide": guide,
             "vocoder": vocoder}
    options = {"solver": solver, "steps": steps, "start_step": start_step, "asr_start": asr_start,
               "asr_end": asr_end}
    card = card_text_from(card_file, eval_reports)
    path = build_pipeline(out, {k: v for k, v in given.items() if v is not None}, name=name, trained_on=trained_on,
                          generator={k: v for k, v in options.items() if v is not None},
                          guidance=Guidance(**{k: v for k, v in (("w_video", w_video), ("w_asr", w_asr))
                                               if v is not None}),
                          vsr_beam_size=beam_size, half=half, card=card)
    parts = ", ".join(k for k, v in given.items() if v is not None)
    storage = "float16" if half else "as trained"
    click.echo(f"built pipeline '{name}' in {Path(path)}: {parts}; {human_size(directory_size(path))} "
               f"(weights {storage})", err=True)


@pipeline.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--card", "card_file", type=click.Path(exists=True, dir_okay=False), default=None, metavar="YAML",
              help="Model card text and results (summary, training, limitations, results).")
@click.option("--eval-report", "eval_reports", multiple=True, type=click.Path(exists=True), metavar="REPORT",
              help="An `l2s evaluate` report.json (or its folder) whose figures and command go in (repeatable).")
def card(directory: str, card_file: Optional[str], eval_reports: Tuple[str, ...]) -> None:
    """(Re)write DIRECTORY/README.md, the model card of a pipeline directory (no weight file is touched)."""
    from l2s.pipeline.card import card_text_from, write_card
    from l2s.pipeline.spec import read_spec

    spec = read_spec(directory)
    path = write_card(directory, spec, card_text_from(card_file, eval_reports))
    click.echo(f"wrote {path}", err=True)


@pipeline.command()
@click.argument("model", metavar="MODEL")
@click.argument("repo_id", metavar="REPO_ID")
@click.option("--private", is_flag=True, default=None, help="Create the repo private.")
@click.option("--branch", default=None, help="Push to this branch (created if needed) instead of main.")
@click.option("--create-pr", is_flag=True, help="Open a pull request instead of committing directly.")
@click.option("--message", "commit_message", default="Upload l2s pipeline", show_default=True,
              help="Commit message.")
@click.option("--token", default=None, envvar="HF_TOKEN", help="Access token (default: HF_TOKEN or the saved login).")
def push(model: str, repo_id: str, private: Optional[bool], branch: Optional[str], create_pr: bool,
         commit_message: str, token: Optional[str]) -> None:
    """Upload MODEL (a pipeline directory or bundled name) to the Hugging Face model repo REPO_ID.

    What is uploaded is what `Lip2Speech.save_pretrained` writes: pipeline.yaml, one directory per
    component and the model card README.md.
    """
    from l2s.pipeline import Lip2Speech

    pipe = Lip2Speech.from_pretrained(model, device="cpu")
    url = pipe.push_to_hub(repo_id, token=token, private=private, branch=branch, create_pr=create_pr,
                           commit_message=commit_message)
    click.echo(f"pushed {pipe.model_id} to {repo_id}: {url}", err=True)
