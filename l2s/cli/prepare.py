"""``l2s prepare``: run the mouth ROI once per clip and write training manifests."""

from pathlib import Path
from typing import Optional

import click

from l2s.cli._common import progress


@click.group()
def prepare() -> None:
    """Prepare a corpus for training (mouth ROI per clip, manifests, rejects)."""


def _counted(results, name: str, total: int):
    """A progress bar over ``(utterance, reason)`` results that also counts the rejected clips."""
    bar = progress(results, desc=f"prepare {name}", total=total, unit="clip")
    rejected = 0
    for item in bar:
        if item[1] is not None:
            rejected += 1
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(rejected=rejected)
        yield item


def _corpus_command(name: str, title: str, layout_help: str) -> click.Command:
    """``l2s prepare <name> ROOT OUT``: one sub-command per real corpus, all alike."""

    @click.argument("root")
    @click.argument("out", type=click.Path(file_okay=False))
    @click.option("-j", "--jobs", default=1, show_default=True, type=click.IntRange(1, 64),
                  help="Worker processes.")
    @click.option("--shard", default=None, metavar="I/N",
                  help="Prepare only the I-th of N parts of the clips (1-based; e.g. a SLURM array task), "
                       "no manifests; afterwards run once without --shard to write them.")
    def command(root: str, out: str, jobs: int, shard: Optional[str]) -> None:
        from l2s.corpora.prepare_corpus import prepare_corpus, read_corpus
        from l2s.sharding import resolve_shard

        part = resolve_shard(shard)
        layout = read_corpus(name, Path(root))
        result = prepare_corpus(layout, Path(out), jobs=jobs, progress=lambda it, n: _counted(it, name, n),
                                shard=part)
        counts = (f"{result.done} prepared, {result.skipped} already done, {result.rejected} rejected "
                  f"({result.rejects.name})")
        if part.count > 1:
            click.echo(f"{out}: shard {part}: {counts}; manifests: none (run once without --shard to write them)")
            return
        splits = ", ".join(f"{k} {v}" for k, v in result.splits.items())
        click.echo(f"{out}: {counts}; manifests: {splits}")

    command.__doc__ = (f"Prepare {title} from ROOT (official layout) into OUT.\n\n{layout_help}\n\n"
                       "Per clip: mouth ROI (as `l2s roi`), 16 kHz wav, contract mel and F0; then OUT/<split>.jsonl "
                       "manifests and the official lists in OUT/lists/. Resumable; failing clips go to "
                       "OUT/rejects.jsonl with their reason.")
    return prepare.command(name)(command)


_corpus_command("grid", "GRID", "ROOT holds s1..s34/*.mpg and align/<speaker>/*.align (audio_25k/ optional). "
                "Splits: train/valid/test-seen (seen speakers, ~90/5/5) and test-unseen (s1, s2, s20, s22); "
                "4speakers/ holds the s1, s2, s4, s29 setting.")
_corpus_command("lrs2", "LRS2-BBC", "ROOT holds main/ and pretrain/ (or mvlrs_v1/) and the lists "
                "pretrain.txt, train.txt, val.txt, test.txt. Splits: pretrain, train, valid, test, "
                "train_pretrain (pretrain + train).")
_corpus_command("lrs3", "LRS3-TED", "ROOT holds pretrain/, trainval/ and test/. Splits: valid (~1% of trainval "
                "speakers), train (the rest of trainval), train_pretrain (train + their pretrain clips), test (all "
                "of test/), pretrain, trainval.")
_corpus_command("synthgrid", "SynthGRID (or any corpus that ships manifests)",
                "ROOT holds one manifest per split (<split>.jsonl or .csv: id, video, text...), as written by "
                "`l2s corpus synthgrid`; landmark sidecars beside the videos replace face detection.")
_corpus_command("lrw", "LRW", "ROOT holds <WORD>/{train,val,test}/<WORD>_<nnnnn>.mp4 with .txt. "
                "Splits: train, valid, test.")
