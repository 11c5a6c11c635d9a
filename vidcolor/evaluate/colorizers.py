"""Colorizers for the evaluation driver, built on the in-memory pipeline (pipeline/stream.py)."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from fractions import Fraction

import numpy as np

from vidcolor.color import rgb_to_lab
from vidcolor.errors import UsageError
from vidcolor.evaluate.run import ColorizeFn, to_grey
from vidcolor.frames import Frame
from vidcolor.guidance.hints import Hint
from vidcolor.guidance.reference import Reference
from vidcolor.models.colorizer import Colorizer
from vidcolor.options import ColorizeOptions
from vidcolor.pipeline.batch_l import make_batch
from vidcolor.pipeline.model_step import ModelStep
from vidcolor.pipeline.scene_cut import SceneCutDetector, small_luma
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


def truth_guidance(
    truth: Iterable[np.ndarray],
    step: ModelStep,
    opts: ColorizeOptions,
    hints_per_shot: int,
    reference: bool,
    seed: int = 0,
) -> tuple[tuple[Hint, ...], tuple[Reference, ...]]:
    """Guidance taken from the colour truth of one clip, shot by shot (shots cut where the
    pipeline's own detector cuts them, on the same render-size L): ``hints_per_shot`` hints on
    the first frame of each shot at uniformly random points (seeded by ``seed``, the shot's index
    and its first picture), each carrying the mean truth a*b* of a 3x3 render-pixel patch; and,
    with ``reference``, the shot's first frame as the reference for the frames of that shot.
    Frame ``i`` is at time ``i`` (the in-memory pipeline's clock at rate 1)."""
    render = opts.render_size or step.render_size
    detector = SceneCutDetector()
    hints: list[Hint] = []
    refs: list[Reference] = []
    shot = -1
    for i, rgb in enumerate(truth):
        y = to_grey(rgb)
        lb = make_batch([Frame(i, i, Fraction(1), y)], 8, True, render, step.stride)
        if not detector.is_cut(small_luma(lb.L[0, 0])) and i > 0:
            continue
        shot += 1
        if refs:
            refs[-1] = replace(refs[-1], end=float(i))
        if reference:
            refs.append(Reference(rgb.copy(), start=float(i), name=f"truth frame {i}"))
        h, w = y.shape
        rng = np.random.default_rng([seed, shot, zlib.crc32(y.tobytes())])
        r = max(1, round(1.5 * min(h, w) / min(lb.content)))  # 3x3 render pixels, in frame pixels
        for _ in range(hints_per_shot):
            x, yy = int(rng.uniform(0.02, 0.98) * w), int(rng.uniform(0.02, 0.98) * h)
            patch = rgb[max(0, yy - r) : yy + r + 1, max(0, x - r) : x + r + 1].reshape(-1, 3)
            ab = rgb_to_lab(patch.astype(np.float32) / 255.0)[:, 1:].mean(axis=0)
            point, colour = (float(x), float(yy)), (float(ab[0]), float(ab[1]))
            hints.append(Hint(len(hints) + 1, "truth", point, colour, frame=i))
    return tuple(hints), tuple(refs)


def truth_guided_colorizer(
    step: ModelStep,
    opts: ColorizeOptions,
    hints_per_shot: int,
    reference: bool,
    head: str | None = None,
    seed: int = 0,
) -> ColorizeFn:
    """A ColorizeFn that reads the clip's truth (``wants_truth``) for its hints and references
    (:func:`truth_guidance`), then colorizes the grey frames with them."""

    def colorize(
        frames: Iterator[np.ndarray], truth: Callable[[], Iterator[np.ndarray]]
    ) -> Iterable[np.ndarray]:
        hints, refs = truth_guidance(truth(), step, opts, hints_per_shot, reference, seed)
        return pipeline_colorizer(step, replace(opts, hints=hints, reference=refs), head)(frames)

    colorize.wants_truth = True  # type: ignore[attr-defined]
    return colorize  # type: ignore[return-value]


def model_variants(
    opts: ColorizeOptions,
    heads: Sequence[str] | None,
    smoothings: Sequence[float],
    *,
    hints_from_truth: int = 0,
    reference_from_truth: bool = False,
) -> dict[str, ColorizeFn]:
    """One colorizer per (head, smoothing) pair, sharing one loaded model. With
    ``hints_from_truth`` N and/or ``reference_from_truth``, each pair also in the guided modes
    (named .../hintsN, .../reference, .../hintsN+reference): N hints per shot, the shot's first
    frame as reference, and both together."""
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
            modes = [(hints_from_truth, False)] if hints_from_truth else []
            modes += [(0, True)] if reference_from_truth else []
            modes += [(hints_from_truth, True)] if hints_from_truth and reference_from_truth else []
            for n, ref in modes:
                tag = "+".join(([f"hints{n}"] if n else []) + (["reference"] if ref else []))
                out[f"{name}/{tag}"] = truth_guided_colorizer(step, replace(opts, smoothing=s), n, ref, h)
    return out
