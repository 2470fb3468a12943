"""``l2s synthesize IN... -o OUT``: voice silent talking-face videos."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import click

from l2s.cli._common import progress
from l2s.cli._options import device_option
from l2s.errors import InputError, L2SError, ModelError
from l2s.hub import DEFAULT_PIPELINE

DEFAULT_MODEL = DEFAULT_PIPELINE


def load_pipeline(model: Optional[str], device: str):
    """The pipeline named by ``--model`` (default: the bundled ``synthgrid-small``)."""
    from l2s.hub import bundled_dir
    from l2s.pipeline import Lip2Speech

    if model is None:
        if bundled_dir(DEFAULT_MODEL) is None:
            raise ModelError(f"the bundled default model '{DEFAULT_MODEL}' is not in this build yet: "
                             "pass --model DIR (a pipeline directory, e.g. one made by `l2s convert lipvoicer`)")
        model = DEFAULT_MODEL
    return Lip2Speech.from_pretrained(model, device=device)


def _device_for_rank(device: str, world: int) -> str:
    if world > 1 and device in ("auto", "cuda"):
        import torch

        from l2s.sharding import local_rank

        if torch.cuda.is_available():  # a task bound to its own GPU sees one device: cuda:0
            return f"cuda:{local_rank() % torch.cuda.device_count()}"
    return device


class _ChunkBar:
    """A per-clip progress bar over the chunks of a long input (created on the first report)."""

    def __init__(self, name: str):
        self.name, self.bar = name, None

    def __call__(self, done: int, total: int) -> None:
        if total <= 1:
            return
        if self.bar is None:
            self.bar = progress(range(total), desc=self.name, total=total, unit="chunk")
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def text_beside(video: Path) -> str:
    """The transcript in ``<stem>.txt`` beside a video (a corpus clip's ground truth)."""
    txt = video.with_suffix(".txt")
    if not txt.is_file():
        raise InputError(f"{txt}: no such file (--text-from-txt)")
    text = " ".join(txt.read_text(encoding="utf-8").split())
    if not text:
        raise InputError(f"{txt}: empty transcript (--text-from-txt)")
    return text


def recording_beside(video: Path):
    """The recording ``<stem>.wav`` beside a video (a corpus clip's ground truth), at the contract rate."""
    from l2s.io.audio import read_audio

    wav = video.with_suffix(".wav")
    if not wav.is_file():
        raise InputError(f"{wav}: no such file (--plot-reference)")
    return read_audio(wav)


def _voice_one(pipe, job, opts: Dict, plot: bool, echo_warnings: set, text_from_txt: bool = False,
               plot_reference: bool = False, transcripts: Tuple[str, ...] = (),
               word_timestamps: bool = False) -> None:
    from l2s.pipeline.outputs import plot_of, sidecar_record, write_audio, write_plot, write_sidecar

    from l2s.pipeline import L2SWarning

    if text_from_txt:
        opts = {**opts, "text": text_beside(job.input)}
    reference = recording_beside(job.input) if plot and plot_reference else None  # before any output is written
    bar = _ChunkBar(job.input.name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", L2SWarning)
        try:
            result = pipe(job.input, on_chunk=bar, **opts)
        finally:
            bar.close()
    messages = list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, L2SWarning)))
    for msg in messages:
        if msg not in echo_warnings:  # the same warning once per run, not once per clip
            echo_warnings.add(msg)
            click.echo(f"l2s: warning: {msg}", err=True)
    write_audio(result, job.output, video=job.input)
    if plot:
        from l2s.align.plot import timeline_tiers

        write_plot(result, plot_of(job.output), title=f"{job.input.name}: {result.text}", reference=reference,
                   tiers=timeline_tiers(result.alignment))
    if transcripts:  # the text beside the audio: <out>.txt/.srt/.vtt/.tsv (the JSON is the sidecar's)
        from l2s.align.subtitles import write_outputs

        write_outputs(job.output.parent, job.output.stem, transcripts, result.alignment, result.text,
                      word_timestamps)
    record = sidecar_record(result, str(job.input), job.output, pipe.describe(), messages)
    write_sidecar(record, job.output)


def _run(jobs, pipe, opts: Dict, plot: bool, folder_mode: bool, text_from_txt: bool,
         plot_reference: bool = False, transcripts: Tuple[str, ...] = (),
         word_timestamps: bool = False) -> Tuple[int, List[str]]:
    done, failures = 0, []
    seen: set = set()
    for job in progress(jobs, desc="clips", total=len(jobs), unit="clip"):
        try:
            _voice_one(pipe, job, opts, plot, seen, text_from_txt, plot_reference, transcripts, word_timestamps)
            done += 1
        except L2SError as exc:
            if not folder_mode:
                raise
            # in a batch, one bad clip should not cost the others: report it and go on
            failures.append(f"{job.input}: {' '.join(str(exc).split())}")
            click.echo(f"l2s: error: {failures[-1]}", err=True)
    return done, failures


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="IN...")
@click.option("-o", "--out", "output", required=True, metavar="OUT",
              help="A .wav, or a .mp4/.mov/.mkv that gets the input's picture with the new audio; "
                   "a folder for several inputs (or a folder input).")
@click.option("--model", default=None, metavar="NAME|DIR|HUB_ID",
              help=f"Pipeline to use (default: the bundled '{DEFAULT_MODEL}').")
@click.option("--text", default=None, help="Steer toward this text instead of the lip-read one.")
@click.option("--text-from-txt", is_flag=True,
              help="Steer each input toward the text of the <name>.txt beside it (a corpus clip's transcript).")
@click.option("--ref-audio", default=None, metavar="WAV",
              help="A recording whose voice to use (if the model takes one).")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Sampler steps (default: the model's).")
@click.option("--w-asr", type=click.FloatRange(min=0), default=None, help="ASR guidance weight (0 disables it).")
@click.option("--w-video", type=click.FloatRange(min=0), default=None,
              help="Classifier-free video guidance weight (0 disables it).")
@click.option("--seed", type=int, default=None, help="Seed for reproducible output.")
@click.option("--solver", type=click.Choice(["ddpm", "dpmsolver++", "unipc"]), default=None,
              help="Sampler (default: the model's).")
@click.option("--start-step", type=click.IntRange(min=0), default=None,
              help="Shallow diffusion: start from the DDSP prior noised to this step (default: the model's); "
                   "0 starts from pure noise.")
@device_option()
@click.option("--format", "fmt", default="wav", show_default=True, help="Output type in folder mode: wav or mp4.")
@click.option("--plot", is_flag=True,
              help="Also write a PNG beside each output: the prior's, the generated and the reference's mels, "
                   "the words and phonemes on the timeline, and the output audio's F0 beside the prior's.")
@click.option("--plot-reference", is_flag=True,
              help="In the --plot figure, compare with the recording <name>.wav beside each input (a corpus "
                   "clip's ground truth).")
@click.option("--output-format", "transcript_format", default=None,
              type=click.Choice(["txt", "srt", "vtt", "tsv", "all"]),
              help="Also write the text beside each output as <name>.txt/.srt/.vtt/.tsv ('all': the four); "
                   "the JSON sidecar always holds the words and phonemes on the timeline.")
@click.option("--word-timestamps", is_flag=True, help="srt/vtt: one cue per word; tsv: one row per word.")
@click.option("--overwrite", is_flag=True, help="Redo clips that are already finished.")
@click.option("--shard", default=None, metavar="I/N",
              help="Voice only the I-th of N parts of the inputs (1-based; e.g. a SLURM array task).")
def synthesize(inputs, output, model, text, text_from_txt, ref_audio, steps, w_asr, w_video, seed, solver,
               start_step, device, fmt, plot, plot_reference, transcript_format, word_timestamps, overwrite,
               shard) -> None:
    """Voice silent talking-face videos (IN... files or folders).

    One input and OUT ending in .wav or .mp4 writes that file; otherwise OUT is a folder of
    <name>.wav (or --format mp4). Each output gets a JSON sidecar (text, confidences, the words and
    phonemes on the timeline, settings, model, timings). A folder run resumes: finished clips are
    skipped. --shard i/n voices inputs i, i + n, ...; under torchrun (or srun) the ranks split that
    part again.
    """
    from l2s.pipeline.batch import jobs_of_this_process, plan_jobs

    if text is not None and text_from_txt:
        raise InputError("--text and --text-from-txt exclude each other")
    jobs, folder_mode = plan_jobs(inputs, output, fmt)
    if ref_audio is not None and not Path(ref_audio).is_file():
        raise InputError(f"{ref_audio}: no such file (--ref-audio)")
    jobs, part = jobs_of_this_process(jobs, shard)
    world = part.count
    if not jobs:
        click.echo(f"shard {part} ({part.source}): no inputs left for this shard", err=True)
        return
    todo = jobs if overwrite else [j for j in jobs if not j.done()]
    skipped = len(jobs) - len(todo)
    if not todo:
        click.echo(f"nothing to do: {skipped} clip(s) already finished in {output}", err=True)
        return
    transcripts: Tuple[str, ...] = ()
    if transcript_format is not None:
        transcripts = ("txt", "srt", "vtt", "tsv") if transcript_format == "all" else (transcript_format,)
    pipe = load_pipeline(model, _device_for_rank(device, world))
    if set(transcripts) - {"txt"} and pipe.aligner is None:
        raise InputError(f"--output-format {transcript_format}: {pipe.model_id} has no lip reader to place the text "
                         "on the timeline (txt only)")
    opts = dict(text=text, ref_audio=ref_audio, steps=steps, w_asr=w_asr, w_video=w_video, seed=seed, solver=solver,
                start_step=start_step)
    done, failures = _run(todo, pipe, opts, plot or plot_reference, folder_mode, text_from_txt, plot_reference,
                          transcripts, word_timestamps)
    where = f" (shard {part})" if world > 1 else ""
    click.echo(f"voiced {done} clip(s), skipped {skipped} finished, {len(failures)} failed{where}: {output}",
               err=True)
    if failures:
        sys.exit(2)
