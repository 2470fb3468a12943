"""``l2s align VIDEO --text "..."``: place a known transcript on a silent video's timeline."""

import click

from l2s.cli._common import existing_file
from l2s.cli._options import device_option
from l2s.cli._timeline import check_outputs, emit, resolve_formats, timeline_options
from l2s.defaults import DEFAULT_PIPELINE
from l2s.errors import InputError


@click.command()
@click.argument("video")
@click.option("--text", required=True, help="The words spoken in VIDEO.")
@click.option("-m", "--model", default=DEFAULT_PIPELINE, show_default=True,
              help="Pipeline (its lip reader and aligner) or VSR model directory, bundled name or hub repo id.")
@click.option("--sidecar", default=None, help="Landmark sidecar (.landmarks.npz) to use instead of face detection.")
@device_option("Where the lip reader and the aligner run")
@timeline_options("json")
def align(video: str, text: str, model: str, sidecar: str, device: str, output_format: str, output_dir: str,
          word_timestamps: bool, language: str, aligner_dir: str) -> None:
    """Place TEXT on the timeline of VIDEO: word and phoneme start and end times, with confidences.

    The words are forced-aligned on the lip reader's frames (25 fps), then cut into phonemes. A text
    with more tokens than the frames allow is refused. Without --output-dir one format is printed.
    VIDEO '-' reads the video from stdin (printed, not written to --output-dir).
    """
    import torch

    from l2s.align import Aligner
    from l2s.cli._common import STDIO, input_path
    from l2s.cli._options import quiet_native_logs
    from l2s.device import resolve_device
    from l2s.vision.roi import extract_roi

    if video == STDIO and output_dir is not None:
        raise InputError("--output-dir names the files after VIDEO: a video from stdin prints one format to stdout")
    formats = resolve_formats(output_format, output_dir)
    dev = resolve_device(device)
    with input_path(video) as given:
        path = existing_file(str(given), "video")
        landmarks = existing_file(sidecar, "landmark") if sidecar else None
        check_outputs(output_dir, [path.stem], formats, [path, landmarks])
        aligner = Aligner.from_pretrained(model, aligner_dir, device=dev, language=language)
        with quiet_native_logs():
            roi = extract_roi(path, sidecar=landmarks).roi
        alignment = aligner.align_roi(torch.from_numpy(roi), text)
    emit(formats, alignment, alignment.text, word_timestamps, output_dir, path.stem)
