"""``l2s corpus``: generate corpora (``synthgrid``), benchmark the generator (``bench``), describe a corpus."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import click

from l2s.cli._common import progress
from l2s.errors import InputError


@click.group()
def corpus() -> None:
    """Generate training and test corpora."""


@corpus.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--speakers", default=24, show_default=True, help="Speakers in all, held-out ones included.")
@click.option("--unseen-speakers", default=4, show_default=True, help="Held-out speakers (the test-unseen split).")
@click.option("--clips-per-speaker", default=125, show_default=True,
              help="Clips per speaker; seen speakers split 80/10/10 into train/valid/test-seen.")
@click.option("--seed", default=0, show_default=True, help="Everything (speakers, sentences, clips) derives from it.")
@click.option("--jobs", "-j", default=1, show_default=True, help="Worker processes.")
@click.option("--size", default=160, show_default=True, help="Video side in pixels (even).")
@click.option("--preview", type=click.Path(dir_okay=False), default=None,
              help="Also write a PNG contact sheet of the mouth shape per viseme class.")
def synthgrid(out: str, speakers: int, unseen_speakers: int, clips_per_speaker: int, seed: int, jobs: int,
              size: int, preview: str) -> None:
    """Generate (or complete) a SynthGRID corpus in OUT.

    GRID-grammar sentences spoken by Piper voices (tape-speed transformed) and
    espeak-ng voices (transformed with WORLD), with a procedural talking face
    driven by visemes. A rerun skips the clips already written; the same seed
    gives the same audio, text, alignment, landmarks and frames (the H.264
    bytes can rarely differ, see README).
    """
    from l2s.corpora.synthgrid.generate import CorpusOptions, write_corpus

    if jobs < 1:
        raise InputError(f"--jobs must be >= 1, got {jobs}")
    opts = CorpusOptions(speakers=speakers, unseen_speakers=unseen_speakers, clips_per_speaker=clips_per_speaker,
                         seed=seed, size=size)
    opts.validate()
    if preview:
        from l2s.corpora.synthgrid.preview import write_preview

        write_preview(Path(preview), size=size)
    summary = write_corpus(Path(out), opts, jobs=jobs, wrap=lambda it, n: progress(it, "synthgrid", n, "clip"))
    click.echo(f"{summary.root}: {summary.clips} clips ({summary.made} made, {summary.skipped} already there) "
               f"in {summary.seconds:.1f} s; " + ", ".join(f"{k} {v}" for k, v in summary.splits.items()))


@corpus.command()
@click.argument("out_json", type=click.Path(dir_okay=False))
@click.option("--clips", default=200, show_default=True, help="Clips to generate.")
@click.option("--jobs", "-j", default=2, show_default=True, help="Worker processes.")
@click.option("--speakers", default=8, show_default=True, help="Speakers (base voices to synthesise).")
@click.option("--workdir", type=click.Path(file_okay=False), default=None,
              help="Where to write the clips (default: a temporary folder, removed afterwards).")
def bench(out_json: str, clips: int, jobs: int, speakers: int, workdir: str) -> None:
    """Time SynthGRID generation and write the figures to OUT_JSON.

    Reports clips per second over the whole run and for the clips alone (after
    the per-voice word banks are built), with the machine's load average.
    """
    from l2s.corpora.synthgrid.generate import CorpusOptions, write_corpus
    from l2s.errors import InputError
    from l2s.io.atomic import atomic_write_text

    if clips < 1 or jobs < 1 or speakers < 1:
        raise InputError("--clips, --jobs and --speakers must be >= 1")
    root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="synthgrid-bench-"))
    try:
        load_before = os.getloadavg()
        opts = CorpusOptions(speakers=speakers, unseen_speakers=0, clips_per_speaker=-(-clips // speakers), seed=0)
        t0 = time.perf_counter()
        summary = write_corpus(root, opts, jobs=jobs, wrap=lambda it, n: progress(it, "bench", n, "clip"))
        wall = time.perf_counter() - t0
        load_after = os.getloadavg()
        size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    finally:
        if not workdir:
            shutil.rmtree(root, ignore_errors=True)
    clip_s = wall - summary.seconds_banks
    result = {
        "clips": summary.made, "jobs": jobs, "speakers": speakers, "cpu_count": os.cpu_count(),
        "seconds_total": round(wall, 2), "seconds_word_banks": round(summary.seconds_banks, 2),
        "seconds_clips": round(clip_s, 2),
        "clips_per_second_total": round(summary.made / wall, 2),
        "clips_per_second_clips": round(summary.made / max(clip_s, 1e-9), 2),
        "bytes_per_clip": int(size / max(summary.clips, 1)),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
    }
    atomic_write_text(out_json, json.dumps(result, indent=1) + "\n")
    click.echo(json.dumps(result))


@corpus.command("viseme-floor")
@click.argument("root", type=click.Path(file_okay=False))
@click.option("--split", default="test-unseen", show_default=True, help="Split to score.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def viseme_floor_cmd(root: str, split: str, as_json: bool) -> None:
    """The WER floor the pictures allow on a SynthGRID split (an oracle that sees the visemes).

    The oracle knows each word's exact viseme sequence and the grammar, and guesses among
    the words of a slot that look the same; its expected WER is the floor a lip reader is
    compared with.
    """
    import json
    from dataclasses import asdict

    from l2s.corpora.synthgrid.oracle import corpus_viseme_floor

    floor = corpus_viseme_floor(Path(root), split)
    if as_json:
        click.echo(json.dumps(asdict(floor), indent=1))
        return
    click.echo(f"{split}: viseme-oracle WER {floor.wer:.2f}% over {floor.words} words "
               f"({floor.ambiguous_words} with look-alikes)")
    for word, others in floor.lookalikes.items():
        click.echo(f"  {word}: {', '.join(others)}")


@corpus.command("speakers")
@click.argument("root", type=click.Path(file_okay=False, exists=True))
@click.option("--clips", default=4, show_default=True, help="Clips embedded per speaker.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def speakers_cmd(root: str, clips: int, as_json: bool) -> None:
    """How distinct the voices of a SynthGRID corpus are (Resemblyzer cosines, speaker identification)."""
    from dataclasses import asdict

    from l2s.corpora.synthgrid.speaker_stats import speaker_stats

    if clips < 2:
        raise InputError("--clips must be at least 2")
    s = speaker_stats(Path(root), clips)
    if as_json:
        click.echo(json.dumps(asdict(s), indent=1))
        return
    click.echo(f"{s.speakers} speakers x {s.clips_per_speaker} clips: cosine within {s.within_mean:.3f} "
               f"+- {s.within_std:.3f}, between {s.between_mean:.3f} +- {s.between_std:.3f}; "
               f"nearest-centroid identification {100 * s.nearest_centroid_accuracy:.1f} % "
               f"(chance {100 * s.chance:.1f} %)")
