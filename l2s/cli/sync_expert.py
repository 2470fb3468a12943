"""``l2s sync-expert MANIFEST OUT``: train the audio-visual sync expert behind the ``sync`` metric."""

import click

from l2s.cli._common import existing_file


@click.command("sync-expert")
@click.argument("manifest")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--steps", default=300, show_default=True, type=click.IntRange(1, 10**6), help="Training steps.")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(2, 4096))
@click.option("--seed", default=0, show_default=True, type=int)
def sync_expert(manifest: str, out: str, steps: int, batch_size: int, seed: int) -> None:
    """Train the sync expert on the in-sync clips of a prepared MANIFEST (a training split).

    MANIFEST is a split written by `l2s prepare` (`roi` and `wav` per clip). The expert
    (contrastive, mouth ROI windows against mel windows) is written to OUT, for
    `l2s evaluate --metrics sync --sync-model OUT`. Its scores are NOT comparable with
    published LSE-C / LSE-D numbers (another network, trained on other data).
    """
    from l2s.metrics.sync import SyncTrainConfig, load_pairs, save_sync_expert, train_sync_expert

    pairs = load_pairs(existing_file(manifest, "manifest"))
    model = train_sync_expert(pairs, train=SyncTrainConfig(steps=steps, batch_size=batch_size, seed=seed))
    save_sync_expert(model, out)
    click.echo(f"{out}: sync expert trained on {len(pairs)} clips for {steps} steps")
