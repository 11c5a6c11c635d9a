"""What the commands share: the error policy, the time parser's CLI error, the model and colour options."""

from __future__ import annotations

import dataclasses
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from vidcolor.errors import UsageError, VidcolorError
from vidcolor.formats import CODECS, crf_help, preset_help
from vidcolor.options import DEFAULT_CODEC, DEFAULT_MODEL, DEFAULT_SMOOTHING, RUNTIMES, ColorizeOptions
from vidcolor.timecode import parse_timecode

F = TypeVar("F", bound=Callable[..., Any])


def default_of(cls: type, name: str) -> Any:
    """The default the dataclass ``cls`` gives its field ``name``: an option that fills a config
    field takes its default from there, so each default is written once."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            break
    raise KeyError(f"{cls.__name__}.{name} has no default")


class LazyDefault(click.Option):
    """An option whose default is a function, called for a run and for the help alike (click would
    show "(dynamic)"): the module that holds the default, and what it imports (torch, the
    pipeline), loads only when this command runs or shows its help, not for every command."""

    def get_default(self, ctx: click.Context, call: bool = True) -> Any:
        return super().get_default(ctx, call=True)


def segment_seconds_default() -> float:
    """``--segment-seconds``' default (the pipeline's, read when needed)."""
    from vidcolor.pipeline.cuts import SEGMENT_SECONDS

    return SEGMENT_SECONDS


def options_default(name: str) -> Any:
    """ColorizeOptions' default for ``name`` (a light module: read directly)."""
    return default_of(ColorizeOptions, name)


def parse_time(value: str | None) -> float | None:
    """'90', '90.5', '1:30' or '0:01:30.5' -> seconds."""
    if value is None:
        return None
    try:
        return parse_timecode(value)
    except ValueError:
        raise UsageError("a time in seconds or [HH:]MM:SS", repr(value), "write e.g. 90 or 1:30") from None


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
        click.echo(exc.line(), err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("vidcolor: interrupted; no output was written", err=True)
        sys.exit(130)
    sys.exit(code)


def data_options(help: str) -> Callable[[F], F]:
    """``--data PATH`` (repeatable, required) and more paths after it, as ``data`` and ``more_data``."""

    def deco(f: F) -> F:
        f = click.argument("more_data", nargs=-1, type=click.Path(path_type=Path))(f)
        return click.option(
            "--data", "data", multiple=True, type=click.Path(path_type=Path), required=True, help=help
        )(f)

    return deco


def reference_dir_options(help: str) -> Callable[[F], F]:
    """``--reference-dir DIR`` (its help says what this command does with it) and
    ``--drop-reference`` (repeatable, as ``drop_references``)."""

    def deco(f: F) -> F:
        f = click.option(
            "--drop-reference",
            "drop_references",
            multiple=True,
            help="A still of --reference-dir never to choose (repeatable; IMG@START-END: not in that range).",
        )(f)
        return click.option("--reference-dir", type=click.Path(path_type=Path), default=None, help=help)(f)

    return deco


def model_options(f: F | None = None, *, threads_zero: str = "the runtime's default") -> Any:
    """The model's options (``@model_options``); ``threads_zero`` says what ``--threads 0`` means
    for the command (``@model_options(threads_zero=...)``)."""
    if f is None:
        return lambda g: model_options(g, threads_zero=threads_zero)
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
    f = click.option(
        "--device", default=options_default("device"), show_default=True, help="auto, cpu, cuda or cuda:N."
    )(f)
    f = click.option(
        "--batch-size",
        type=int,
        default=options_default("batch_size"),
        show_default=True,
        help="Frames per model call.",
    )(f)
    f = click.option(
        "--render-size",
        type=int,
        default=None,
        help="Short side, in pixels, the model sees (default: the model's own).",
    )(f)
    f = click.option(
        "--threads",
        type=int,
        default=options_default("threads"),
        help=f"CPU threads of the model step (0: {threads_zero}).",
    )(f)
    f = click.option(
        "--runtime",
        type=click.Choice(list(RUNTIMES)),
        default=options_default("runtime"),
        show_default=True,
        help="Model step on the CPU: ONNX Runtime where it is installed, else PyTorch (auto); "
        "PyTorch, the reference (torch); ONNX Runtime or an error (onnx).",
    )(f)
    f = click.option(
        "--model-every",
        type=int,
        default=options_default("model_every"),
        metavar="N",
        help="Run the model on one frame in N of a shot and carry its colour along the motion to "
        "the others (1: every frame; default 0: 3 where the model runs on the CPU, 1 on a GPU).",
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
        help=", ".join(CODECS) + ".",
    )(f)
    f = click.option("--crf", type=float, default=None, help=crf_help())(f)
    f = click.option("--preset", default=None, help=preset_help())(f)
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
    f = click.option(
        "--no-verify",
        is_flag=True,
        help="Skip the check of frames, pts and luma (made while the output is written).",
    )(f)
    f = click.option("--no-guide", is_flag=True, help="Plain bilinear colour upsampling (no luma guide).")(f)
    return f


def build_options(kw: dict[str, Any], **extra: Any) -> ColorizeOptions:
    smoothing = 0.0 if kw.pop("no_smoothing", False) else kw.pop("smoothing", DEFAULT_SMOOTHING)
    kw.pop("smoothing", None)
    verify = not kw.pop("no_verify", False)
    guide = not kw.pop("no_guide", False)
    return ColorizeOptions(smoothing=smoothing, verify=verify, guide=guide, **kw, **extra)
