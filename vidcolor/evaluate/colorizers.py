"""Colorizers for the evaluation driver, built on the in-memory pipeline (pipeline/stream.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace

import numpy as np

from vidcolor.errors import UsageError
from vidcolor.evaluate.run import ColorizeFn
from vidcolor.models.colorizer import Colorizer
from vidcolor.options import ColorizeOptions
from vidcolor.pipeline.model_step import ModelStep
from vidcolor.pipeline.stream import colorize_frames

HEADS = ("class", "regression", "blend")


def pipeline_colorizer(step: ModelStep, opts: ColorizeOptions, head: str | None = None) -> ColorizeFn:
    """A ColorizeFn running the model of ``step`` with ``opts`` (and, for our model, ``head``)."""

    def colorize(frames: Iterator[np.ndarray]) -> Iterable[np.ndarray]:
        if head is not None:
            model = step.model
            assert isinstance(model, Colorizer)
            model.config = replace(model.config, head=head)  # type: ignore[arg-type]
        return colorize_frames(frames, step, opts)

    return colorize


def model_variants(
    opts: ColorizeOptions, heads: Sequence[str] | None, smoothings: Sequence[float]
) -> dict[str, ColorizeFn]:
    """One colorizer per (head, smoothing) pair, sharing one loaded model."""
    step = ModelStep.create(opts)
    if heads:
        bad = [h for h in heads if h not in HEADS]
        if bad:
            raise UsageError(f"heads among {', '.join(HEADS)}", ", ".join(bad), "fix --heads")
        if not isinstance(step.model, Colorizer):
            raise UsageError("a vidcolor model for --heads", step.name, "drop --heads for this model")
    out: dict[str, ColorizeFn] = {}
    head_list: Sequence[str | None] = list(heads) if heads else [None]
    for h in head_list:
        for s in smoothings:
            name = step.name + (f"/{h}" if h else "") + f"/smooth{s:g}"
            out[name] = pipeline_colorizer(step, replace(opts, smoothing=s), h)
    return out
