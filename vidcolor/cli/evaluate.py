"""The ``vidcolor eval`` command and the tables it prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from vidcolor.cli.common import data_options, model_options, run_command
from vidcolor.errors import UsageError
from vidcolor.options import DEFAULT_SMOOTHING, ColorizeOptions


@click.command("eval")
@data_options("Folder or file of colour images/videos used as ground truth (repeatable).")
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
        from vidcolor.stages.model_step import ModelStep

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
