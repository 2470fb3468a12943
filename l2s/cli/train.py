"""``l2s train HPARAMS [--key=value ...]``: train a recipe stage (SpeechBrain, DDP-ready)."""

import click


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("hparams", type=click.Path(dir_okay=False))
@click.pass_context
def train(ctx: click.Context, hparams: str) -> None:
    """Train the stage a HyperPyYAML recipe names (vsr, prior, guide, generator, vocoder).

    Extra ``--key=value`` options override recipe values (``--model={layers: 12}`` changes fields
    of the model's config, ``--preset=tiny`` its size preset); SpeechBrain's run options
    (``--device``, ``--distributed_backend``, ``--precision``...) are accepted too.
    Under ``torchrun --nproc_per_node N`` the same command trains with DDP
    (gloo on CPU, nccl on GPU).
    """
    from l2s.train.runner import end_launched_process, run

    run([hparams, *ctx.args])
    end_launched_process()  # a torchrun rank leaves before interpreter finalization can abort it
