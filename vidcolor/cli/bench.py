"""``vidcolor bench``: time every stage and the whole run, measure peak memory, write JSON + PNG."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from vidcolor.benchmark.config import BenchConfig
from vidcolor.cli.common import default_of, options_default, run_command
from vidcolor.durable import write_atomic
from vidcolor.options import DEFAULT_CODEC, DEFAULT_SMOOTHING, RUNTIMES

DEFAULT_OUT = Path("benchmarks/results/latest.json")


def _bench(name: str) -> Any:
    return default_of(BenchConfig, name)


def _ints(value: str, what: str) -> tuple[int, ...]:
    from vidcolor.errors import UsageError

    try:
        return tuple(int(x) for x in value.split(",") if x.strip())
    except ValueError:
        raise UsageError(f"a comma list of integers for {what}", repr(value), "write e.g. 160,224") from None


def _words(value: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in value.split(",") if x.strip())


def _knob(value: str) -> dict[str, Any]:
    """'render_size=160,threads=1' -> {'render_size': 160, 'threads': 1} (checked against the options)."""
    from dataclasses import fields

    from vidcolor.errors import UsageError
    from vidcolor.options import ColorizeOptions

    types = {f.name: f.type for f in fields(ColorizeOptions)}
    out: dict[str, Any] = {}
    for part in _words(value):
        key, _, raw = part.partition("=")
        key = key.strip().replace("-", "_")
        if key not in types or not raw:
            raise UsageError(
                "--knob as option=value[,option=value] (e.g. render_size=160)",
                repr(part),
                f"use options among {', '.join(sorted(types))}",
            )
        kind = str(types[key])
        if raw.lower() in ("true", "false"):
            out[key] = raw.lower() == "true"
        elif "float" in kind:
            out[key] = float(raw)
        elif "int" in kind:
            out[key] = int(raw)
        else:
            out[key] = raw
    return out


@click.command("bench")
@click.argument("inputs", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--sizes",
    default=",".join(_bench("sizes")),
    show_default=True,
    help="Generated clips when no INPUT is given: 360p, 480p, 720p, 1080p or WxH, comma separated.",
)
@click.option(
    "--frames", type=int, default=_bench("frames"), show_default=True, help="Frames per generated clip."
)
@click.option(
    "--repeats",
    type=int,
    default=_bench("repeats"),
    show_default=True,
    help="Timed passes per figure (median kept).",
)
@click.option(
    "--warmup", type=int, default=_bench("warmup"), show_default=True, help="Untimed passes before them."
)
@click.option(
    "--model",
    default=None,
    help="Registry name or checkpoint (default: vidcolor-lite, or its architecture with random "
    "weights while its weights are absent: the cost is the same).",
)
@click.option(
    "--device", default=options_default("device"), show_default=True, help="auto, cpu, cuda or cuda:N."
)
@click.option("--half/--no-half", default=None, help="float16 model (default: on CUDA only).")
@click.option(
    "--threads",
    type=int,
    default=options_default("threads"),
    help="CPU threads of the model step (0: the runtime's default).",
)
@click.option(
    "--runtime",
    type=click.Choice(list(RUNTIMES)),
    default=options_default("runtime"),
    show_default=True,
    help="Model step on the CPU, as colorize's --runtime.",
)
@click.option("--render-size", type=int, default=None, help="The run's render size (default: the model's).")
@click.option(
    "--batch-size",
    type=int,
    default=options_default("batch_size"),
    show_default=True,
    help="The run's batch size.",
)
@click.option("--codec", default=DEFAULT_CODEC, show_default=True, help="The run's codec.")
@click.option("--smoothing", type=float, default=DEFAULT_SMOOTHING, show_default=True)
@click.option("--no-guide", is_flag=True, help="Plain bilinear colour upsampling in the merge.")
@click.option(
    "--verify/--no-verify",
    default=options_default("verify"),
    show_default=True,
    help="End-to-end runs check their output as a user's run does.",
)
@click.option(
    "--render-sizes",
    default=",".join(str(n) for n in _bench("sweep_renders")),
    show_default=True,
    help="Model grid: render sizes (empty: no grid).",
)
@click.option(
    "--batch-sizes",
    default=",".join(str(n) for n in _bench("sweep_batches")),
    show_default=True,
    help="Model grid: batch sizes.",
)
@click.option("--codecs", default=",".join(_bench("codecs")), show_default=True, help="Encoders timed.")
@click.option(
    "--model-frames",
    type=int,
    default=_bench("model_frames"),
    show_default=True,
    help="Frames per model pass.",
)
@click.option(
    "--encode-frames",
    type=int,
    default=_bench("encode_frames"),
    show_default=True,
    help="Frames per encoder pass.",
)
@click.option(
    "--knob",
    "knobs",
    multiple=True,
    help="An end-to-end variant on the first clip, e.g. 'render_size=160' or 'threads=1' (repeatable).",
)
@click.option(
    "--variants/--no-variants",
    default=_bench("variants"),
    show_default=True,
    help="Also time faster ways to run the model (channels_last, bfloat16, TorchScript, 1 thread).",
)
@click.option("--stages/--no-stages", default=_bench("stages"), show_default=True)
@click.option("--e2e/--no-e2e", default=_bench("e2e"), show_default=True)
@click.option(
    "--memory/--no-memory",
    default=_bench("memory"),
    show_default=True,
    help="Peak RSS of a generated clip and of a --memory-scale times longer one.",
)
@click.option("--memory-size", default=_bench("memory_size"), show_default=True)
@click.option(
    "--memory-frames", type=int, default=None, help="Frames of the shorter memory clip (default: --frames)."
)
@click.option("--memory-scale", type=int, default=_bench("memory_scale"), show_default=True)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_OUT,
    show_default=True,
    help="Results JSON; the charts go beside it (.png, -memory.png).",
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Scratch folder for generated clips and outputs (default: a vidcolor-bench temp folder).",
)
@click.option("-q", "--quiet", is_flag=True)
@click.option("--debug", is_flag=True)
def bench_command(
    inputs: tuple[Path, ...],
    sizes: str,
    frames: int,
    repeats: int,
    warmup: int,
    model: str | None,
    device: str,
    half: bool | None,
    threads: int,
    runtime: str,
    render_size: int | None,
    batch_size: int,
    codec: str,
    smoothing: float,
    no_guide: bool,
    verify: bool,
    render_sizes: str,
    batch_sizes: str,
    codecs: str,
    model_frames: int,
    encode_frames: int,
    knobs: tuple[str, ...],
    variants: bool,
    stages: bool,
    e2e: bool,
    memory: bool,
    memory_size: str,
    memory_frames: int | None,
    memory_scale: int,
    out: Path,
    work_dir: Path | None,
    quiet: bool,
    debug: bool,
) -> None:
    """Time each stage and the whole run on INPUT files (or generated clips); write JSON and charts."""

    def body() -> None:
        from vidcolor.benchmark.chart import memory_chart, stages_chart, write_png
        from vidcolor.benchmark.report import markdown
        from vidcolor.benchmark.suite import run_benchmark
        from vidcolor.errors import UsageError
        from vidcolor.options import ColorizeOptions

        if repeats < 1 or frames < 1 or model_frames < 1 or encode_frames < 1 or memory_scale < 1:
            raise UsageError(
                "--repeats, --frames, --model-frames, --encode-frames, --memory-scale of 1 or more",
                "a smaller value",
                "pass positive numbers",
            )
        opts = ColorizeOptions(
            device=device,
            half=half,
            threads=threads,
            runtime=runtime,
            render_size=render_size,
            batch_size=batch_size,
            codec=codec,
            smoothing=smoothing,
            guide=not no_guide,
            verify=verify,
        )
        cfg = BenchConfig(
            opts=opts,
            model=model,
            inputs=tuple(inputs),
            sizes=_words(sizes),
            frames=frames,
            repeats=repeats,
            warmup=warmup,
            model_frames=model_frames,
            encode_frames=encode_frames,
            codecs=_words(codecs),
            sweep_renders=_ints(render_sizes, "--render-sizes"),
            sweep_batches=_ints(batch_sizes, "--batch-sizes"),
            knobs=tuple(_knob(k) for k in knobs),
            variants=variants,
            stages=stages,
            e2e=e2e,
            memory=memory,
            memory_size=memory_size,
            memory_frames=memory_frames,
            memory_scale=memory_scale,
            **({"work_dir": work_dir} if work_dir is not None else {}),
        )
        log = None if quiet else (lambda m: click.echo(f"bench: {m}", err=True))
        result = run_benchmark(cfg, log)
        result["command"] = (
            "vidcolor bench " + " ".join(sys.argv[2:]) if len(sys.argv) > 1 else "vidcolor bench"
        )
        write_atomic(out, json.dumps(result, indent=1) + "\n")
        written = [str(out)]
        if result.get("clips") and (stages or e2e):
            png = out.with_suffix(".png")
            write_png(str(png), stages_chart(result))
            written.append(str(png))
        if result.get("memory"):
            png = out.with_name(out.stem + "-memory.png")
            write_png(str(png), memory_chart(result["memory"]))
            written.append(str(png))
        if not quiet:
            click.echo(markdown(result))
            click.echo("written: " + ", ".join(written))

    run_command(body, debug)
