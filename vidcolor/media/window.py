"""The section of a film that ``--start`` and ``--duration`` choose, computed one way for every reader
of it: the decoder, the segment planner (in pts) and the writers that copy the other streams beside
the video (in seconds).

``start`` counts from the video stream's own start time, not from 0: a film whose first frame is
at 10 s and ``start`` 2 begins at 12 s. The section is [lo, hi); None: from the start / to the end.
"""

from __future__ import annotations

import math
from fractions import Fraction


def section_seconds(
    origin: float | None, start: float | None, duration: float | None
) -> tuple[float | None, float | None]:
    """[lo, hi) in seconds for a stream starting at ``origin`` seconds (None: 0)."""
    origin = origin or 0.0
    lo = origin + start if start else None
    if duration is None:
        return lo, None
    return lo, (lo if lo is not None else origin) + duration


def section_pts(
    origin: int | None, time_base: Fraction, start: float | None, duration: float | None
) -> tuple[int | None, int | None]:
    """[lo, hi) in pts units of ``time_base`` for a stream starting at pts ``origin`` (None: 0);
    start and duration are rounded to the nearest tick."""
    origin = origin or 0
    lo = origin + round(Fraction(start) / time_base) if start else None
    if duration is None:
        return lo, None
    return lo, (lo if lo is not None else origin) + round(Fraction(duration) / time_base)


def start_at_pts(pts: int, origin: int | None, time_base: Fraction) -> float:
    """The ``start`` (seconds) whose section begins exactly at ``pts`` (the inverse of
    :func:`section_pts`): a quarter tick early, so that its rounding to the nearest tick lands on
    ``pts`` itself whatever the float's own rounding."""
    return float((pts - (origin or 0) - Fraction(1, 4)) * time_base)


def section_length(length: float, start: float | None, duration: float | None) -> float:
    """Seconds of a film ``length`` seconds long that the section holds."""
    if start is not None:
        length = max(0.0, length - start)
    return length if duration is None else min(length, duration)


def section_frames(
    total: int | None, rate: float | None, start: float | None, duration: float | None
) -> int | None:
    """Frames of a film of ``total`` frames at ``rate`` frames/s that the section holds: exact at a
    constant rate, an estimate otherwise (for progress bars). None where it cannot be told."""
    if start is None and duration is None:
        return total
    if not rate:
        return None
    # The 1e-6 keeps a start or duration of a whole number of frames from rounding one frame off.
    first = math.floor((start or 0.0) * rate + 1e-6)
    left = None if total is None else max(0, total - first)
    if duration is None:
        return left
    wanted = math.ceil(duration * rate - 1e-6)
    return wanted if left is None else min(wanted, left)
