"""Colorizers for the evaluation driver, built on the in-memory pipeline (pipeline/stream.py)."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vidcolor.color import rgb_to_lab
from vidcolor.errors import UsageError
from vidcolor.evaluate.run import ColorizeFn, to_grey
from vidcolor.formats import STILL_SUFFIXES
from vidcolor.frames import Frame
from vidcolor.hints import Hint
from vidcolor.media.image_io import write_image
from vidcolor.models.colorizer import Colorizer
from vidcolor.options import ColorizeOptions
from vidcolor.pipeline.stream import colorize_frames
from vidcolor.references import Reference
from vidcolor.stages.batch_l import make_batch, render_shape
from vidcolor.stages.model_step import ModelStep
from vidcolor.stages.scene_cut import SceneCutDetector, small_luma

HEADS = ("class", "regression", "blend")


def pipeline_colorizer(step: ModelStep, opts: ColorizeOptions, head: str | None = None) -> ColorizeFn:
    """A ColorizeFn running the model of ``step`` with ``opts`` (and, for our model, ``head``)."""

    def colorize(frames: Iterator[np.ndarray]) -> Iterable[np.ndarray]:
        if head is not None:
            model = step.model
            assert isinstance(model, Colorizer)
            model.config = replace(model.config, head=head)  # type: ignore[arg-type]  # head is checked against the config's Literal at run time
        return colorize_frames(frames, step, opts)

    return colorize


def shot_starts(
    truth: Iterable[np.ndarray], step: ModelStep, opts: ColorizeOptions
) -> Iterator[tuple[int, np.ndarray]]:
    """(index, RGB frame) of the first frame of each shot of a clip's colour truth, cut where the
    pipeline's own detector cuts the grey frames (same render-size L)."""
    render = opts.render_size or step.render_size
    detector = SceneCutDetector()
    for i, rgb in enumerate(truth):
        lb = make_batch([Frame(i, i, Fraction(1), to_grey(rgb))], 8, True, render, step.stride)
        if detector.is_cut(small_luma(lb.L[0, 0])) or i == 0:
            yield i, rgb


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
    hints: list[Hint] = []
    refs: list[Reference] = []
    for shot, (i, rgb) in enumerate(shot_starts(truth, step, opts)):
        if refs:
            refs[-1] = replace(refs[-1], end=float(i))
        if reference:
            refs.append(Reference(rgb.copy(), start=float(i), name=f"truth frame {i}"))
        y = to_grey(rgb)
        h, w = y.shape
        content = min(render_shape(h, w, opts.render_size or step.render_size, step.stride)[:2])
        rng = np.random.default_rng([seed, shot, zlib.crc32(y.tobytes())])
        r = max(1, round(1.5 * min(h, w) / content))  # 3x3 render pixels, in frame pixels
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

    colorize.wants_truth = True  # type: ignore[attr-defined]  # attributes the eval driver reads off the function
    return colorize  # type: ignore[return-value]  # ColorizeFn also takes truth=; a Protocol would need the attributes too


def reference_folder(
    folder: Path,
    clips: Sequence[tuple[str, Callable[[], Iterable[np.ndarray]]]],
    unrelated: Path,
    n_unrelated: int,
    step: ModelStep,
    opts: ColorizeOptions,
) -> dict[str, list[str]]:
    """Fill ``folder`` as an archive's folder of stills would be: the first truth frame of every
    shot of every clip (``clips``: name, and a function giving its colour truth frames), as
    ``CLIP-shotK.png``, and ``n_unrelated`` colour photographs from ``unrelated`` (any depth,
    spread evenly over its files in name order; linked, not copied). Returns per clip the names of
    its shots' stills, in order."""
    folder.mkdir(parents=True, exist_ok=True)
    shots: dict[str, list[str]] = {}
    for name, truth in clips:
        shots[name] = []
        for k, (_, rgb) in enumerate(shot_starts(truth(), step, opts), 1):
            still = f"{Path(name).stem}-shot{k}.png"
            write_image(folder / still, rgb, 8)
            shots[name].append(still)
    photos = sorted(p for p in unrelated.rglob("*") if p.suffix.lower() in STILL_SUFFIXES and p.is_file())
    if len(photos) < n_unrelated:
        raise UsageError(
            f"at least {n_unrelated} colour photographs in {unrelated}",
            str(len(photos)),
            "pass a bigger folder",
        )
    for j in range(n_unrelated):
        p = photos[j * len(photos) // n_unrelated]
        (folder / f"unrelated-{j:04d}{p.suffix.lower()}").symlink_to(p.resolve())
    return shots


def reference_dir_colorizer(
    step: ModelStep, opts: ColorizeOptions, folder: Path, expected: dict[str, list[str]] | None = None
) -> ColorizeFn:
    """A ColorizeFn choosing each shot's references from ``folder`` (``--reference-dir``). After
    each clip, ``item_report(name)`` says which stills coloured which shots and, given the
    ``expected`` still of each shot (per clip name, in shot order), how often the right one was
    the best choice or among those chosen; ``caption(frame)`` names the stills that coloured a frame."""
    last: dict[str, Any] = {}

    def colorize(frames: Iterator[np.ndarray]) -> Iterable[np.ndarray]:
        last.clear()
        return colorize_frames(frames, step, replace(opts, reference_dir=str(folder)), references=last)

    def item_report(name: str) -> dict[str, Any]:
        shots = last.get("shots", [])
        keys = ("shot", "first_frame", "frames", "stills", "best")
        out: dict[str, Any] = {"shots": [{k: s[k] for k in keys} for s in shots]}
        want = (expected or {}).get(name)
        if want is not None:
            right = [
                i < len(want) and bool(s["stills"]) and s["stills"][0]["name"] == want[i]
                for i, s in enumerate(shots)
            ]
            among = [
                i < len(want) and any(c["name"] == want[i] for c in s["stills"]) for i, s in enumerate(shots)
            ]
            out.update(right_best=sum(right), right_among_chosen=sum(among), shots_seen=len(shots))
        return out

    def caption(frame: int) -> str:
        for s in last.get("shots", []):
            if s["first_frame"] <= frame < s["first_frame"] + s["frames"]:
                return ", ".join(c["name"] for c in s["stills"]) or "automatic"
        return "?"

    colorize.item_report = item_report  # type: ignore[attr-defined]  # attributes the eval driver reads off the function
    colorize.caption = caption  # type: ignore[attr-defined]  # attributes the eval driver reads off the function
    return colorize


def model_variants(
    opts: ColorizeOptions,
    heads: Sequence[str] | None,
    smoothings: Sequence[float],
    *,
    hints_from_truth: int = 0,
    reference_from_truth: bool = False,
    reference_dirs: Mapping[str, tuple[Path, dict[str, list[str]] | None]] | None = None,
) -> dict[str, ColorizeFn]:
    """One colorizer per (head, smoothing) pair, sharing one loaded model. With
    ``hints_from_truth`` N and/or ``reference_from_truth``, each pair also in the guided modes
    (named .../hintsN, .../reference, .../hintsN+reference): N hints per shot, the shot's first
    frame as reference, and both together. ``reference_dirs`` (tag -> folder, e.g. made by
    :func:`reference_folder`, and its right stills per clip or None) adds a mode per folder
    (.../TAG) choosing references from it."""
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
            for tag, (folder, expected) in (reference_dirs or {}).items():
                out[f"{name}/{tag}"] = reference_dir_colorizer(
                    step, replace(opts, smoothing=s), folder, expected
                )
    return out
