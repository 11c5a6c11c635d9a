"""Reference stills as values: which colour still, over which time range of the film.

What ``reference=`` and ``--reference IMG[@START-END]`` accept is read here, below the options that
hold it; matching a film against the stills is vidcolor/guidance/reference.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidcolor.errors import UsageError
from vidcolor.timecode import parse_timecode

_RANGE = re.compile(r"^(.*)@([0-9:.]*)-([0-9:.]*)$")


@dataclass(frozen=True, eq=False)
class Reference:
    """A colour still to take colours from: a path, or an RGB uint8 array (H, W, 3); it applies
    to frames in [start, end) seconds of the film (None: from the start / to the end)."""

    image: Any  # str | Path | np.ndarray
    start: float | None = None
    end: float | None = None
    name: str = field(default="", compare=False)

    def __eq__(self, other: object) -> bool:
        # An array compares by identity (numpy's == is elementwise and has no truth value).
        if not isinstance(other, Reference):
            return NotImplemented
        same = self.image is other.image if isinstance(self.image, np.ndarray) else self.image == other.image
        return bool(same) and (self.start, self.end) == (other.start, other.end)

    def __hash__(self) -> int:
        key = id(self.image) if isinstance(self.image, np.ndarray) else self.image
        return hash((key, self.start, self.end))

    def label(self) -> str:
        return self.name or (str(self.image) if not isinstance(self.image, np.ndarray) else "reference array")

    def covers(self, t: float) -> bool:
        return (self.start is None or t >= self.start) and (self.end is None or t < self.end)


def _time(text: str, where: str) -> float | None:
    if text == "":
        return None
    try:
        return parse_timecode(text)
    except ValueError:
        raise UsageError(
            "a reference time range like IMG@0:10-0:25",
            repr(where),
            "write START-END in seconds or [HH:]MM:SS",
        ) from None


def parse_reference(text: str) -> Reference:
    """``IMG`` or ``IMG@START-END`` (either end may be left out, times in seconds or [HH:]MM:SS)."""
    m = _RANGE.match(text)
    if m is None:
        return Reference(text)
    start, end = _time(m.group(2), text), _time(m.group(3), text)
    if start is not None and end is not None and end <= start:
        raise UsageError(
            "a reference time range that ends after it starts", repr(text), "swap or fix the times"
        )
    return Reference(m.group(1), start, end)


def as_references(value: object) -> tuple[Reference, ...]:
    """What the API and options accept as ``reference=``: a path (``IMG`` or ``IMG@START-END``), an
    RGB array, a :class:`Reference`, or a list of these -> a tuple of references."""
    if value is None:
        return ()
    if isinstance(value, (str, Path, np.ndarray, Reference)):
        value = [value]
    if not isinstance(value, Iterable):
        raise UsageError(
            "reference stills as paths, RGB arrays or References",
            type(value).__name__,
            "pass e.g. reference=['sky.jpg']",
        )
    out = []
    for v in value:
        if isinstance(v, Reference):
            out.append(v)
        elif isinstance(v, str):
            out.append(parse_reference(v))
        elif isinstance(v, (Path, np.ndarray)):
            out.append(Reference(v))
        else:
            raise UsageError(
                "reference stills as paths, RGB arrays or References",
                type(v).__name__,
                "pass e.g. reference=['sky.jpg']",
            )
    return tuple(out)
