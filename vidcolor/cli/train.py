"""The ``vidcolor train`` command."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from vidcolor.cli.common import LazyDefault, data_options, default_of, run_command
from vidcolor.errors import UsageError


def _default(name: str) -> Callable[[], Any]:
    """TrainConfig's default for ``name`` ("augment.crop", "model.widths": of its nested configs),
    read when needed: TrainConfig's module imports torch."""

    def read() -> Any:
        from vidcolor.train.loop import TrainConfig

        first, *rest = name.split(".")
        value = default_of(TrainConfig, first)
        for part in rest:
            value = getattr(value, part)
        return value

    return read


@click.command("train")
@data_options("Folder, tar shard or video of colour pictures (repeatable; more may follow).")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Run folder.")
@click.option("--steps", type=int, default=1800, show_default=True)  # the one default: TrainConfig has none
@click.option("--batch", type=int, cls=LazyDefault, default=_default("batch"), show_default=True)
@click.option(
    "--crop",
    type=int,
    cls=LazyDefault,
    default=_default("augment.crop"),
    show_default=True,
    help="Training crop side, pixels.",
)
@click.option("--lr", type=float, cls=LazyDefault, default=_default("lr"), show_default=True)
@click.option(
    "--seed",
    type=int,
    cls=LazyDefault,
    default=_default("seed"),
    show_default=True,
    help="Seed of the crops, batches and the decoder's start (not of the split).",
)
@click.option(
    "--split-seed",
    type=int,
    cls=LazyDefault,
    default=_default("split_seed"),
    show_default=True,
    help="Seed of which scenes are held out for validation.",
)
@click.option(
    "--val-fraction", type=float, cls=LazyDefault, default=_default("val_fraction"), show_default=True
)
@click.option(
    "--val-every",
    type=int,
    cls=LazyDefault,
    default=_default("val_every"),
    show_default=True,
    help="Steps between validations (and best.pt).",
)
@click.option(
    "--decoder-widths",
    cls=LazyDefault,
    default=lambda: ",".join(str(w) for w in _default("model.widths")()),
    show_default=True,
    help="Channels of the fusion and the decoder at 1/16, 1/8, 1/4 and 1/2 (five numbers).",
)
@click.option(
    "--global-dim",
    type=int,
    cls=LazyDefault,
    default=_default("model.global_dim"),
    show_default=True,
    help="Width of the global context vector.",
)
@click.option(
    "--rebalance-lambda",
    type=click.FloatRange(0.0, 1.0),
    cls=LazyDefault,
    default=_default("rebalance_lambda"),
    show_default=True,
    help="Class rebalancing of the colour bins: 1 none, lower weighs rare (saturated) colours more.",
)
@click.option(
    "--init",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Start from this vidcolor checkpoint's weights (same architecture) instead of ImageNet's.",
)
@click.option(
    "--finetune-encoder",
    is_flag=True,
    help="Train the encoder too, at --encoder-lr-scale times --lr (about 10x slower on a CPU).",
)
@click.option(
    "--encoder-tail",
    type=int,
    cls=LazyDefault,
    default=_default("encoder_tail"),
    show_default=True,
    help="Train the encoder's last N blocks and head conv (cheap: 1/32 resolution).",
)
@click.option(
    "--encoder-lr-scale",
    type=click.FloatRange(0.0, 1.0),
    cls=LazyDefault,
    default=_default("encoder_lr_scale"),
    show_default=True,
    help="The trained encoder weights' learning rate, as a share of --lr.",
)
@click.option(
    "--adapt-steps",
    type=click.IntRange(0),
    cls=LazyDefault,
    default=_default("adapt.steps"),
    show_default=True,
    help="First adapt the encoder to grey film for N steps (distillation from its colour view); 0: off.",
)
@click.option("--device", cls=LazyDefault, default=_default("device"), show_default=True)
@click.option(
    "--threads",
    type=int,
    cls=LazyDefault,
    default=_default("threads"),
    help="torch CPU threads (0: torch's default).",
)
@click.option("--resume", is_flag=True, help="Continue from RUN_DIR/last.pt.")
@click.option("-q", "--quiet", is_flag=True)
@click.option("--debug", is_flag=True)
def train(
    data: tuple[Path, ...],
    more_data: tuple[Path, ...],
    out: Path,
    steps: int,
    batch: int,
    crop: int,
    lr: float,
    seed: int,
    split_seed: int,
    val_fraction: float,
    val_every: int,
    decoder_widths: str,
    global_dim: int,
    rebalance_lambda: float,
    init: Path | None,
    finetune_encoder: bool,
    encoder_tail: int,
    encoder_lr_scale: float,
    adapt_steps: int,
    device: str,
    threads: int,
    resume: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Train the colorizer on colour pictures (see shared/data/train for the corpus)."""

    def body() -> None:
        from dataclasses import replace

        from vidcolor.models.colorizer import ColorizerConfig
        from vidcolor.train.adapt import AdaptConfig
        from vidcolor.train.augment import AugmentConfig
        from vidcolor.train.loop import TrainConfig
        from vidcolor.train.loop import train as run_train

        try:
            widths = tuple(int(w) for w in decoder_widths.split(","))
        except ValueError:
            widths = ()
        if len(widths) != 5 or min(widths) < 1:
            raise UsageError(
                "five positive channel counts for --decoder-widths",
                repr(decoder_widths),
                "write e.g. 128,64,48,32,16",
            )
        cfg = TrainConfig(
            data=tuple(str(p) for p in (*data, *more_data)),
            out=str(out),
            steps=steps,
            batch=batch,
            lr=lr,
            seed=seed,
            split_seed=split_seed,
            val_fraction=val_fraction,
            val_every=val_every,
            rebalance_lambda=rebalance_lambda,
            model=ColorizerConfig(
                widths=(widths[0], widths[1], widths[2], widths[3], widths[4]), global_dim=global_dim
            ),
            freeze_encoder=not finetune_encoder,
            init=None if init is None else str(init),
            encoder_tail=encoder_tail,
            encoder_lr_scale=encoder_lr_scale,
            device=device,
            threads=threads,
        )
        cfg = replace(cfg, augment=replace(AugmentConfig(), crop=crop), adapt=AdaptConfig(steps=adapt_steps))
        last = run_train(cfg, resume=resume, progress=not quiet)
        if not quiet:
            click.echo(f"checkpoint: {last} (best by validation: {last.with_name('best.pt')})")

    run_command(body, debug)
