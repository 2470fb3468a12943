"""``l2s train HPARAMS [--key=value ...]``: train a recipe stage (SpeechBrain, DDP-ready)."""

import click


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("hparams", type=click.Path(dir_okay=False))
@click.pass_context
def train(ctx: click.Context, hparams: str) -> None:
    """Train the stage a HyperPyYAML recipe names (vsr, f0_ddsp, asr_guide, melgen, vocoder).

    Extra ``--key=value`` options override recipe values; SpeechBrain's run options
    (``--device``, ``--distributed_backend``, ``--precision``...) are accepted too.
    Under ``torchrun --nproc_per_node N`` the same command trains with DDP
    (gloo on CPU, nccl on GPU).
    """
    from l2s.train.runner import run

    run([hparams, *ctx.args])
