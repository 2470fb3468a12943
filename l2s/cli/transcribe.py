"""``l2s transcribe VIDEO``: read the lips and print the text."""

import json

import click

from l2s.cli._common import existing_file, vsr_model_dir
from l2s.hub import DEFAULT_PIPELINE

DEFAULT_MODEL = DEFAULT_PIPELINE


@click.command()
@click.argument("video")
@click.option("-m", "--model", default=DEFAULT_MODEL, show_default=True,
              help="VSR model directory, bundled name or hub repo id (a pipeline directory works too).")
@click.option("--sidecar", default=None, help="Landmark sidecar (.landmarks.npz) to use instead of face detection.")
@click.option("--beam", default=10, show_default=True, type=click.IntRange(0, 200),
              help="Beam width of the joint CTC/attention search (0: greedy CTC).")
@click.option("--lm", "lm_path", default=None,
              help="Token n-gram language model (lm.json, from `l2s lm estimate`) for the beam search; "
                   "default: the one in the model directory, if any.")
@click.option("--lm-weight", default=None, type=click.FloatRange(0.0),
              help="Shallow-fusion weight of the language model (default: the model's recommended one; 0: off).")
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@click.option("--json", "as_json", is_flag=True, help="Print text, tokens and confidences as JSON.")
def transcribe(video: str, model: str, sidecar: str, beam: int, lm_path: str, lm_weight: float, device: str,
               as_json: bool) -> None:
    """Print the text spoken in VIDEO, read from the lips."""
    import torch

    from l2s.models.ngram_lm import load_lm
    from l2s.models.vsr import check_lm, load_vsr
    from l2s.vision.roi import extract_roi

    path = existing_file(video, "video")
    vsr = load_vsr(vsr_model_dir(model), device=device)
    if lm_path is not None:
        lm_file = existing_file(lm_path, "language model")
        vsr.lm = check_lm(load_lm(lm_file), vsr, lm_file)
    roi = extract_roi(path, sidecar=existing_file(sidecar, "landmark") if sidecar else None).roi
    result = vsr.transcribe(torch.from_numpy(roi), beam=vsr.beam_options(beam, lm_weight))
    if as_json:
        click.echo(json.dumps({"text": result.text, "tokens": list(result.tokens),
                               "confidences": [round(c, 4) for c in result.confidences]}))
    else:
        click.echo(result.text)
