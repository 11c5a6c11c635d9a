"""The ``vidcolor batch`` command: many files into a mirrored output folder, with a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from vidcolor.cli.common import (
    LazyDefault,
    build_options,
    colour_options,
    model_options,
    reference_dir_options,
    run_command,
    segment_seconds_default,
)
from vidcolor.errors import UsageError


@click.command("batch")
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Output folder; the input folders' tree is mirrored inside it.",
)
@model_options(
    threads_zero="the runtime's default with one job, the cores shared out with --jobs, "
    "a task's CPUs with --ray"
)
@colour_options
@click.option(
    "--jobs",
    type=int,
    default=1,
    show_default=True,
    help="Files colorized side by side (worker processes sharing the CPU cores).",
)
@click.option(
    "--segment-seconds",
    type=float,
    cls=LazyDefault,
    default=segment_seconds_default,
    show_default=True,
    help="Cut films longer than 1.5x this into segments that resume after a kill (0: never).",
)
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Manifest file (default: OUT_DIR/vidcolor-manifest.jsonl).",
)
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="local",
    default=None,
    metavar="[ADDRESS]",
    help="Run on a Ray cluster: auto (the cluster this machine is in), ray://HOST:PORT, HOST:PORT, "
    "or nothing for a Ray on this machine; inputs and outputs on storage every node sees "
    "(docs/cluster.md). Needs the ray extra.",
)
@click.option(
    "--cpus-per-task",
    type=float,
    default=1.0,
    show_default=True,
    help="With --ray: CPUs each film or segment holds.",
)
@click.option(
    "--gpus-per-task",
    type=float,
    default=0.0,
    show_default=True,
    help="With --ray: GPUs each film or segment holds.",
)
@click.option(
    "--overwrite", is_flag=True, help="Replace outputs that exist but are not recorded as finished."
)
@reference_dir_options(
    "A folder of colour stills: each shot takes its colours from the few that match it best; "
    "which ones is written beside each output as NAME.references.json."
)
@click.option("-q", "--quiet", is_flag=True, help="Only the final table.")
@click.option("--debug", is_flag=True, help="Show a traceback on errors.")
def _batch(
    inputs: tuple[str, ...],
    out_dir: Path,
    jobs: int,
    segment_seconds: float | None,
    manifest: Path | None,
    ray_address: str | None,
    cpus_per_task: float,
    gpus_per_task: float,
    reference_dir: Path | None,
    drop_references: tuple[str, ...],
    quiet: bool,
    debug: bool,
    **kw: Any,
) -> None:
    """Colorize every film and still in INPUTS (folders, globs such as 'reels/**/*.mp4', files).

    A file whose manifest record says it finished, and whose output still has the recorded
    sha256, is skipped; run the same command again after a failure or a kill to do the rest.
    Exit status: 0 when every file succeeded or was skipped, 1 when any failed. With --ray the
    films, and the segments of long films, run as tasks on a Ray cluster, with the same manifest.
    """

    def body() -> int:
        from vidcolor.batch import run_batch

        opts = build_options(kw, reference_dir=reference_dir, reference_drop=drop_references)

        def each(result: Any) -> None:
            if quiet:
                return
            tail = f": {result.error}" if result.error else ""
            click.echo(f"{result.status:8} {result.output}{tail}", err=True)
            for w in result.warnings:
                click.echo(f"vidcolor: warning: {result.output}: {w}", err=True)

        try:
            if ray_address is None:
                report = run_batch(
                    inputs,
                    out_dir,
                    opts,
                    jobs=jobs,
                    segment_seconds=segment_seconds,
                    manifest=manifest,
                    on_result=each,
                    progress=not quiet,
                )
            else:
                if jobs != 1:
                    raise UsageError("either --jobs or --ray", "both", "drop --jobs: the cluster decides")
                if reference_dir is not None:
                    raise UsageError(
                        "either --reference-dir or --ray",
                        "both",
                        "run a reference folder's batch without --ray (its index is built by one process)",
                    )
                from vidcolor.cluster.driver import run_batch_on_ray

                report = run_batch_on_ray(
                    inputs,
                    out_dir,
                    opts,
                    address=ray_address,
                    cpus_per_task=cpus_per_task,
                    gpus_per_task=gpus_per_task,
                    segment_seconds=segment_seconds,
                    manifest=manifest,
                    on_result=each,
                    progress=not quiet,
                )
        except KeyboardInterrupt:
            click.echo(
                "vidcolor: interrupted; run the same command again to continue "
                "(finished files are skipped, a long film resumes at its last finished segment)",
                err=True,
            )
            return 130
        click.echo(report.table())
        return report.exit_code

    run_command(body, debug)


#: Registered on the ``main`` group by cli.py (declared, so type checkers need not follow the import cycle).
batch_command: click.Command = _batch
