"""``l2s transcribe VIDEO``: read the lips and print the text."""

import json

import click

from l2s.cli._common import existing_file
from l2s.hub import DEFAULT_PIPELINE

DEFAULT_MODEL = DEFAULT_PIPELINE


@click.command()
@click.argument("video")
@click.option("-m", "--model", default=DEFAULT_MODEL, show_default=True,
              help="VSR model directory, bundled name or hub repo id (a pipeline directory works too).")
@click.option("--sidecar", default=None, help="Landmark sidecar (.landmarks.npz) to use instead of face detection.")
@click.option("--beam", default=10, show_default=True, type=click.IntRange(0, 200),
              help="Beam width of the joint CTC/attention search (0: greedy CTC).")
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@click.option("--json", "as_json", is_flag=True, help="Print text, tokens and confidences as JSON.")
def transcribe(video: str, model: str, sidecar: str, beam: int, device: str, as_json: bool) -> None:
    """Print the text spoken in VIDEO, read from the lips."""
    import torch

    from l2s.hub import PIPELINE_FILE, resolve
    from l2s.models.decoding import BeamSearchOptions
    from l2s.models.vsr import load_vsr
    from l2s.vision.roi import extract_roi

    path = existing_file(video, "video")
    model_dir = resolve(model)
    if (model_dir / PIPELINE_FILE).is_file():
        model_dir = model_dir / "vsr"
    vsr = load_vsr(model_dir, device=device)
    roi = extract_roi(path, sidecar=existing_file(sidecar, "landmark") if sidecar else None).roi
    options = BeamSearchOptions(beam_size=beam, ctc_weight=vsr.config.ctc_weight) if beam > 0 else None
    result = vsr.transcribe(torch.from_numpy(roi), beam=options)
    if as_json:
        click.echo(json.dumps({"text": result.text, "tokens": list(result.tokens),
                               "confidences": [round(c, 4) for c in result.confidences]}))
    else:
        click.echo(result.text)
