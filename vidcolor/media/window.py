"""The section of a film that ``--start`` and ``--duration`` choose, computed one way for every reader
of it: the decoder, the segment planner (in pts) and the writers that copy the other streams beside
the video (in seconds).

``start`` counts from the video stream's own start time, not from 0: a film whose first frame is
at 10 s and ``start`` 2 begins at 12 s. The section is [lo, hi); None: from the start / to the end.
"""

from __future__ import annotations

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
