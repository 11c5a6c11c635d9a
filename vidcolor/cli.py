"""The vidcolor command line: colorize, models, train, eval.

Errors a user can fix are printed on one line with a non-zero exit and no traceback (``--debug``
shows one). Ctrl-C and SIGTERM stop cleanly: the temporary output is removed.
"""

from __future__ import annotations

import json
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from vidcolor import __version__
from vidcolor.allocator import tune
from vidcolor.errors import UsageError, VidcolorError
from vidcolor.options import DEFAULT_CODEC, DEFAULT_MODEL, DEFAULT_SMOOTHING, ColorizeOptions

F = TypeVar("F", bound=Callable[..., Any])


def parse_time(value: str | None) -> float | None:
    """'90', '90.5', '1:30' or '0:01:30.5' -> seconds."""
    if value is None:
        return None
    try:
        parts = [float(p) for p in value.split(":")]
    except ValueError:
        raise UsageError("a time in seconds or [HH:]MM:SS", repr(value), "write e.g. 90 or 1:30") from None
    if len(parts) > 3 or any(p < 0 for p in parts):
        raise UsageError("a time in seconds or [HH:]MM:SS", repr(value), "write e.g. 90 or 1:30")
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + p
    return seconds


def _sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run_command(fn: Callable[[], int | None], debug: bool) -> None:
    """Run a command body with the CLI's error policy."""
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        code = fn() or 0
    except VidcolorError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"vidcolor: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("vidcolor: interrupted; no output was written", err=True)
        sys.exit(130)
    sys.exit(code)


def model_options(f: F) -> F:
    f = click.option(
        "--model",
        default=DEFAULT_MODEL,
        show_default=True,
        help="Registry name (see 'vidcolor models') or a checkpoint file.",
    )(f)
    f = click.option(
        "--weights",
        type=click.Path(dir_okay=False),
        default=None,
        help="Weights file for the chosen architecture (e.g. upstream eccv16 weights).",
    )(f)
    f = click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")(f)
    f = click.option("--batch-size", type=int, default=8, show_default=True, help="Frames per model call.")(f)
    f = click.option(
        "--render-size",
        type=int,
        default=None,
        help="Short side, in pixels, the model sees (default: the model's own).",
    )(f)
    f = click.option("--threads", type=int, default=0, help="CPU threads for the model (0: all cores).")(f)
    f = click.option(
        "--runtime",
        type=click.Choice(["torch", "onnx"]),
        default="torch",
        show_default=True,
        help="Model step on the CPU: PyTorch, or ONNX Runtime (needs vidcolor[onnx]).",
    )(f)
    f = click.option(
        "--model-every",
        type=int,
        default=1,
        show_default=True,
        metavar="N",
        help="Run the model on one frame in N of a shot and carry its colour along the motion to "
        "the others (faster; 1: every frame).",
    )(f)
    return f


def colour_options(f: F) -> F:
    f = click.option(
        "--smoothing",
        type=float,
        default=DEFAULT_SMOOTHING,
        show_default=True,
        help="Temporal smoothing strength 0..1 (reset at scene cuts).",
    )(f)
    f = click.option(
        "--no-smoothing", is_flag=True, help="Turn temporal smoothing off (same as --smoothing 0)."
    )(f)
    f = click.option(
        "--codec",
        default=DEFAULT_CODEC,
        show_default=True,
        help="libx264, libx265, ffv1, prores, lossless, h264_nvenc, hevc_nvenc.",
    )(f)
    f = click.option("--crf", type=float, default=None, help="Quality for x264/x265 (lower is better).")(f)
    f = click.option("--lossless", is_flag=True, help="Lossless video (ffv1 in mkv, else x264 qp 0).")(f)
    f = click.option(
        "--ten-bit/--eight-bit",
        "ten_bit",
        default=None,
        help="Output bit depth (default: the source's, where the codec allows).",
    )(f)
    f = click.option(
        "--skip-corrupt",
        is_flag=True,
        help="Carry on past undecodable frames and count them, instead of stopping.",
    )(f)
    f = click.option("--deinterlace", is_flag=True, help="Deinterlace interlaced sources (bwdif).")(f)
    f = click.option("--no-verify", is_flag=True, help="Skip the final check of frames, pts and luma.")(f)
    f = click.option("--no-guide", is_flag=True, help="Plain bilinear colour upsampling (no luma guide).")(f)
    return f


def build_options(kw: dict[str, Any], **extra: Any) -> ColorizeOptions:
    smoothing = 0.0 if kw.pop("no_smoothing", False) else kw.pop("smoothing", DEFAULT_SMOOTHING)
    kw.pop("smoothing", None)
    verify = not kw.pop("no_verify", False)
    guide = not kw.pop("no_guide", False)
    return ColorizeOptions(smoothing=smoothing, verify=verify, guide=guide, **kw, **extra)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vidcolor")
def main() -> None:
    """Remaster black-and-white film into colour, keeping every frame, timestamp, sound and subtitle."""


@main.command()
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
    default=60.0,
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
@click.option(
    "--reference-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="A folder of colour stills (any depth): each shot takes its colours from the few that match "
    "it best, or keeps its automatic colour when none does. Indexed once, in a cache.",
)
@click.option(
    "--drop-reference",
    "drop_references",
    multiple=True,
    help="A still of --reference-dir never to choose (repeatable; IMG@START-END: not in that range).",
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
        from vidcolor.guidance.choose import check_report_path, write_report
        from vidcolor.media.image_io import STILL_SUFFIXES
        from vidcolor.pipeline.image import colorize_image
        from vidcolor.pipeline.segments import colorize_film, segment_dir

        dst = output or input.with_name(f"{input.stem}_colour{input.suffix}")
        opts = build_options(kw, start=parse_time(start), duration=parse_time(duration),
                             hints=hints_file or (), reference=references,
                             reference_dir=reference_dir, reference_drop=drop_references)  # fmt: skip
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


@main.command("export")
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
        from vidcolor import models
        from vidcolor.pipeline.onnx_export import export_onnx

        net = models.load(model, device="cpu", half=False, weights=weights)
        meta = export_onnx(net, output, render_size=render_size, dynamic=dynamic, overwrite=overwrite)
        click.echo(f"{output}: {meta['model']} ({meta['licence']}), input {meta['shape']}")

    run_command(body, debug)


@main.command("models")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def models_cmd(as_json: bool) -> None:
    """List the colorization models, their licences and whether their weights are here."""

    def body() -> None:
        from dataclasses import asdict

        from vidcolor import models

        infos = models.available()
        if as_json:
            click.echo(json.dumps([asdict(i) for i in infos], indent=2))
        else:
            click.echo(models.format_models_table(infos))

    run_command(body, False)


@main.command()
@click.option(
    "--data",
    "data",
    multiple=True,
    type=click.Path(path_type=Path),
    required=True,
    help="Folder, tar shard or video of colour pictures (repeatable; more may follow).",
)
@click.argument("more_data", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Run folder.")
@click.option("--steps", type=int, default=1800, show_default=True)
@click.option("--batch", type=int, default=32, show_default=True)
@click.option("--crop", type=int, default=144, show_default=True, help="Training crop side, pixels.")
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--val-fraction", type=float, default=0.05, show_default=True)
@click.option(
    "--val-every", type=int, default=250, show_default=True, help="Steps between validations (and best.pt)."
)
@click.option(
    "--decoder-widths",
    default="256,128,96,64,32",
    show_default=True,
    help="Channels of the fusion and the decoder at 1/16, 1/8, 1/4 and 1/2 (five numbers).",
)
@click.option(
    "--global-dim", type=int, default=256, show_default=True, help="Width of the global context vector."
)
@click.option("--finetune-encoder", is_flag=True, help="Train the encoder too (about 10x slower on a CPU).")
@click.option(
    "--encoder-tail",
    type=int,
    default=0,
    show_default=True,
    help="Train the encoder's last N blocks and head conv, at a tenth of --lr (cheap: 1/32 resolution).",
)
@click.option("--device", default="auto", show_default=True)
@click.option("--threads", type=int, default=0)
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
    val_fraction: float,
    val_every: int,
    decoder_widths: str,
    global_dim: int,
    finetune_encoder: bool,
    encoder_tail: int,
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
            val_fraction=val_fraction,
            val_every=val_every,
            model=ColorizerConfig(
                widths=(widths[0], widths[1], widths[2], widths[3], widths[4]), global_dim=global_dim
            ),
            freeze_encoder=not finetune_encoder,
            encoder_tail=encoder_tail,
            device=device,
            threads=threads,
        )
        cfg = replace(cfg, augment=replace(AugmentConfig(), crop=crop))
        last = run_train(cfg, resume=resume, progress=not quiet)
        if not quiet:
            click.echo(f"checkpoint: {last} (best by validation: {last.with_name('best.pt')})")

    run_command(body, debug)


@main.command("eval")
@click.option(
    "--data",
    "data",
    multiple=True,
    type=click.Path(path_type=Path),
    required=True,
    help="Folder or file of colour images/videos used as ground truth (repeatable).",
)
@click.argument("more_data", nargs=-1, type=click.Path(path_type=Path))
@model_options
@click.option(
    "--heads",
    default=None,
    help="Comma list of output heads to compare (class, regression, blend); default: the model's.",
)
@click.option(
    "--smoothing",
    "smoothings",
    default=str(DEFAULT_SMOOTHING),
    show_default=True,
    help="Comma list of smoothing strengths to compare, e.g. 0,0.5.",
)
@click.option(
    "--out", "out_json", type=click.Path(path_type=Path), default=Path("eval.json"), show_default=True
)
@click.option("--sheet", type=click.Path(path_type=Path), default=None, help="Contact sheet PNG.")
@click.option(
    "--compare-model",
    "compare_models",
    multiple=True,
    help="Another model (registry name or checkpoint file) scored beside --model (repeatable).",
)
@click.option("--max-frames", type=int, default=None, help="Score at most this many frames per clip.")
@click.option(
    "--hints-from-truth",
    type=int,
    default=0,
    help="Also score each colorizer with N hints per shot taken from the truth at random (seeded) points.",
)
@click.option(
    "--reference-from-truth",
    is_flag=True,
    help="Also score each colorizer with the first truth frame of each shot as its reference.",
)
@click.option(
    "--reference-dir-from-truth",
    nargs=2,
    type=(int, click.Path(path_type=Path)),
    default=None,
    metavar="N_UNRELATED DIR",
    help="Also score each colorizer with --reference-dir: a folder of the first truth frame of every "
    "shot of every clip mixed with N_UNRELATED colour photographs from DIR (mode reference-dir).",
)
@click.option(
    "--reference-dir-unrelated",
    nargs=2,
    type=(int, click.Path(path_type=Path)),
    default=None,
    metavar="N DIR",
    help="Also score each colorizer with --reference-dir: a folder of only N unrelated colour "
    "photographs from DIR (mode reference-dir-unrelated).",
)
@click.option("-q", "--quiet", is_flag=True)
@click.option("--debug", is_flag=True)
def eval_cmd(
    data: tuple[Path, ...],
    more_data: tuple[Path, ...],
    heads: str | None,
    smoothings: str,
    out_json: Path,
    sheet: Path | None,
    compare_models: tuple[str, ...],
    max_frames: int | None,
    hints_from_truth: int,
    reference_from_truth: bool,
    reference_dir_from_truth: tuple[int, Path] | None,
    reference_dir_unrelated: tuple[int, Path] | None,
    quiet: bool,
    debug: bool,
    **kw: Any,
) -> None:
    """Turn colour footage grey, colorize it and score it against the truth (JSON + contact sheet)."""

    def body() -> None:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="vidcolor-eval-") as tmp:
            scored(Path(tmp))

    def scored(tmp: Path) -> None:
        from dataclasses import replace

        from vidcolor.evaluate.colorizers import model_variants, reference_folder
        from vidcolor.evaluate.run import discover, evaluate, iter_truth
        from vidcolor.pipeline.model_step import ModelStep

        try:
            strengths = [float(s) for s in smoothings.split(",") if s.strip()]
        except ValueError:
            raise UsageError(
                "a comma list of numbers for --smoothing", repr(smoothings), "write e.g. 0,0.5"
            ) from None
        head_list = [h.strip() for h in heads.split(",")] if heads else None
        opts = ColorizeOptions(**kw)
        if hints_from_truth < 0:
            raise UsageError("--hints-from-truth of 0 or more", str(hints_from_truth), "pass e.g. 10")
        folders: dict[str, tuple[Path, dict[str, list[str]] | None]] = {}
        if reference_dir_from_truth or reference_dir_unrelated:
            step = ModelStep.create(opts)
            clips = [
                (item.name, lambda item=item: iter_truth(item, max_frames))
                for item in discover([*data, *more_data])
                if item.kind == "video"
            ]
            if reference_dir_from_truth:
                n, photos = reference_dir_from_truth
                right = reference_folder(tmp / "reference-dir", clips, photos, n, step, opts)
                folders["reference-dir"] = (tmp / "reference-dir", right)
            if reference_dir_unrelated:
                n, photos = reference_dir_unrelated
                reference_folder(tmp / "unrelated", [], photos, n, step, opts)
                folders["reference-dir-unrelated"] = (tmp / "unrelated", None)
        colorizers: dict[str, Any] = {}
        for model in (opts.model, *compare_models):
            variants = model_variants(
                replace(opts, model=model),
                head_list,
                strengths,
                hints_from_truth=hints_from_truth,
                reference_from_truth=reference_from_truth,
                reference_dirs=folders,
            )
            # Two checkpoints may share a name (runs/a/best.pt, runs/b/best.pt): the path tells them apart.
            tag = f"{Path(model).parent.name}/{Path(model).stem}" if Path(model).suffix else model
            colorizers |= {(f"{tag}:{k}" if k in colorizers else k): v for k, v in variants.items()}
        report = evaluate(
            [*data, *more_data],
            colorizers,
            out_json=out_json,
            sheet=sheet,
            max_frames=max_frames,
            progress=None if quiet else (lambda m: click.echo(m, err=True)),
        )
        if not quiet:
            click.echo(format_eval(report))
            for line in format_choices(report):
                click.echo(line)
            click.echo(f"report: {out_json}" + (f", sheet: {sheet}" if sheet else ""))

    run_command(body, debug)


def format_choices(report: dict[str, Any]) -> list[str]:
    """Per colorizer that chose references from a folder with known right stills: how often the
    right still was its best choice, and among those chosen, over all shots of all clips."""
    totals: dict[str, list[int]] = {}
    for item in report.get("items", []):
        for name, r in item.get("colorizers", {}).items():
            g = r.get("guidance") or {}
            if "right_best" in g:
                t = totals.setdefault(name, [0, 0, 0])
                t[0] += g["right_best"]
                t[1] += g["right_among_chosen"]
                t[2] += g["shots_seen"]
    return [
        f"{name}: right still chosen first for {b} of {n} shots, among the chosen for {a}"
        for name, (b, a, n) in totals.items()
    ]


def format_eval(report: dict[str, Any]) -> str:
    """A small table of the aggregate ratios per colorizer and kind."""
    lines = [
        f"{'kind':7} {'colorizer':34} {'CIEDE2000':>9} {'vs grey':>8} "
        f"{'colourf. vs truth':>18} {'CDC vs truth':>13}"
    ]
    for kind, agg in (report.get("aggregate") or {}).items():
        if not agg:
            continue
        for name, r in agg.get("colorizers", agg).items():
            if not isinstance(r, dict):
                continue

            def f(x: Any, fmt: str) -> str:
                return format(x, fmt) if isinstance(x, (int, float)) else "-"

            lines.append(
                f"{kind:7} {name:34} {f(r.get('ciede2000'), '9.2f')} {f(r.get('ciede2000_vs_grey'), '8.3f')} "
                f"{f(r.get('colourfulness_vs_truth'), '18.3f')} {f(r.get('cdc_vs_truth'), '13.3f')}"
            )
    return "\n".join(lines)


from vidcolor.batch_cli import batch_command  # noqa: E402 - batch_cli builds on the helpers above

main.add_command(batch_command)


from vidcolor.benchmark.cli import bench_command  # noqa: E402 - registered last: it imports run_command lazily

main.add_command(bench_command)


from vidcolor.preview.cli import preview_command  # noqa: E402 - it imports run_command lazily

main.add_command(preview_command)


def run() -> None:
    """The ``vidcolor`` command: the allocator tuned for big buffers (vidcolor/allocator.py), then
    :func:`main`."""
    tune()
    main()
