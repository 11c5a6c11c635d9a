"""Small training material for the tests: synthetic colour pictures and a training run of a tiny
network that takes a second or two on the CPU."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from vidcolor.models.colorizer import ColorizerConfig
from vidcolor.train.augment import AugmentConfig
from vidcolor.train.loop import TrainConfig

TINY_MODEL = ColorizerConfig(widths=(32, 16, 16, 16, 8), global_dim=16)


def picture(seed: int, h: int = 72, w: int = 96) -> np.ndarray:
    """A colour picture RGB uint8 (h, w, 3): a random base colour with waves of each channel."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = rng.uniform(40, 215, 3)
    img = base + 30 * np.stack([np.sin(xx / 7 + seed), np.cos(yy / 5), np.sin((xx + yy) / 9)], -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def tiny_run(out: Path, corpus: Path, steps: int, **changes: Any) -> TrainConfig:
    """A training config of the tiny network on ``corpus``, writing to ``out``, with ``changes``."""
    cfg = TrainConfig(
        data=(str(corpus),),
        out=str(out),
        steps=steps,
        batch=2,
        val_every=2,
        val_fraction=0.3,
        ckpt_minutes=0.0,
        threads=1,
        augment=AugmentConfig(crop=64),
        model=TINY_MODEL,
    )
    return replace(cfg, **changes)
