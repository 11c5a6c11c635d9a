"""Stage [2]: decoded luma planes -> CIE L batches at the render size (DESIGN.md, contract 3).

The render size is chosen on the *pixel grid*: the short side of the coded frame is scaled to the
render size and the aspect of the coded grid is kept, whatever the sample aspect ratio (SAR). An
anamorphic picture is therefore seen squeezed by the model, exactly as it is stored; the ab it
returns goes back onto the same grid in stage [5], so no resampling error is added by a SAR round
trip, and the model is fully convolutional, so a mild squeeze costs little.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np

from vidcolor.color import grey_to_l
from vidcolor.frames import Frame, LBatch


def render_shape(height: int, width: int, render_size: int, stride: int) -> tuple[int, int, int, int]:
    """Size at which a ``height`` x ``width`` frame is shown to the model.

    Returns ``(content_h, content_w, padded_h, padded_w)`` in pixels. The short side becomes
    ``render_size`` when the frame is larger than that; a smaller frame keeps its size (upscaling a
    small picture adds no detail and only costs time), except that the short side is raised to at
    least one ``stride`` so that tiny frames (1x1, 8x8) still make a valid model input. The aspect of
    the pixel grid is kept (rounded to whole pixels, each side at least 1). ``padded_*`` are the
    content sides rounded up to multiples of ``stride``; the padding lies at the bottom and right.
    """
    if height < 1 or width < 1:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    if render_size < 1 or stride < 1:
        raise ValueError(f"render_size and stride must be positive, got {render_size}, {stride}")
    short = min(height, width)
    target = max(min(short, render_size), stride)
    scale = target / short
    if height <= width:
        content_h = target
        content_w = max(1, round(width * scale))
    else:
        content_w = target
        content_h = max(1, round(height * scale))
    padded_h = math.ceil(content_h / stride) * stride
    padded_w = math.ceil(content_w / stride) * stride
    return content_h, content_w, padded_h, padded_w


@lru_cache(maxsize=16)
def _l_lut(entries: int, bit_depth: int, full_range: bool) -> np.ndarray:
    """CIE L (float32, ``entries`` values) of every code value a luma plane can hold.

    Tables have one entry per value of the array's dtype (256 for uint8, 65536 for uint16), so a
    stray code above the nominal maximum (e.g. 1023 < v in a 10-bit plane) indexes safely and clips
    to white instead of raising.
    """
    codes = np.arange(entries, dtype=np.float64)
    scale = float(1 << (bit_depth - 8))
    if full_range:
        grey = codes / float((1 << bit_depth) - 1)
    else:
        # Limited ("tv") range: black at 16, white at 235, scaled for the bit depth (ITU-R BT.601/709).
        grey = (codes - 16.0 * scale) / (219.0 * scale)
    grey = np.clip(grey, 0.0, 1.0).astype(np.float32)
    lut = grey_to_l(grey).astype(np.float32)
    lut.setflags(write=False)
    return lut


def _check_depth(y: np.ndarray, bit_depth: int) -> int:
    if bit_depth < 8 or bit_depth > 16:
        raise ValueError(f"bit_depth must be 8..16, got {bit_depth}")
    if y.dtype == np.uint8:
        if bit_depth != 8:
            raise ValueError(f"a uint8 luma plane must be 8-bit, got bit_depth={bit_depth}")
        return 256
    if y.dtype == np.uint16:
        return 65536
    raise ValueError(f"luma plane must be uint8 or uint16, got {y.dtype}")


def y_to_l(y: np.ndarray, bit_depth: int, full_range: bool) -> np.ndarray:
    """Luma plane (H, W) uint8/uint16 -> CIE L float32 (H, W) in [0, 100].

    ``bit_depth`` is the source's (8..16; uint16 planes hold the native range, e.g. 0..1023).
    Limited-range luma is expanded to full range first; codes outside the nominal range (super
    white, sub black) clip. A luma value is taken as a grey sRGB level, see ``color.grey_to_l``.
    """
    entries = _check_depth(y, bit_depth)
    return _l_lut(entries, bit_depth, bool(full_range))[y]


def make_batch(
    frames: Sequence[Frame],
    bit_depth: int,
    full_range: bool,
    render_size: int,
    stride: int,
    *,
    out: np.ndarray | None = None,
) -> LBatch:
    """Turn a few frames of one size into an :class:`LBatch` for the model.

    Each Y plane is resized to the content size (``cv2.INTER_AREA`` when shrinking, bilinear when
    enlarging), converted to L and padded by edge replication to the padded size (bottom and
    right). Returns ``LBatch(indices, L float32 (N, 1, padded_h, padded_w), content=(h, w))``.

    ``out``, when given, is a C-contiguous float32 array of exactly that shape to fill (e.g. a view
    of pinned memory); it becomes ``LBatch.L``.
    """
    if not frames:
        raise ValueError("make_batch needs at least one frame")
    height, width = frames[0].y.shape[:2]
    for f in frames:
        if f.y.shape != (height, width):
            raise ValueError(
                f"frames of one batch must share a size: frame {f.index} is "
                f"{f.y.shape[1]}x{f.y.shape[0]}, frame {frames[0].index} is {width}x{height}"
            )
    ch, cw, ph, pw = render_shape(height, width, render_size, stride)
    shape = (len(frames), 1, ph, pw)
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be C-contiguous float32 {shape}, got {out.dtype} {out.shape}")
    # Shrinking averages (no aliasing of film grain into fake texture); enlarging interpolates.
    interp = cv2.INTER_AREA if ch * cw <= height * width else cv2.INTER_LINEAR
    same = (ch, cw) == (height, width)
    for i, f in enumerate(frames):
        y = f.y if same else cv2.resize(f.y, (cw, ch), interpolation=interp)
        plane = out[i, 0]
        plane[:ch, :cw] = y_to_l(y, bit_depth, full_range)
        if pw > cw:
            plane[:ch, cw:] = plane[:ch, cw - 1 : cw]
        if ph > ch:
            plane[ch:, :] = plane[ch - 1 : ch, :]
    return LBatch(indices=tuple(f.index for f in frames), L=out, content=(ch, cw))
