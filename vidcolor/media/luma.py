"""The luma plane of a decoded picture, as a compact numpy array, whatever its pixel format.

uint8 (H, W) for formats of 8 bits or fewer, native-endian uint16 (H, W) holding the native value
range otherwise (0..1023 for 10-bit, 0..65535 for 16-bit). RGB-like formats give the full-range
BT.601 luma of their RGB: round(0.299 R + 0.587 G + 0.114 B), same dtype rule.
"""

from __future__ import annotations

import av
import numpy as np

from vidcolor.color import BT601_RGB

#: Packed formats whose luma sits in plane 0 with other components: (offset, step) in samples.
_PACKED_LUMA: dict[str, tuple[int, int]] = {
    "yuyv422": (0, 2),
    "yvyu422": (0, 2),
    "uyvy422": (1, 2),
    "ya8": (0, 2),
    "ya16le": (0, 2),
    "ya16be": (0, 2),
}
#: Formats that keep their samples in the high bits of 16-bit words: right shift to native range.
_MSB_ALIGNED: dict[str, int] = {"p010le": 6, "p010be": 6, "p012le": 4, "p012be": 4, "p210le": 6, "p410le": 6}


def luma_of(frame: av.VideoFrame) -> np.ndarray:
    """The luma plane of ``frame`` as a compact numpy array (line padding stripped).

    uint8 (H, W) for formats of 8 bits or fewer, native-endian uint16 (H, W) with the native
    value range otherwise. RGB-like formats give BT.601 luma of their RGB (full range).
    """
    fmt = frame.format
    name = fmt.name
    h, w = frame.height, frame.width
    if fmt.is_rgb or name in ("pal8", "bgr8", "rgb8", "bgr4_byte", "rgb4_byte", "monow", "monob"):
        return _rgb_luma(frame)
    comps0 = [c for c in fmt.components if c.plane == 0]
    bits = fmt.components[0].bits
    wide = bits > 8
    dtype = np.dtype(">u2" if fmt.is_big_endian else "<u2") if wide else np.dtype(np.uint8)
    plane = frame.planes[0]
    if name in _PACKED_LUMA:
        offset, step = _PACKED_LUMA[name]
    elif len(comps0) == 1:
        offset, step = 0, 1
    else:  # an unusual packed layout: let swscale pull the luma out
        return luma_of(frame.reformat(format="gray16le" if wide else "gray"))
    rows = np.frombuffer(memoryview(plane), dtype=dtype).reshape(-1, plane.line_size // dtype.itemsize)[:h]
    y = rows[:, offset : offset + w * step : step]
    # Always a compact copy in native byte order: the frame's buffer goes back to the decoder's pool.
    out: np.ndarray = np.array(y, dtype=np.uint16 if wide else np.uint8, order="C", copy=True)
    shift = _MSB_ALIGNED.get(name)
    if shift:
        out = out >> shift
    return out


def _rgb_luma(frame: av.VideoFrame) -> np.ndarray:
    deep = max(c.bits for c in frame.format.components) > 8
    rgb = frame.to_ndarray(format="rgb48le" if deep else "rgb24").astype(np.float32)
    y = BT601_RGB[0] * rgb[..., 0] + BT601_RGB[1] * rgb[..., 1] + BT601_RGB[2] * rgb[..., 2]
    top = 65535 if deep else 255
    return np.clip(np.rint(y), 0, top).astype(np.uint16 if deep else np.uint8)
