"""``l2s transcribe VIDEO...``: read the lips; print the text, or write transcripts with timestamps."""

import contextlib
import json
import logging
import time

import click

from l2s.cli._common import existing_file, progress, vsr_model_dir
from l2s.cli._options import device_option
from l2s.cli._timeline import check_outputs, emit, resolve_formats, timeline_options, unique_stems
from l2s.defaults import DEFAULT_PIPELINE
from l2s.errors import InputError

DEFAULT_MODEL = DEFAULT_PIPELINE
log = logging.getLogger("l2s.cli.transcribe")


@click.command()
@click.argument("videos", nargs=-1, required=True, metavar="VIDEO...")
@click.option("-m", "--model", default=DEFAULT_MODEL, show_default=True,
              help="VSR model directory, bundled name or hub repo id (a pipeline directory works too, "
                   "and brings its aligner).")
@click.option("--sidecar", default=None, help="Landmark sidecar (.landmarks.npz) to use instead of face detection "
                                              "(one VIDEO only).")
@click.option("--beam", default=10, show_default=True, type=click.IntRange(0, 200),
              help="Beam width of the joint CTC/attention search (0: greedy CTC).")
@click.option("--lm", "lm_path", default=None,
              help="Token n-gram language model (lm.json, from `l2s lm estimate`) for the beam search; "
                   "default: the one in the model directory, if any.")
@click.option("--lm-weight", default=None, type=click.FloatRange(0.0),
              help="Shallow-fusion weight of the language model (default: the model's recommended one; 0: off).")
@device_option("Where the lip reader runs")
@click.option("--json", "as_json", is_flag=True, help="Print text, tokens and confidences as JSON.")
@timeline_options("txt")
def transcribe(videos, model: str, sidecar: str, beam: int, lm_path: str, lm_weight: float, device: str,
               as_json: bool, output_format: str, output_dir: str, word_timestamps: bool, language: str,
               aligner_dir: str) -> None:
    """Print the text spoken in each VIDEO, read from the lips (VIDEO '-': one video from stdin).

    With --output-format json/srt/vtt/tsv the text is placed on the video's timeline (words, their
    phonemes and confidences); with --output-dir each VIDEO gets DIR/<name>.<format> files, written
    together (never over an input; the folder is checked before the model loads).
    """
    import torch

    from l2s.align.subtitles import TIMED
    from l2s.cli._common import STDIO, input_path
    from l2s.cli._options import quiet_native_logs
    from l2s.device import resolve_device
    from l2s.models.vsr import check_lm, load_vsr
    from l2s.models.vsr.ngram_lm import load_lm
    from l2s.vision.roi import extract_roi

    if STDIO in videos and len(videos) > 1:
        raise InputError("'-' (stdin) must be the only VIDEO")
    if STDIO in videos and output_dir is not None:
        raise InputError("--output-dir names the files after each VIDEO: a video from stdin prints one format "
                         "to stdout")
    if sidecar is not None and len(videos) > 1:
        raise InputError("--sidecar goes with one VIDEO")
    if as_json and (output_dir is not None or output_format != "txt"):
        raise InputError("--json prints the tokens; it does not combine with --output-format/--output-dir")
    formats = resolve_formats(output_format, output_dir)
    timed = bool(set(formats) & set(TIMED))
    dev = resolve_device(device)
    with input_path(STDIO) if STDIO in videos else contextlib.nullcontext(None) as stdin_copy:
        paths = [existing_file(str(v), "video") for v in ([stdin_copy] if stdin_copy is not None else videos)]
        if output_dir is not None:
            unique_stems(paths)
        landmarks = existing_file(sidecar, "landmark") if sidecar else None
        lm_file = existing_file(lm_path, "language model") if lm_path is not None else None
        check_outputs(output_dir, [p.stem for p in paths], formats, [*paths, landmarks, lm_file])
        model_dir = vsr_model_dir(model)
        start = time.perf_counter()
        vsr = load_vsr(model_dir, device=dev)
        log.info("lip reader: %s on %s (loaded in %.2f s)", model_dir, dev, time.perf_counter() - start)
        if lm_file is not None:
            vsr.lm = check_lm(load_lm(lm_file), vsr, lm_file)
        aligner = _aligner(model, vsr, aligner_dir, language, dev) if timed else None
        for path in progress(paths, desc="videos", total=len(paths), unit="video") if len(paths) > 1 else paths:
            start = time.perf_counter()
            with quiet_native_logs():
                clip = extract_roi(path, sidecar=landmarks)
            log.info("roi: %d frames, face in %d, %.2f s", clip.num_frames, int(clip.found.sum()),
                     time.perf_counter() - start)
            start = time.perf_counter()
            with torch.no_grad():
                features = vsr.encode(torch.from_numpy(clip.roi).unsqueeze(0))[0]
            result = vsr.decode_features(features, beam=vsr.beam_options(beam, lm_weight))
            log.info("decoding (beam %d): %.2f s", beam, time.perf_counter() - start)
            if as_json:
                click.echo(json.dumps({"text": result.text, "tokens": list(result.tokens),
                                       "confidences": [round(c, 4) for c in result.confidences]}))
                continue
            alignment = aligner.align(features, result.text, allow_empty=True) if aligner is not None else None
            emit(formats, alignment, result.text, word_timestamps, output_dir, path.stem)


def _aligner(model: str, vsr, aligner_dir, language: str, device):
    """The aligner on the loaded lip reader, with the given aligner model or the pipeline's."""
    from l2s.align import Aligner
    from l2s.align.aligner import load_learned
    from l2s.hub import resolve

    return Aligner(vsr, load_learned(resolve(model), aligner_dir, device), language=language)
