"""Colorize a stream of grey frames held in memory: stages [2]-[5] without files or threads.

Used where frames come from somewhere other than a media file: evaluation (grey frames made from a
colour truth), previews, notebooks. The arithmetic is the film pipeline's own (same batching, model
step, smoother and merge), only the output is RGB instead of encoder planes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from fractions import Fraction
from typing import Any

import numpy as np

from vidcolor.frames import Frame
from vidcolor.guidance.guide import guide_for, guided
from vidcolor.options import ColorizeOptions
from vidcolor.pipeline.chain import StageChain
from vidcolor.stages.merge import merge_rgb
from vidcolor.stages.model_step import ModelStep


def colorize_frames(
    frames: Iterable[np.ndarray],
    step: ModelStep,
    opts: ColorizeOptions,
    bit_depth: int = 8,
    *,
    rate: float = 1.0,
    references: dict[str, Any] | None = None,
) -> Iterator[np.ndarray]:
    """Grey frames (H, W) uint8 (or uint16 of ``bit_depth``), full range -> RGB (H, W, 3) of the same dtype.

    One frame out per frame in, in order; at most a batch plus the smoother's latency is held.
    Frame ``i`` is at time ``i / rate`` seconds for the hints and references of ``opts``. With a
    reference folder, ``references`` (when given) is filled, once the last frame is out, with
    which stills coloured which shots (the ``--references-report`` JSON).
    """
    chain = StageChain(step, opts, bit_depth=bit_depth, full_range=True)
    pending: deque[tuple[np.ndarray, tuple[int, int]]] = deque()

    def ready(out: list[tuple[int, np.ndarray]]) -> Iterator[np.ndarray]:
        for _index, ab in out:
            y, content = pending.popleft()
            yield merge_rgb(y, ab, content, bit_depth)

    batch: list[Frame] = []

    def run(batch: list[Frame]) -> Iterator[np.ndarray]:
        if guided(opts) and chain.guide is None:
            h, w = batch[0].y.shape
            chain.guide = guide_for(opts, w, h, rate)
        lb, ab, plan = chain.colour(batch, [f.index / rate for f in batch])
        for i, f in enumerate(batch):
            pending.append((f.y, lb.content))
            yield from ready(chain.smooth(f.index, ab[i], lb.L[i, 0], plan, i))

    for i, y in enumerate(frames):
        f = Frame(i, i, Fraction(1), y)
        if batch and (len(batch) == opts.batch_size or y.shape != batch[0].y.shape):
            yield from run(batch)
            batch = []
        batch.append(f)
    if batch:
        yield from run(batch)
    yield from ready(chain.flush())
    if references is not None and chain.guide is not None and chain.guide.chooser is not None:
        references.update(chain.guide.chooser.report())
