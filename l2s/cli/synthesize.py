"""``l2s synthesize IN... -o OUT``: voice silent talking-face videos.

Everything that can fail without the model is checked before it loads: the inputs, the outputs
(never an input, never a file l2s did not write unless ``--overwrite``, a writable folder), and
which clips are already finished (:mod:`l2s.pipeline.batch`). Then each clip runs the face stage
(with its own per-frame bar), the pipeline, and is written as one unit: audio, plot, transcripts
and sidecar (:func:`~l2s.pipeline.outputs.write_clip`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import click

from l2s.cli._common import STDIO, progress
from l2s.cli._options import device_option
from l2s.defaults import DEFAULT_PIPELINE
from l2s.errors import InputError, Interrupted, L2SError, ModelError, NoFaceError, OutputError

DEFAULT_MODEL = DEFAULT_PIPELINE
#: ``--format`` choices: l2s.pipeline.outputs.OUTPUT_SUFFIXES without the dot (not imported here: it loads numpy).
FORMATS = ("wav", "flac", "ogg", "mp3", "mp4", "mov", "mkv")
AUDIO_FORMAT_NAMES = FORMATS[:4]
#: ``--output-format`` choices: l2s.pipeline.outputs.TRANSCRIPT_FORMATS and 'all' (the JSON is the sidecar).
TRANSCRIPT_CHOICES = ("txt", "srt", "vtt", "tsv", "all")
log = logging.getLogger("l2s.cli.synthesize")


def load_pipeline(model: Optional[str], device: str):
    """The pipeline named by ``--model`` (default: the bundled ``synthgrid-small``)."""
    from l2s.hub import bundled_dir
    from l2s.pipeline import Lip2Speech

    if model is None:
        if bundled_dir(DEFAULT_MODEL) is None:
            raise ModelError(f"the bundled default model '{DEFAULT_MODEL}' is not in this build yet: "
                             "pass --model DIR (a pipeline directory, e.g. one made by `l2s convert lipvoicer`)")
        model = DEFAULT_MODEL
    start = time.perf_counter()
    pipe = Lip2Speech.from_pretrained(model, device=device)
    log.info("model: %s from %s on %s (loaded in %.2f s)", pipe.model_id, pipe.root, pipe.device,
             time.perf_counter() - start)
    return pipe


def _device_for_rank(device: str, world: int) -> str:
    if world > 1 and device in ("auto", "cuda"):
        import torch

        from l2s.sharding import local_rank

        if torch.cuda.is_available():  # a task bound to its own GPU sees one device: cuda:0
            return f"cuda:{local_rank() % torch.cuda.device_count()}"
    return device


class _LazyBar:
    """A progress bar created on its first report (most clips are too short to need one)."""

    def __init__(self, name: str, unit: str, total):
        self.name, self.unit, self.total, self.bar = name, unit, total, None

    def __call__(self, *report: int) -> None:
        if self.bar is None:
            total = self.total(*report)
            if total is None:
                return
            self.bar = progress(range(total), desc=self.name, total=total, unit=self.unit)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _chunk_bar(name: str) -> _LazyBar:
    return _LazyBar(name, "chunk", lambda done, total: total if total > 1 else None)


def _frame_bar(job) -> _LazyBar:
    def total() -> int:
        from l2s.io.video import probe_video

        return probe_video(job.input).num_frames

    return _LazyBar(f"{Path(job.name).name}: faces", "frame", total)


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


@dataclass(frozen=True)
class RunOptions:
    """How ``synthesize`` treats each clip (the pipeline's own options are in ``pipe_opts``)."""

    pipe_opts: Dict[str, Any]
    plot: bool = False
    plot_reference: bool = False
    transcripts: Tuple[str, ...] = ()
    word_timestamps: bool = False
    strict: bool = False
    text_from_txt: bool = False
    folder_mode: bool = False
    stdout_format: Optional[str] = None


def _about(job, exc: BaseException) -> str:
    """One line about a failed clip, naming its input once (an output error names the output instead)."""
    message = " ".join(str(exc).split())
    if isinstance(exc, OutputError) or message.startswith((str(job.input), job.name)):
        return message
    return f"{job.name}: {message}"


def _face_messages(job, coverage, strict: bool) -> List[str]:
    from l2s.pipeline.coverage import MIN_FACE_SHARE

    if coverage is None:
        return []
    out = []
    if coverage.too_little:
        if strict:
            raise NoFaceError(f"{job.name}: the face is in only {coverage.share:.0%} of the frames "
                              f"(under {MIN_FACE_SHARE:.0%}, refused with --strict)")
        out.append(f"{job.name}: the face is in only {coverage.share:.0%} of the frames")
    if coverage.gaps:
        out.append(f"{job.name}: no face in {coverage.describe_gaps()}; the output is silent there")
    return out


def _voice_one(pipe, job, run: RunOptions, echoed: set) -> None:
    from l2s.cli._options import quiet_native_logs
    from l2s.pipeline import L2SWarning
    from l2s.pipeline.coverage import face_coverage, silence_gaps
    from l2s.pipeline.inputs import to_clip_input

    opts = {**run.pipe_opts, "text": text_beside(job.input)} if run.text_from_txt else run.pipe_opts
    reference = recording_beside(job.input) if run.plot and run.plot_reference else None  # before any work
    # the face stage first, alone: on a long video it is minutes of detection with its own bar
    start = time.perf_counter()
    frames = _frame_bar(job)
    try:
        with quiet_native_logs():
            clip = to_clip_input(job.input, on_frame=frames)
    finally:
        frames.close()
    roi_s = time.perf_counter() - start
    coverage = face_coverage(clip.found)
    face_notes = _face_messages(job, coverage, run.strict)
    for msg in face_notes:  # now, not after minutes of synthesis
        click.echo(f"l2s: warning: {msg}", err=True)
    chunks = _chunk_bar(Path(job.name).name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", L2SWarning)
        try:
            result = pipe(clip, on_chunk=chunks, **opts)
        finally:
            chunks.close()
    timings = {**result.timings, "roi": roi_s, "total": result.timings.get("total", 0.0) + roi_s}
    result = replace(silence_gaps(result, coverage), timings=timings)
    messages = list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, L2SWarning)))
    for msg in messages:
        if msg not in echoed:  # the same warning once per run, not once per clip
            echoed.add(msg)
            click.echo(f"l2s: warning: {msg}", err=True)
    _log_clip(job, clip, result)
    _write(pipe, job, run, result, messages + face_notes, coverage, reference)


def _log_clip(job, clip, result) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    found = "?" if clip.found is None else int(clip.found.sum())
    stages = ", ".join(f"{k} {v:.2f} s" for k, v in result.timings.items() if k != "total")
    total = result.timings.get("total", 0.0)
    rtf = total / result.duration if result.duration else 0.0
    log.info("%s: %d frames, face in %s; %s; total %.2f s for %.2f s of audio (RTF %.3f)", job.name,
             clip.num_frames, found, stages, total, result.duration, rtf)
    log.info("%s: text %r", job.name, result.text)


def _write(pipe, job, run: RunOptions, result, messages: List[str], coverage, reference=None) -> None:
    from l2s.pipeline.outputs import sidecar_record, write_clip

    if run.stdout_format is not None:
        from l2s.cli._common import write_stdout
        from l2s.io.audio import AUDIO_FORMATS, encode_audio

        write_stdout(encode_audio(result.wav, result.sample_rate, *AUDIO_FORMATS["." + run.stdout_format]))
        return
    record = sidecar_record(result, job.name, job.output, pipe.describe(), messages, request=dict(job.request),
                            face=None if coverage is None else coverage.to_dict())
    title, tiers = None, None
    if run.plot:
        from l2s.align.plot import timeline_tiers

        title, tiers = f"{Path(job.name).name}: {result.text}", timeline_tiers(result.alignment)
    written = write_clip(result, job.output, record, video=job.input, plot_title=title, plot_reference=reference,
                         plot_tiers=tiers, transcripts=run.transcripts, word_timestamps=run.word_timestamps)
    log.info("wrote %s", ", ".join(str(p) for p in written))


def _run(jobs, pipe, run: RunOptions) -> Tuple[int, List[str]]:
    done, failures, current = 0, [], None
    echoed: set = set()
    clips = progress(jobs, desc="clips", total=len(jobs), unit="clip") if len(jobs) > 1 else jobs
    try:
        for current in clips:
            try:
                _voice_one(pipe, current, run, echoed)
                done += 1
            except L2SError as exc:
                if not run.folder_mode:
                    raise
                # in a batch, one bad clip (or one that could not be written) should not cost the others
                failures.append(_about(current, exc))
                click.echo(f"l2s: error: {failures[-1]}", err=True)
            current = None
    except KeyboardInterrupt:
        if current is not None and run.stdout_format is None and current.done():
            done += 1  # written whole just before Ctrl-C: its sidecar says so
        if not run.folder_mode:
            raise Interrupted("interrupted; " + ("the output was written" if done else "nothing written")) from None
        raise Interrupted(f"interrupted; {done} clip(s) finished, rerun to resume") from None
    return done, failures


def _check_stdio(inputs: Tuple[str, ...], output: str, fmt: str, plot: bool, beside: Dict[str, bool],
                 transcripts: Tuple[str, ...] = ()) -> None:
    """Refuse what '-' (stdin or stdout) cannot do; ``beside``: the options that read files beside each input,
    ``transcripts``: the formats written beside the output."""
    if STDIO in inputs and len(inputs) > 1:
        raise InputError("'-' (stdin) must be the only input")
    for option, given in beside.items():
        if STDIO in inputs and given:
            raise InputError(f"{option} reads a file beside each video: it cannot be used with stdin")
    if STDIO in inputs and output != STDIO and (Path(output).is_dir() or not Path(output).suffix):
        raise InputError(f"-o {output}: a video from stdin needs an output file (.wav, .mp4...) or -o -")
    if output != STDIO:
        return
    if fmt not in AUDIO_FORMAT_NAMES:
        raise InputError(f"-o - --format {fmt}: stdout takes audio ({', '.join(AUDIO_FORMAT_NAMES)}); "
                         "a video container needs a file")
    if plot:
        raise InputError("--plot writes a PNG beside the output: give -o FILE, not -o -")
    if transcripts:
        raise InputError("--output-format writes the text beside the output: give -o FILE, not -o -")


def _plan(inputs: Tuple[str, ...], output: str, fmt: str, stdin_copy: Optional[Path], settings: Dict[str, Any],
          text_from_txt: bool, word_timestamps: Optional[bool] = None):
    """The jobs (with their requests) and whether this is folder mode; ``word_timestamps`` (recorded in the
    request when subtitles are asked for): how they are cut."""
    from l2s.cli._common import STDIN_NAME, file_digest
    from l2s.pipeline.batch import Job, expand_inputs, file_identity, job_request, plan_jobs

    names = [str(stdin_copy)] if stdin_copy is not None else list(inputs)
    if output == STDIO:
        files = expand_inputs(names)
        if len(files) != 1:
            raise InputError(f"-o -: stdout takes the audio of one input, got {len(files)}; give an output folder")
        jobs, folder_mode = [Job(files[0], Path(STDIO))], False
    else:
        jobs, folder_mode = plan_jobs(names, output, fmt)
    if stdin_copy is not None and folder_mode:
        raise InputError(f"-o {output}: a video from stdin needs an output file (.wav, .mp4...) or -o -")
    digest = file_digest(stdin_copy) if stdin_copy is not None else None
    planned = []
    for job in jobs:
        extra = {"text_file": file_identity(job.input.with_suffix(".txt"))} if text_from_txt else {}
        request = job_request(job, {**settings, **extra}, digest)
        if word_timestamps is not None:
            request["word_timestamps"] = word_timestamps
        planned.append(replace(job, request=request, label=STDIN_NAME if stdin_copy is not None else ""))
    return planned, folder_mode


def _to_do(jobs, plot: bool, overwrite: bool, transcripts: Tuple[str, ...] = (),
           word_timestamps: bool = False) -> list:
    """The jobs to run; finished ones skipped, stale ones noted, files l2s did not write refused."""
    from l2s.pipeline.batch import State

    todo, foreign = [], []
    for job in jobs:
        state, why = job.state(plot, transcripts, word_timestamps)
        if state is State.FOREIGN and not overwrite:
            foreign.append(why)
        elif state is State.STALE and not overwrite:
            click.echo(f"l2s: note: {job.output}: {why}; voicing it again", err=True)
        if overwrite or state is not State.DONE:
            todo.append(job)
    if foreign:
        more = f" (and {len(foreign) - 1} more such file(s))" if len(foreign) > 1 else ""
        raise OutputError(f"{foreign[0]}{more}; l2s replaces only its own outputs: pass --overwrite to replace it, "
                          "or choose another output")
    return todo


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="IN...")
@click.option("-o", "--out", "output", required=True, metavar="OUT",
              help="A .wav (.flac, .ogg, .mp3), or a .mp4/.mov/.mkv that gets the input's picture with the new "
                   "audio; a folder for several inputs (or a folder input); '-': the audio to stdout (one input).")
@click.option("--model", default=None, metavar="NAME|DIR|HUB_ID",
              help=f"Pipeline to use (default: the bundled '{DEFAULT_MODEL}').")
@click.option("--text", default=None, help="Steer toward this text instead of the lip-read one.")
@click.option("--text-from-txt", is_flag=True,
              help="Steer each input toward the text of the <name>.txt beside it (a corpus clip's transcript).")
@click.option("--ref-audio", default=None, metavar="WAV",
              help="A recording whose voice to use (if the model takes one).")
@click.option("--steps", type=click.IntRange(min=0), default=None,
              help="The generator's sampler steps (default: the model's; content-flow: 0 is the mean alone, "
                   "1 or more refine it).")
@click.option("--w-asr", type=click.FloatRange(min=0), default=None, help="ASR guidance weight (0 disables it).")
@click.option("--w-video", type=click.FloatRange(min=0), default=None,
              help="Classifier-free video guidance weight (0 disables it).")
@click.option("--seed", type=int, default=None, help="Seed for reproducible output.")
@click.option("--solver", default=None, metavar="NAME",
              help="The generator's solver (default: the model's); a name it does not know is refused with the list "
                   "of those it does.")
@click.option("--start-step", type=click.IntRange(min=0), default=None,
              help="Shallow diffusion: start from the coarse prior noised to this step of the generator's schedule "
                   "(default: the model's); 0 starts from pure noise.")
@device_option()
@click.option("--format", "fmt", type=click.Choice(FORMATS, case_sensitive=False), default="wav", show_default=True,
              help="Output type in folder mode and for -o -: audio (wav, flac, ogg, mp3) or the input's picture "
                   "with the new audio (mp4, mov, mkv; not for -o -).")
@click.option("--plot", is_flag=True,
              help="Also write a PNG beside each output: the prior's, the generated and the reference's mels, "
                   "the words and phonemes on the timeline, and the output audio's F0 beside the prior's.")
@click.option("--plot-reference", is_flag=True,
              help="In the --plot figure, compare with the recording <name>.wav beside each input (a corpus "
                   "clip's ground truth).")
@click.option("--output-format", "transcript_format", default=None, type=click.Choice(TRANSCRIPT_CHOICES),
              help="Also write the text beside each output as <name>.txt/.srt/.vtt/.tsv ('all': the four); "
                   "the JSON sidecar always holds the words and phonemes on the timeline.")
@click.option("--word-timestamps", is_flag=True, help="srt/vtt: one cue per word; tsv: one row per word.")
@click.option("--strict", is_flag=True,
              help="Refuse a clip whose face is in fewer than half of its frames (default: a warning).")
@click.option("--overwrite", is_flag=True,
              help="Redo finished clips, and replace files in the way that l2s did not write (never an input).")
@click.option("--shard", default=None, metavar="I/N",
              help="Voice only the I-th of N parts of the inputs (1-based; e.g. a SLURM array task).")
def synthesize(inputs, output, model, text, text_from_txt, ref_audio, steps, w_asr, w_video, seed, solver,
               start_step, device, fmt, plot, plot_reference, transcript_format, word_timestamps, strict, overwrite,
               shard) -> None:
    """Voice silent talking-face videos (IN... files or folders; '-': one video from stdin).

    One input and OUT ending in .wav or .mp4 writes that file; otherwise OUT is a folder of
    <name>.wav (or --format mp4). Each output gets a JSON sidecar (text, confidences, the words and
    phonemes on the timeline, settings, model, timings, the stretches without a face). A rerun skips
    the clips finished with the same input and settings and redoes the others; l2s never writes over
    an input, nor over a file it did not write unless --overwrite. Stretches of 0.4 s or more
    without a face are silent in the output and named in a warning. --shard i/n voices inputs
    i, i + n, ...; under torchrun (or srun) the ranks split that part again.
    """
    from l2s.cli._common import check_stdout_pipe, existing_file, input_path
    from l2s.pipeline.batch import check_not_inputs, check_output_folders, file_identity, jobs_of_this_process
    from l2s.pipeline.outputs import TIMED_TRANSCRIPTS

    fmt = fmt.lower()
    plot = plot or plot_reference
    transcripts: Tuple[str, ...] = ()
    if transcript_format is not None:
        transcripts = TRANSCRIPT_CHOICES[:-1] if transcript_format == "all" else (transcript_format,)
    subtitles = bool(set(transcripts) & set(TIMED_TRANSCRIPTS))
    if text is not None and text_from_txt:
        raise InputError("--text and --text-from-txt exclude each other")
    _check_stdio(inputs, output, fmt, plot, {"--text-from-txt": text_from_txt, "--plot-reference": plot_reference},
                 transcripts)
    ref = existing_file(ref_audio, "reference audio") if ref_audio is not None else None
    # a local model by its resolved path, so `--model ./m` and `--model m` are one request
    model_key = os.path.realpath(model) if model is not None and os.path.exists(model) else (model or DEFAULT_MODEL)
    settings = dict(model=model_key, text=text, ref_audio=file_identity(ref), steps=steps, w_asr=w_asr,
                    w_video=w_video, seed=seed, solver=solver, start_step=start_step)
    with input_path(STDIO) if STDIO in inputs else contextlib.nullcontext(None) as stdin_copy:
        jobs, folder_mode = _plan(inputs, output, fmt, stdin_copy, settings, text_from_txt,
                                  word_timestamps if subtitles else None)
        if output == STDIO:
            check_stdout_pipe()
        else:
            # the files read beside each input are inputs too (e.g. -o clip.wav --output-format txt
            # --text-from-txt would write the transcript being read)
            beside = [j.input.with_suffix(s) for j in jobs
                      for s, given in ((".txt", text_from_txt), (".wav", plot_reference)) if given]
            check_not_inputs(jobs, protected=([ref] if ref is not None else []) + beside, plot=plot,
                             transcripts=transcripts)
        jobs, part = jobs_of_this_process(jobs, shard)
        world = part.count
        if not jobs:
            click.echo(f"shard {part} ({part.source}): no inputs left for this shard", err=True)
            return
        todo = jobs if output == STDIO else _to_do(jobs, plot, overwrite, transcripts, word_timestamps)
        skipped = len(jobs) - len(todo)
        if not todo:
            click.echo(f"nothing to do: {skipped} clip(s) already finished in {output}", err=True)
            return
        if output != STDIO:
            check_output_folders(todo)  # a read-only or missing-permission folder fails now, not after the work
        pipe = load_pipeline(model, _device_for_rank(device, world))
        if subtitles and pipe.aligner is None:
            raise InputError(f"--output-format {transcript_format}: {pipe.model_id} has no lip reader to place the "
                             "text on the timeline (txt only)")
        pipe.generator_settings(steps=steps, solver=solver, start_step=start_step)  # an option it lacks: refused once
        pipe_opts = dict(text=text, ref_audio=ref, steps=steps, w_asr=w_asr, w_video=w_video, seed=seed,
                         solver=solver, start_step=start_step)
        run = RunOptions(pipe_opts=pipe_opts, plot=plot, plot_reference=plot_reference, transcripts=transcripts,
                         word_timestamps=word_timestamps, strict=strict, text_from_txt=text_from_txt,
                         folder_mode=folder_mode, stdout_format=fmt if output == STDIO else None)
        done, failures = _run(todo, pipe, run)
    where = f" (shard {part})" if world > 1 else ""
    target = "stdout" if output == STDIO else output
    click.echo(f"voiced {done} clip(s), skipped {skipped} finished, {len(failures)} failed{where}: {target}",
               err=True)
    if failures:
        sys.exit(2)
