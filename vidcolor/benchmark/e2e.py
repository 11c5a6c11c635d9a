"""The whole run timed from outside: ``colorize_video`` on a file, as a user runs it.

The clock covers everything the call does (probe, planning, the threaded stages, the final flush,
the verification pass when on, the atomic rename); the model is loaded once before, as batch mode
does, so loading weights is not counted.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import torch

from vidcolor.formats import CODEC_SUFFIX
from vidcolor.models.info import ModelInfo
from vidcolor.options import ColorizeOptions
from vidcolor.pipeline.run import Summary, colorize_video

from .timing import Measure, Timed, time_alternating

#: Options recorded with an end-to-end figure.
E2E_FIELDS = (
    "render_size",
    "batch_size",
    "threads",
    "smoothing",
    "codec",
    "guide",
    "verify",
    "device",
    "runtime",
    "model_every",
)


def _info(model: torch.nn.Module) -> ModelInfo:
    info = cast(ModelInfo, model.info)  # every colorizer carries one
    return info


def run_with(src: Path, dst: Path, opts: ColorizeOptions, model: torch.nn.Module, **kw: Any) -> Summary:
    """``colorize_video`` with an already loaded model; checks that the run really used it."""
    # The keyword was renamed once (model -> colorizer); an unknown keyword would be ignored
    # silently, so pick the one the runner takes and check the run used the model below.
    key = "colorizer" if "colorizer" in inspect.signature(colorize_video).parameters else "model"
    summary = colorize_video(src, dst, opts, **{key: model}, **kw)  # type: ignore[arg-type]  # keyword by name: colorizer= or model=
    name = _info(model).name
    if summary.model != name:
        raise RuntimeError(f"the run used {summary.model!r}, not the model under test {name!r}")
    return summary


def bench_e2e(
    src: Path,
    opts: ColorizeOptions,
    model: torch.nn.Module,
    work_dir: Path,
    *,
    repeats: int,
    warmup: int,
    label: str = "e2e",
) -> Measure:
    """Time ``colorize_video(src, ...)`` ``repeats`` times after ``warmup`` runs."""
    return bench_e2e_in_turn(src, [(label, opts)], model, work_dir, repeats=repeats, warmup=warmup)[0]


def bench_e2e_in_turn(
    src: Path,
    cases: Sequence[tuple[str, ColorizeOptions]],
    model: torch.nn.Module,
    work_dir: Path,
    *,
    repeats: int,
    warmup: int,
    setup: Callable[[int], object] | None = None,
) -> list[Measure]:
    """Time ``colorize_video(src, ...)`` with each of ``cases`` (label, options), taken in turn
    round after round (:func:`~.timing.time_alternating`): one :class:`Measure` per case, their
    passes in the same rounds, so per-round ratios between them compare like with like.
    ``setup(k)`` runs untimed before each pass of case ``k``."""
    runs = [replace(opts, overwrite=True) for _, opts in cases]
    last: dict[int, Summary] = {}
    threads: dict[int, int] = {}  # torch threads each case ran with (a run may set them globally)
    device = next(model.parameters()).device
    dsts = [Path(work_dir) / f"e2e{CODEC_SUFFIX.get(o.codec, '.mp4')}" for o in runs]

    def once(k: int) -> Callable[[], None]:
        def run() -> None:
            last[k] = run_with(src, dsts[k], runs[k], model, on_frame=None)
            threads[k] = torch.get_num_threads()

        return run

    try:
        timed = time_alternating(
            [once(k) for k in range(len(runs))], repeats=repeats, warmup=warmup, device=device, setup=setup
        )
    finally:
        for d in dsts:
            d.unlink(missing_ok=True)
    return [
        _measure(label, runs[k], model, last[k], timed[k], threads[k]) for k, (label, _) in enumerate(cases)
    ]


def _measure(
    label: str, opts: ColorizeOptions, model: torch.nn.Module, s: Summary, timed: Timed, threads: int
) -> Measure:
    params: dict[str, Any] = {k: getattr(opts, k) for k in E2E_FIELDS}
    params["render_size"] = opts.render_size or _info(model).render_size
    params["threads"] = threads
    notes = [*s.warnings]
    if s.verify is not None:
        notes.append(f"verified: {s.verify.frames} frames, Y identical: {s.verify.y_identical}")
    return Measure.of(label, s.frames, timed, params, notes)
