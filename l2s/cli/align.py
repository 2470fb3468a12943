"""``l2s align VIDEO --text "..."``: place a known transcript on a silent video's timeline."""

import click

from l2s.cli._common import existing_file
from l2s.cli._timeline import emit, resolve_formats, timeline_options
from l2s.hub import DEFAULT_PIPELINE


@click.command()
@click.argument("video")
@click.option("--text", required=True, help="The words spoken in VIDEO.")
@click.option("-m", "--model", default=DEFAULT_PIPELINE, show_default=True,
              help="Pipeline (its lip reader and aligner) or VSR model directory, bundled name or hub repo id.")
@click.option("--sidecar", default=None, help="Landmark sidecar (.landmarks.npz) to use instead of face detection.")
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@timeline_options("json")
def align(video: str, text: str, model: str, sidecar: str, device: str, output_format: str, output_dir: str,
          word_timestamps: bool, language: str, aligner_dir: str) -> None:
    """Place TEXT on the timeline of VIDEO: word and phoneme start and end times, with confidences.

    The words are forced-aligned on the lip reader's frames (25 fps), then cut into phonemes. A text
    with more tokens than the frames allow is refused. Without --output-dir one format is printed.
    """
    import torch

    from l2s.align import Aligner
    from l2s.vision.roi import extract_roi

    path = existing_file(video, "video")
    formats = resolve_formats(output_format, output_dir)
    aligner = Aligner.from_pretrained(model, aligner_dir, device=device, language=language)
    roi = extract_roi(path, sidecar=existing_file(sidecar, "landmark") if sidecar else None).roi
    alignment = aligner.align_roi(torch.from_numpy(roi), text)
    emit(formats, alignment, alignment.text, word_timestamps, output_dir, path.stem)
