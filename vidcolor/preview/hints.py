"""Colour hints placed in the page, in the form of the hints file ``vidcolor colorize --hints`` reads.

The page keeps each hint as a hints-file entry::

    {"time": 1.25, "point": [0.42, 0.61], "units": "fraction", "colour": "#b03a2e", "radius": 0.05}

``point`` is a fraction of the width and height of the stored picture (the page turns its clicks
on the upright picture back through the display rotation); ``radius``, a fraction of the short
side, is left out for the default reach (the region of similar luma around the point).

The preview passes the hints on the frames it colorizes to ``colorize_frames``, and renders pass
them all to the film pipeline (vidcolor/guidance carries them through their shots).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vidcolor.durable import write_atomic
from vidcolor.errors import UsageError
from vidcolor.options import ColorizeOptions

MAX_HINTS = 1024  # per request: far more than anyone places by hand
HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
HINTS_SUFFIX = ".hints.json"


#: What the page says under its hint tool.
HINTS_NOTE = (
    "Click the colour picture to place a hint on this frame. The preview applies the hints "
    "of the frames it colorizes; a render carries each hint through its shot."
)


def _bad(i: int, expected: str, found: object) -> UsageError:
    return UsageError(f"{expected} in hint {i}", repr(found)[:60], "place the hint again")


def check_hints(data: Any) -> list[dict[str, Any]]:
    """The page's hints, checked and normalised (a list of entries in the form above)."""
    if data is None:
        return []
    if not isinstance(data, list) or len(data) > MAX_HINTS:
        raise UsageError(f"a list of at most {MAX_HINTS} hints", type(data).__name__, "send [] for none")
    out = []
    for i, h in enumerate(data, 1):
        if not isinstance(h, dict):
            raise _bad(i, "an object {time, point, colour}", h)
        t, point, colour, radius = h.get("time"), h.get("point"), h.get("colour"), h.get("radius")
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
            raise _bad(i, "a time in seconds", t)
        if (
            not isinstance(point, list)
            or len(point) != 2
            or not all(isinstance(p, (int, float)) and not isinstance(p, bool) and 0 <= p <= 1 for p in point)
        ):
            raise _bad(i, "a point [x, y] in fractions 0..1 of the picture", point)
        if not isinstance(colour, str) or not HEX_COLOUR.match(colour):
            raise _bad(i, "a colour #rrggbb", colour)
        if h.get("units", "fraction") != "fraction":
            raise _bad(i, 'units "fraction"', h.get("units"))
        entry: dict[str, Any] = {
            "time": round(float(t), 6),
            "point": [float(point[0]), float(point[1])],
            "units": "fraction",
            "colour": colour.lower(),
        }
        if radius is not None:
            if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not 0 < radius <= 1:
                raise _bad(i, "a radius in 0..1 of the short side", radius)
            entry["radius"] = float(radius)
        out.append(entry)
    return out


def for_window(
    opts: ColorizeOptions, hints: list[dict[str, Any]], times: Sequence[float], rate: float
) -> ColorizeOptions:
    """``opts`` with the hints that fall on the frames of a preview window (``times``: their times
    in seconds), re-timed so that the window's first frame is at 0, as ``colorize_frames`` counts."""
    if not hints or not times:
        return opts
    half = 0.5 / rate
    first, last = times[0], times[-1]
    near = [
        h | {"time": max(0.0, h["time"] - first)} for h in hints if first - half <= h["time"] <= last + half
    ]
    return dataclasses.replace(opts, hints=tuple(near)) if near else opts


def with_hints(opts: ColorizeOptions, hints: list[dict[str, Any]]) -> ColorizeOptions:
    """``opts`` carrying all of ``hints`` (for a render)."""
    return dataclasses.replace(opts, hints=tuple(hints)) if hints else opts


def hints_path(source: Path) -> Path:
    """Where the hints of ``source`` are saved: beside it, NAME.hints.json."""
    return source.with_name(source.stem + HINTS_SUFFIX)


def save_hints(path: Path, hints: list[dict[str, Any]]) -> None:
    """Write a hints file (replacing it atomically: a crash never leaves half a file)."""
    write_atomic(path, json.dumps(hints, indent=2) + "\n")
