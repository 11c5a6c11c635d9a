"""Choose how a trained checkpoint reads out its colour, by measurement, and export the shipped file.

The network has two heads (a distribution over ab bins, and a direct ab regression). How their
output becomes colour (which head, the class head's readout (annealed mean or geometric median)
and temperature, how much of the training's rebalancing is divided back out, the blend weight, a
final chroma gain) changes CIEDE2000 and colourfulness in opposite directions: vivid is easy, right is
hard. This grid search runs the network once per picture, then scores every readout on the same
cached logits, and picks the lowest mean CIEDE2000 among readouts whose colourfulness is at least
``min_colourfulness`` of the truth's.

The pictures it chooses on are the training run's own validation split (``--val-of``: the corpus
folders, split by scene exactly as the run split them, from the seed and fraction recorded in the
checkpoint), never the evaluation media: a readout chosen on what it is scored on flatters the score.

    python -m vidcolor.train.calibrate --checkpoint runs/lite/best.pt \
        --val-of /data/vidcolor-train --export vidcolor/models/weights/vidcolor-lite.pt
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidcolor.color import rgb_to_lab
from vidcolor.durable import write_atomic
from vidcolor.evaluate import metrics
from vidcolor.evaluate.intervals import ratio_interval
from vidcolor.evaluate.run import discover, iter_truth, to_grey
from vidcolor.models.colorizer import Colorizer
from vidcolor.stages.batch_l import make_batch
from vidcolor.stages.merge import merge_rgb

TEMPERATURES = (0.25, 0.38, 0.5, 0.7, 1.0)
BLENDS = (0.25, 0.5, 0.75)
SATURATIONS = (0.8, 1.0, 1.2, 1.4, 1.7)
PRIOR_CORRECTIONS = (0.0,)
CLASS_READOUTS = ("mean",)
CONFIDENCE_GAMMAS = (0.0,)
PER_PICTURE = "per_picture_ciede2000"  # a readout's CIEDE2000 of each picture, in the split's order
READOUT_KEYS = (
    "head",
    "class_readout",
    "temperature",
    "prior_correction",
    "confidence_gamma",
    "blend",
    "saturation",
)


def readouts(
    temperatures: tuple[float, ...] = TEMPERATURES,
    blends: tuple[float, ...] = BLENDS,
    saturations: tuple[float, ...] = SATURATIONS,
    prior_corrections: tuple[float, ...] = PRIOR_CORRECTIONS,
    class_readouts: tuple[str, ...] = CLASS_READOUTS,
    confidence_gammas: tuple[float, ...] = CONFIDENCE_GAMMAS,
) -> list[dict[str, Any]]:
    """Every readout tried: the regression head at each saturation, and the class head (alone
    and blended) at each combination of the class head's settings (see READOUT_KEYS)."""
    out: list[dict[str, Any]] = []
    base = {"class_readout": "mean", "prior_correction": 0.0, "confidence_gamma": 0.0}
    for s in saturations:
        out.append({**base, "head": "regression", "temperature": 0.38, "blend": 0.0, "saturation": s})
        for r, a, g, t in itertools.product(
            class_readouts, prior_corrections, confidence_gammas, temperatures
        ):
            c = {
                "class_readout": r,
                "prior_correction": a,
                "confidence_gamma": g,
                "temperature": t,
                "saturation": s,
            }
            out.append({**c, "head": "class", "blend": 1.0})
            out.extend({**c, "head": "blend", "blend": b} for b in blends)
    return out


def media_pictures(
    data: list[Path], max_frames: int | None = 1, max_side: int = 320, every: int = 1
) -> Iterator[np.ndarray]:
    """RGB uint8 (H, W, 3) pictures of image and video files (every ``every``-th frame of a video)."""
    for item in discover(data):
        for k, rgb in enumerate(iter_truth(item, max_frames=max_frames, render_size=max_side)):
            if k % every == 0:
                yield rgb


def validation_pictures(
    checkpoint: dict[str, Any], corpus: list[Path], max_side: int = 320
) -> list[np.ndarray]:
    """The validation pictures (RGB uint8) of the run that wrote ``checkpoint``: ``corpus`` loaded and
    split by scene with the seed and fraction the run recorded, so no picture it trained on is used
    (runs recorded before ``split_seed`` existed split by their ``seed``)."""
    from vidcolor.train.data import load_corpus, split
    from vidcolor.train.loop import config_of_recipe

    cfg = config_of_recipe(str(checkpoint["recipe"]))
    samples = load_corpus(corpus, max_side=max_side)
    _, val = split(samples, float(cfg["val_fraction"]), int(cfg.get("split_seed", cfg["seed"])))
    return [s.rgb for s in val]


def heads(model: Colorizer, L: torch.Tensor, flip: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's two heads for L (N, 1, h, w): (class logits, regression). ``flip``: each the
    mean of the picture's and its mirror image's (mirrored back), a test-time flip."""
    logits, reg = model.decode(model.encode(L), None)
    if flip:
        logits_m, reg_m = model.decode(model.encode(L.flip(3)), None)
        logits, reg = 0.5 * (logits + logits_m.flip(3)), 0.5 * (reg + reg_m.flip(3))
    return logits, reg


@dataclass
class Scores:
    """What :func:`score_readouts` measured. ``readouts``: one dict per readout of the grid, its
    settings plus ``ciede2000`` (mean over pictures), ``ciede2000_vs_grey``,
    ``colourfulness_vs_truth`` and ``per_picture_ciede2000`` (one mean CIEDE2000 per picture, in
    the pictures' order). ``grey_ciede2000`` and ``truth_colourfulness``: per picture, the same
    order, the baselines the ratios divide by (:mod:`vidcolor.evaluate.intervals` resamples them)."""

    readouts: list[dict[str, Any]]
    grey_ciede2000: list[float]
    truth_colourfulness: list[float]


@torch.inference_mode()
def score_readouts(
    model: Colorizer,
    pictures: Iterable[np.ndarray],
    render_size: int,
    grid: list[dict[str, Any]],
    flip: bool = False,
) -> Scores:
    """CIEDE2000 and colourfulness (and the truth's) of every readout in ``grid`` over the pictures
    (RGB uint8 (H, W, 3) each), per picture and as means; ``flip``: of the heads with a test-time
    flip (:func:`heads`)."""
    ciede: list[list[float]] = [[] for _ in grid]
    colour = np.zeros(len(grid))
    truth: list[float] = []
    grey: list[float] = []
    from fractions import Fraction

    from vidcolor.frames import Frame

    for rgb in pictures:
        y = to_grey(rgb)
        lab_true = rgb_to_lab(rgb.astype(np.float32) / 255.0)
        batch = make_batch([Frame(0, 0, Fraction(1), y)], 8, True, render_size, model.stride)
        L = torch.from_numpy(batch.L)
        logits, reg = heads(model, L, flip)
        truth.append(metrics.colourfulness(rgb))
        grey_lab = rgb_to_lab(np.repeat(y[..., None], 3, axis=2).astype(np.float32) / 255.0)
        grey.append(float(metrics.ciede2000(grey_lab, lab_true).mean()))
        for i, r in enumerate(grid):
            model.config = replace(model.config, **r)
            ab = model.ab_from_heads(logits, reg, (L.shape[2], L.shape[3]))[0].numpy()
            out = merge_rgb(y, ab, batch.content, 8)
            lab = rgb_to_lab(out.astype(np.float32) / 255.0)
            ciede[i].append(float(metrics.ciede2000(lab, lab_true).mean()))
            colour[i] += metrics.colourfulness(out)
    n = max(len(grey), 1)
    results = []
    for r, c, f in zip(grid, ciede, colour / n, strict=True):
        results.append(
            {
                **r,
                "ciede2000": sum(c) / n,
                # Means over means, as the shipped file's record was computed (to the last bit).
                "ciede2000_vs_grey": (sum(c) / n) / max(sum(grey) / n, 1e-12),
                "colourfulness_vs_truth": f / max(sum(truth) / n, 1e-12),
                PER_PICTURE: c,
            }
        )
    return Scores(results, grey, truth)


def choose(results: list[dict[str, Any]], min_colourfulness: float) -> dict[str, Any]:
    ok = [r for r in results if r["colourfulness_vs_truth"] >= min_colourfulness]
    pool = ok or sorted(results, key=lambda r: -r["colourfulness_vs_truth"])[:5]
    return min(pool, key=lambda r: r["ciede2000"])


def main(argv: list[str] | None = None) -> int:
    from vidcolor.models import load, save_checkpoint
    from vidcolor.models.registry import write_weights_record

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--val-of",
        nargs="+",
        type=Path,
        metavar="CORPUS",
        help="the training corpus folders: score on the run's own validation split (the default way)",
    )
    where.add_argument("--data", nargs="+", type=Path, help="score on these image and video files instead")
    ap.add_argument("--render-size", type=int, default=224)
    ap.add_argument("--min-colourfulness", type=float, default=0.7)
    ap.add_argument("--report", type=Path, default=None, help="JSON of every readout's scores")
    ap.add_argument("--export", type=Path, default=None, help="write the shipped half-precision file here")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--temperatures", type=float, nargs="+", default=TEMPERATURES)
    ap.add_argument("--blends", type=float, nargs="+", default=BLENDS)
    ap.add_argument("--saturations", type=float, nargs="+", default=SATURATIONS)
    ap.add_argument("--prior-corrections", type=float, nargs="+", default=PRIOR_CORRECTIONS)
    ap.add_argument("--class-readouts", nargs="+", choices=("mean", "median", "mode"), default=CLASS_READOUTS)
    ap.add_argument("--confidence-gammas", type=float, nargs="+", default=CONFIDENCE_GAMMAS)
    ap.add_argument("--max-frames", type=int, default=1, help="frames per video (images have one)")
    ap.add_argument("--every", type=int, default=1, help="score every N-th frame of a video")
    ap.add_argument(
        "--flip",
        action="store_true",
        help="score the heads averaged with the mirror image's (twice the network's cost; not exported)",
    )
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from vidcolor.models.checkpoint import read_checkpoint

    ckpt = read_checkpoint(args.checkpoint)
    model = load(args.checkpoint, device="cpu", half=False)
    assert isinstance(model, Colorizer)
    weights = ckpt.get("extra", {}).get("rebalance_weights")
    if weights is not None:  # a training run's checkpoint: the readout may divide them back out
        model.config = replace(model.config, rebalance_log_weights=tuple(torch.log(weights).tolist()))
    elif any(args.prior_corrections) and not model.config.rebalance_log_weights:
        raise SystemExit(
            f"--prior-corrections needs the rebalancing weights of a training run; none in {args.checkpoint}"
        )
    grid = readouts(
        tuple(args.temperatures),
        tuple(args.blends),
        tuple(args.saturations),
        tuple(args.prior_corrections),
        tuple(args.class_readouts),
        tuple(args.confidence_gammas),
    )
    pictures: Iterable[np.ndarray] = (
        validation_pictures(ckpt, args.val_of)
        if args.val_of
        else media_pictures(args.data, args.max_frames, every=args.every)
    )
    if args.flip and args.export:
        raise SystemExit("--flip scores a readout the shipped file cannot run; drop --export")
    scores = score_readouts(model, pictures, args.render_size, grid, args.flip)
    chosen = choose(scores.readouts, args.min_colourfulness)
    best = {k: v for k, v in chosen.items() if k != PER_PICTURE}
    # Which pictures the split holds moves the score: say by how much (90% over resampled pictures).
    interval = ratio_interval(chosen[PER_PICTURE], scores.grey_ciede2000)
    print(json.dumps({**best, "ciede2000_vs_grey_90": interval}))
    if args.report:
        report = {
            "chosen": {**best, "ciede2000_vs_grey_90": interval},
            "all": scores.readouts,
            "pictures": {
                "grey_ciede2000": scores.grey_ciede2000,
                "truth_colourfulness": scores.truth_colourfulness,
            },
        }
        write_atomic(args.report, json.dumps(report, indent=1))
    if args.export:
        model.config = replace(model.config, **{k: best[k] for k in READOUT_KEYS})
        metrics_ = {**ckpt.get("metrics", {}), "calibration": best}
        save_checkpoint(
            args.export,
            model,
            data=ckpt["data"],
            recipe=ckpt["recipe"],
            metrics=metrics_,
            step=ckpt["step"],
            git_sha=ckpt.get("git_sha"),
            half=True,
        )
        write_weights_record(
            args.export,
            licence="Apache-2.0",
            data=ckpt["data"],
            step=ckpt["step"],
            calibration=metrics_["calibration"],
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
