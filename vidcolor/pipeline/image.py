"""Still images: the same stages as a film, for one frame and without threads."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidcolor.color import BT601_RGB
from vidcolor.errors import InputError, UsageError
from vidcolor.formats import STILL_SUFFIXES
from vidcolor.frames import Frame
from vidcolor.guidance.guide import guide_for
from vidcolor.media.atomic import atomic_output, same_file
from vidcolor.media.image_io import read_image, write_image
from vidcolor.options import ColorizeOptions
from vidcolor.pipeline.chain import StageChain
from vidcolor.stages.merge import merge_rgb
from vidcolor.stages.model_step import ModelStep


def _luma_of_array(image: np.ndarray) -> tuple[np.ndarray, int]:
    """(H,W) or (H,W,3) uint8/uint16 array -> (luma, bit depth). RGB becomes BT.601 luma."""
    if image.dtype not in (np.uint8, np.uint16):
        raise InputError("a uint8 or uint16 image array", f"dtype {image.dtype}", "convert it first")
    bits = 8 if image.dtype == np.uint8 else 16
    if image.ndim == 2:
        return image, bits
    if image.ndim == 3 and image.shape[2] in (3, 4):
        rgb = image[..., :3].astype(np.float32)
        y = rgb @ np.array(BT601_RGB, np.float32)
        return np.clip(np.rint(y), 0, (1 << bits) - 1).astype(image.dtype), bits
    raise InputError(
        "an image array of shape (H,W) or (H,W,3)", f"shape {image.shape}", "pass a grey or RGB image"
    )


def colorize_image(
    src: str | Path | np.ndarray,
    dst: str | Path | None = None,
    options: ColorizeOptions | None = None,
    *,
    colorizer: torch.nn.Module | None = None,
    **kw: Any,
) -> np.ndarray:
    """Colorize a still: a path (png, jpg, tiff, ...; 8 or 16 bit; grey or RGB) or an array.

    Returns the colour image as RGB (H, W, 3), uint8, or uint16 for a 16-bit source. With ``dst``
    the image is also written there (atomically; 16-bit PNG/TIFF for 16-bit sources).
    """
    opts = options or ColorizeOptions(**kw)
    if isinstance(src, np.ndarray):
        y, bits = _luma_of_array(src)
    else:
        src = Path(src)
        y, bits = read_image(src)
        if dst is not None and Path(dst).exists() and same_file(src, Path(dst)):
            raise UsageError(
                "an output path different from the input", f"both are {src}", "choose another output name"
            )
    if dst is not None and Path(dst).suffix.lower() not in STILL_SUFFIXES:
        raise UsageError(
            "an image file name for a still (" + ", ".join(sorted(STILL_SUFFIXES)) + ")",
            str(dst),
            "name the output e.g. out.png",
        )
    # A still is a film of one frame at time 0 (hints on frame 0, or at a time below half a second).
    guide = guide_for(opts, y.shape[1], y.shape[0], 1.0, duration=0.5, frames=1)
    step = ModelStep.create(opts, colorizer)
    # A uint16 plane from a 16-bit file holds the full 0..65535 range, so its depth is 16.
    chain = StageChain(step, opts, bit_depth=bits, full_range=True, guide=guide)
    batch, ab, _ = chain.colour([Frame(0, 0, Fraction(1), y)], [0.0])
    rgb = merge_rgb(y, ab[0], batch.content, bits)
    if dst is not None:
        dst = Path(dst)
        with atomic_output(dst, opts.overwrite) as tmp:
            write_image(tmp, rgb, bits)
    return rgb
