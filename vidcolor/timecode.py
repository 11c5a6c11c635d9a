"""Times as people write them: seconds or ``[HH:]MM:SS[.s]``, one parser for every place that reads one
(``--start``/``--duration``, a hint's ``"time"``, a reference's ``IMG@START-END``)."""

from __future__ import annotations

import math


def parse_timecode(text: str) -> float:
    """'90', '90.5', '1:30' or '0:01:30.5' (surrounding spaces allowed) -> seconds, a float >= 0.

    Raises ValueError for anything else (empty, more than three parts, negative or non-finite
    parts); each caller turns that into its own one-line error naming what it was reading.
    """
    try:
        parts = [float(p) for p in text.strip().split(":")]
    except ValueError:
        raise ValueError(f"not a time: {text!r}") from None
    if not 1 <= len(parts) <= 3 or any(p < 0 or not math.isfinite(p) for p in parts):
        raise ValueError(f"not a time: {text!r}")
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + p
    return seconds
