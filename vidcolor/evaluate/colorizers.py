"""Colorizers for the evaluation driver, built on the in-memory pipeline (pipeline/stream.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace

import numpy as np

from vidcolor.errors import UsageError
from vidcolor.evaluate.run import ColorizeFn
from vidcolor.options import ColorizeOptions
from vidcolor.pipeline.model_step import ModelStep
from vidcolor.pipeline.stream import colorize_frames

HEADS = ("class", "regression", "blend")


def pipeline_colorizer(step: ModelStep, opts: ColorizeOptions, head: str | None = None) -> ColorizeFn:
    """A ColorizeFn running the model of ``step`` with ``opts`` (and, for our model, ``head``)."""

    def colorize(frames: Iterator[np.ndarray]) -> Iterable[np.ndarray]:
        model = step.model
        if head is not None:
            model.config = replace(model.config, head=head)  # type: ignore[union-attr]
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
        if not hasattr(step.model, "config"):
            raise UsageError("a vidcolor model for --heads", step.name, "drop --heads for this model")
    out: dict[str, ColorizeFn] = {}
    for h in heads or [None]:
        for s in smoothings:
            name = step.name + (f"/{h}" if h else "") + f"/smooth{s:g}"
            out[name] = pipeline_colorizer(step, replace(opts, smoothing=s), h)
    return out
