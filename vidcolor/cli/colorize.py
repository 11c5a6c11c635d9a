"""The ``vidcolor colorize`` and ``vidcolor export`` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from vidcolor.cli.common import (
    LazyDefault,
    build_options,
    colour_options,
    model_options,
    parse_time,
    reference_dir_options,
    run_command,
    segment_seconds_default,
)
from vidcolor.options import DEFAULT_MODEL


@click.command("colorize")
@click.argument("input", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Output file (default: INPUT_colour with the same extension).",
)
@model_options
@colour_options
@click.option("--start", default=None, help="Start of the section to colorize (seconds or [HH:]MM:SS).")
@click.option("--duration", default=None, help="Length of the section (seconds or [HH:]MM:SS).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option(
    "--segment-seconds",
    type=float,
    cls=LazyDefault,
    default=segment_seconds_default,
    show_default=True,
    help="Cut films longer than 1.5x this into segments, so a killed run can resume (0: never).",
)
@click.option(
    "--resume", is_flag=True, help="Continue an interrupted run: redo only its unfinished segments."
)
@click.option(
    "--hints",
    "hints_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Colour hints, a JSON list of {frame or time, point, color or ab, radius}; each holds for its shot.",
)
@click.option(
    "--reference",
    "references",
    multiple=True,
    help="A colour still whose colours the film takes where it shows like content (repeatable; "
    "IMG@START-END limits it to a time range).",
)
@reference_dir_options(
    "A folder of colour stills (any depth): each shot takes its colours from the few that match "
    "it best, or keeps its automatic colour when none does. Indexed once, in a cache."
)
@click.option(
    "--references-report",
    type=click.Path(path_type=Path),
    default=None,
    help="Write which stills of --reference-dir coloured which shots, with their scores, to this JSON file.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary.")
@click.option("--debug", is_flag=True, help="Show a traceback on errors.")
def colorize(
    input: Path,
    output: Path | None,
    quiet: bool,
    debug: bool,
    start: str | None,
    duration: str | None,
    segment_seconds: float,
    resume: bool,
    hints_file: Path | None,
    references: tuple[str, ...],
    reference_dir: Path | None,
    drop_references: tuple[str, ...],
    references_report: Path | None,
    **kw: Any,
) -> None:
    """Colorize a black-and-white film or still INPUT."""

    def body() -> None:
        from vidcolor.formats import STILL_SUFFIXES
        from vidcolor.guidance.choose import check_report_path, write_report
        from vidcolor.pipeline.image import colorize_image
        from vidcolor.pipeline.journal import segment_dir
        from vidcolor.pipeline.segments import colorize_film

        dst = output or input.with_name(f"{input.stem}_colour{input.suffix}")
        opts = build_options(
            kw,
            start=parse_time(start),
            duration=parse_time(duration),
            hints=hints_file or (),
            reference=references,
            reference_dir=reference_dir,
            reference_drop=drop_references,
        )
        if references_report is not None:
            check_report_path(references_report, opts)
        # A hint is tracked through its shot, which a segment join would cut; so is a reference
        # folder's choice. (A new name: assigning to segment_seconds here would make it local to
        # body() and unbound above this line.)
        seconds = 0.0 if opts.hints or opts.reference_dir else segment_seconds
        if input.suffix.lower() in STILL_SUFFIXES and input.is_file():
            colorize_image(input, dst, opts)
            if not quiet:
                click.echo(f"{dst}: still colorized")
            return
        try:
            summary = colorize_film(
                input, dst, opts, segment_seconds=seconds, resume=resume, progress=not quiet
            )
        except KeyboardInterrupt:
            if segment_dir(dst).is_dir():
                click.echo(
                    f"vidcolor: finished segments are kept in {segment_dir(dst)}; "
                    "run the same command with --resume to continue",
                    err=True,
                )
            raise
        if not quiet:
            for w in summary.warnings:
                click.echo(f"vidcolor: warning: {w}", err=True)
            for n in summary.notes:
                click.echo(f"vidcolor: note: {n}", err=True)
            click.echo(summary.line())
        if references_report is not None and summary.references is not None:
            write_report(references_report, summary.references)

    run_command(body, debug)


@click.command("export")
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["onnx"]), default="onnx", show_default=True)
@click.option(
    "--model",
    default=DEFAULT_MODEL,
    show_default=True,
    help="Registry name (see 'vidcolor models') or a checkpoint file.",
)
@click.option("--weights", type=click.Path(dir_okay=False), default=None, help="Weights file for the model.")
@click.option(
    "--render-size",
    type=int,
    default=None,
    help="Short side of the fixed 16:9 input shape (default: the model's own).",
)
@click.option("--dynamic", is_flag=True, help="Leave height and width free (multiples of the stride).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--debug", is_flag=True)
def export_cmd(
    output: Path,
    fmt: str,
    model: str,
    weights: str | None,
    render_size: int | None,
    dynamic: bool,
    overwrite: bool,
    debug: bool,
) -> None:
    """Write the model as ONNX (L* in, a*b* out; licence and contract in its metadata)."""

    def body() -> None:
        import vidcolor.models as models
        from vidcolor.stages.onnx_export import export_onnx

        net = models.load(model, device="cpu", half=False, weights=weights)
        meta = export_onnx(net, output, render_size=render_size, dynamic=dynamic, overwrite=overwrite)
        click.echo(f"{output}: {meta['model']} ({meta['licence']}), input {meta['shape']}")

    run_command(body, debug)
