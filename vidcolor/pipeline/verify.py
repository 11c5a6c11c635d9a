"""Check a finished output against its source before it is renamed into place.

Both files are decoded once more, side by side: the output must have exactly the source's frames
and pts, and its Y plane is compared with the source's (PSNR; infinite when bit-identical).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
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
    shift_s: float = 0.0  # uniform shift of all streams imposed by the output container, seconds


def _same_time(pa: int, ta: Fraction, pb: int, tb: Fraction, shift: Fraction) -> bool:
    """Same pts, or, where the output container imposes its own time base (Matroska counts in
    milliseconds, MPEG-TS in 1/90000 s) or a uniform shift, the same instant to within half a tick."""
    if ta == tb and shift == 0:
        return pa == pb
    return abs(pa * ta + shift - pb * tb) <= tb / 2


def verify_output(
    src: Path,
    out: Path,
    info: SourceInfo,
    plan: OutputPlan,
    *,
    start: float | None,
    duration: float | None,
    expected_frames: int,
) -> VerifyResult:
    out_info = probe(out)
    a = decode_frames(src, info, start=start, duration=duration, skip_corrupt=True)
    b = decode_frames(out, out_info)
    peak = float((1 << info.video.bit_depth) - 1)
    depth_shift = info.video.bit_depth - out_info.video.bit_depth
    se, n_px, n = 0.0, 0, 0
    shift_s = Fraction(0)
    for fa, fb in zip_longest(a, b):
        if fa is None or fb is None:
            rest = 1 + sum(1 for _ in (b if fa is None else a))
            src_n, out_n = (n, n + rest) if fa is None else (n + rest, n)
            raise EncodingError(
                f"{src_n} frames in the output, as in the source",
                str(out_n),
                "report this as a bug; the output was not kept",
            )
        if n == 0:
            # A container that cannot store negative times (Matroska, with an AAC priming packet
            # before 0) shifts every stream by the same amount: sync holds, and the shift is reported.
            shift_s = fb.pts * fb.time_base - fa.pts * fa.time_base
            if abs(shift_s) <= fb.time_base / 2:
                shift_s = Fraction(0)
        if not _same_time(fa.pts, fa.time_base, fb.pts, fb.time_base, shift_s):
            raise EncodingError(
                f"frame {n} of the output at {float(fa.pts * fa.time_base):.6f} s (pts {fa.pts})",
                f"{float(fb.pts * fb.time_base):.6f} s (pts {fb.pts})",
                "report this as a bug; the output was not kept",
            )
        ya = fa.y.astype(np.int64)
        yb = fb.y.astype(np.int64)
        yb = yb << depth_shift if depth_shift > 0 else yb >> -depth_shift
        se += float(((ya - yb) ** 2).sum())
        n_px += ya.size
        n += 1
    if n != expected_frames:
        raise EncodingError(
            f"{expected_frames} frames in the output", str(n), "report this as a bug; the output was not kept"
        )
    mse = se / max(n_px, 1)
    psnr = math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)
    return VerifyResult(n, psnr, mse == 0, float(shift_s))
