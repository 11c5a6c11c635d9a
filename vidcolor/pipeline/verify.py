"""Check a finished output against its source before it is renamed into place.

Both files are decoded once more, side by side: the output must have exactly the source's frames
and pts, and its Y plane is compared with the source's (PSNR; infinite when bit-identical).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

import numpy as np

from vidcolor.errors import EncodingError
from vidcolor.frames import SourceInfo
from vidcolor.media.decode import decode_frames
from vidcolor.media.encode import OutputPlan
from vidcolor.media.probe import probe


@dataclass(frozen=True)
class VerifyResult:
    frames: int
    y_psnr: float  # dB over the source's bit depth; inf when the Y planes are identical
    y_identical: bool


def verify_output(
    src: Path, out: Path, info: SourceInfo, plan: OutputPlan, *, start: float | None, duration: float | None,
    expected_frames: int,
) -> VerifyResult:
    out_info = probe(out)
    a = decode_frames(src, info, start=start, duration=duration, skip_corrupt=True)
    b = decode_frames(out, out_info)
    peak = float((1 << info.video.bit_depth) - 1)
    shift = info.video.bit_depth - out_info.video.bit_depth
    se, n_px, n = 0.0, 0, 0
    for fa, fb in zip_longest(a, b):
        if fa is None or fb is None:
            rest = 1 + sum(1 for _ in (b if fa is None else a))
            src_n, out_n = (n, n + rest) if fa is None else (n + rest, n)
            raise EncodingError(f"{src_n} frames in the output, as in the source", str(out_n),
                                "report this as a bug; the output was not kept")
        if fa.pts != fb.pts:
            raise EncodingError(f"pts {fa.pts} at frame {n} of the output", f"pts {fb.pts}",
                                "report this as a bug; the output was not kept")
        ya = fa.y.astype(np.int64)
        yb = fb.y.astype(np.int64) << shift if shift > 0 else fb.y.astype(np.int64) >> -shift
        se += float(((ya - yb) ** 2).sum())
        n_px += ya.size
        n += 1
    if n != expected_frames:
        raise EncodingError(f"{expected_frames} frames in the output", str(n),
                            "report this as a bug; the output was not kept")
    mse = se / max(n_px, 1)
    psnr = math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)
    return VerifyResult(n, psnr, mse == 0)
