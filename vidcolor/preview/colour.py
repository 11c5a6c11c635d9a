"""The colour of one frame, as a film render would give it, and pictures for the page.

A frame is colorized by the in-memory pipeline (:func:`vidcolor.pipeline.stream.colorize_frames`:
the film pipeline's batching, model step, smoother and merge) over a window of the frames around
it, as wide as the smoother reaches, so that the smoothing strength shows on the frame as it will
in the film. One :class:`~vidcolor.stages.model_step.ModelStep` is kept per (model, device).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, fields, replace
from typing import Any

import cv2
import numpy as np

from vidcolor.frames import LBatch
from vidcolor.options import ColorizeOptions
from vidcolor.pipeline.stream import colorize_frames
from vidcolor.preview.sources import Window
from vidcolor.stages.model_step import ModelStep
from vidcolor.stages.smooth import TemporalSmoother

CACHE_BYTES = 64 << 20  # model outputs kept for reuse: about 80 frames of ab at 224x416
MAX_SIDE = 1920  # pixels: pictures sent to the page are shrunk to this long side at most
JPEG_QUALITY = 90


@dataclass
class CachedStep(ModelStep):
    """The model step, remembering its answers: the same L in gives the same ab out, without the model.

    A preview frame is colorized with its neighbours (for the smoother), so stepping to the next
    frame, or changing a setting that acts after the model (smoothing), asks the model again for
    pictures it has just seen. Frames are keyed by a hash of their L; calls with hints go to the
    model as they are (their answer depends on more than L).
    """

    cache: OrderedDict[bytes, np.ndarray] = field(default_factory=OrderedDict, repr=False)
    cache_bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def wrap(cls, step: ModelStep) -> CachedStep:
        return cls(**{f.name: getattr(step, f.name) for f in fields(ModelStep)})

    def __call__(self, batch: LBatch, hints: np.ndarray | None = None) -> np.ndarray:
        if hints is not None:
            return super().__call__(batch, hints)
        keys = [
            hashlib.blake2b(batch.L[i].tobytes(), digest_size=16).digest() + repr(batch.content).encode()
            for i in range(len(batch.L))
        ]
        with self.lock:
            missing = [i for i, k in enumerate(keys) if k not in self.cache]
        if missing:
            sub = LBatch(
                tuple(batch.indices[i] for i in missing),
                np.ascontiguousarray(batch.L[missing]),
                batch.content,
            )
            ab = super().__call__(sub)
            with self.lock:
                for j, i in enumerate(missing):
                    self._keep(keys[i], ab[j])
        with self.lock:
            for k in keys:
                self.cache.move_to_end(k)
            return np.stack([self.cache[k] for k in keys])

    def _keep(self, key: bytes, ab: np.ndarray) -> None:
        if key in self.cache:
            return
        self.cache[key] = ab
        self.cache_bytes += ab.nbytes
        while self.cache_bytes > CACHE_BYTES and len(self.cache) > 1:
            _, old = self.cache.popitem(last=False)
            self.cache_bytes -= old.nbytes


class Models:
    """Loaded models, one :class:`CachedStep` per (model, device); loading happens once, under a lock.

    ``run_lock`` serialises model calls: on a CPU two at once only share the same cores, and each
    answer would come later than one after the other.
    """

    def __init__(self) -> None:
        self._steps: dict[tuple[str, str], CachedStep] = {}
        self._lock = threading.Lock()
        self.run_lock = threading.Lock()

    def step(self, opts: ColorizeOptions) -> CachedStep:
        key = (opts.model, opts.device)
        with self._lock:
            step = self._steps.get(key)
            if step is None:
                step = CachedStep.wrap(ModelStep.create(opts))
                self._steps[key] = step
            return step


def context_frames(opts: ColorizeOptions) -> int:
    """Frames on each side of a frame that the smoother looks at, for these options."""
    return TemporalSmoother(opts.smoothing).latency


def colour_frame(
    window: Window,
    step: ModelStep,
    opts: ColorizeOptions,
    rate: float | None = None,
    references: dict[str, Any] | None = None,
) -> np.ndarray:
    """The colorized ``window.frames[window.target]``: RGB (H, W, 3), the dtype of the frames.

    The whole window goes through ``colorize_frames`` in one batch; outputs after the target are
    not merged (the generator is left once the target is out). ``rate`` (frames/s) times the
    window's frames for the hints in ``opts`` (their times count from the window's first frame).
    With a reference folder, ``references`` (when given) is filled with the stills chosen for the
    window's shots (the ``--references-report`` JSON, frames counted in the window).
    """
    opts = replace(opts, batch_size=max(1, len(window.frames)))
    frames = colorize_frames(
        window.frames, step, opts, bit_depth=window.bit_depth, rate=rate or 1.0, references=references
    )
    for i, rgb in enumerate(frames):
        if i == window.target:
            if references is not None:
                for _ in frames:  # the report is filled once the last frame is out
                    pass
            return rgb
    raise RuntimeError("colorize_frames returned fewer frames than it was given")


def to_display(image: np.ndarray, bit_depth: int, rotation: float) -> np.ndarray:
    """A luma (H, W) or RGB (H, W, 3) picture as 8 bits, turned upright and no larger than MAX_SIDE."""
    if image.dtype != np.uint8:
        top = (1 << bit_depth) - 1
        image = np.clip(np.rint(image.astype(np.float32) * (255.0 / top)), 0, 255).astype(np.uint8)
    k = int(round(rotation / 90.0)) % 4  # display-matrix degrees are counter-clockwise, as np.rot90's
    if k:
        image = np.ascontiguousarray(np.rot90(image, k))
    h, w = image.shape[:2]
    if max(h, w) > MAX_SIDE:
        scale = MAX_SIDE / max(h, w)
        image = cv2.resize(
            image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
    return image


def encode_picture(image: np.ndarray, fmt: str) -> bytes:
    """An 8-bit luma or RGB picture as JPEG or PNG bytes."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if fmt == "png":
        ok, data = cv2.imencode(".png", image)
    else:
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {image.shape} picture as {fmt}")
    return bytes(data.tobytes())
