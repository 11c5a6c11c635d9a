"""Colour hints: read and check a hints file (``--hints FILE.json``) or the API's ``hints=`` list.

A hints file is a JSON list (or an object ``{"hints": [...]}``) of entries such as::

    [
      {"frame": 120, "point": [412, 230], "color": "#b03a2e"},
      {"time": "0:07.5", "point": [0.62, 0.40], "units": "fraction", "ab": [38, 24], "radius": 0.05}
    ]

- when: ``"frame"`` (0-based frame number of the film, counted at its frame rate) or ``"time"``
  (seconds from the start of the film, a number or ``[HH:]MM:SS[.s]``); exactly one of them.
- where: ``"point": [x, y]`` on the stored picture (the decoded pixel grid, before any display
  rotation), origin at the top-left; ``"units": "px"`` (the default) or ``"fraction"`` (x and y
  in 0..1 of the width and height).
- what: ``"color"`` (or ``"colour"``) as hex sRGB ``#rgb`` / ``#rrggbb``, or ``"ab": [a*, b*]`` in
  CIE Lab. Only the chroma is used: the lightness is always the film's own.
- optional ``"radius"``: how far the hint reaches, in the point's units (pixels, or a fraction of
  the short side). Without one, a hint holds firmly over the region of like luma around it and
  leans softly on everything of like luma that no luma edge separates from it, sharing the
  picture out with the other hints (guidance/render.py); with one, both stay within the radius.

A hint holds for its shot: it is tracked onto the following frames until the track is lost or the
shot ends (guidance/track.py). Every problem is a one-line :class:`UsageError` naming the entry.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from vidcolor.color import rgb_to_lab
from vidcolor.errors import UsageError
from vidcolor.timecode import parse_timecode

Units = Literal["px", "fraction"]
_KEYS = {"frame", "time", "point", "units", "color", "colour", "ab", "radius", "note"}
_HEX = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
AB_LIMIT = 128.0  # |a*|, |b*| beyond this is no colour at all


@dataclass(frozen=True)
class Hint:
    """One user hint as written, checked for form (not yet against a film).

    ``entry`` is its 1-based position in ``source`` (a file name, or "hints"), for messages.
    ``point`` is (x, y) in ``units``; ``ab`` is CIE (a*, b*); ``radius`` None means the default.
    """

    entry: int
    source: str
    point: tuple[float, float]
    ab: tuple[float, float]
    frame: int | None = None
    time: float | None = None
    units: Units = "px"
    radius: float | None = None

    @property
    def label(self) -> str:
        return f"entry {self.entry} of {self.source}"


@dataclass(frozen=True)
class PlacedHint:
    """A hint placed on a film: when (seconds from its start) and where (pixels of the stored
    picture, x right, y down), its chroma and its reach in pixels (None: the default)."""

    key: int
    label: str
    time: float
    x: float
    y: float
    ab: tuple[float, float]
    radius: float | None


def _bad(h: str, expected: str, found: object, action: str = "fix that entry") -> UsageError:
    text = found if isinstance(found, str) else json.dumps(found, default=str)
    if len(text) > 60:
        text = text[:57] + "..."
    return UsageError(f"{expected} in {h}", text, action)


def parse_time(value: object, where: str) -> float:
    """A time as seconds (number) or '[HH:]MM:SS[.s]' -> seconds."""
    if isinstance(value, bool):
        raise _bad(where, "'time' as seconds or '[HH:]MM:SS'", repr(value))
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise _bad(where, "a 'time' of 0 seconds or more", f"'time': {value}")
        return float(value)
    if isinstance(value, str):
        try:
            return parse_timecode(value)
        except ValueError:
            raise _bad(where, "'time' as seconds or '[HH:]MM:SS'", f"'time': {value!r}") from None
    raise _bad(where, "'time' as seconds or '[HH:]MM:SS'", f"'time': {value!r}")


def hex_to_ab(text: str) -> tuple[float, float]:
    """'#rrggbb' or '#rgb' (sRGB) -> CIE (a*, b*). Raises ValueError on anything else."""
    m = _HEX.match(text.strip())
    if not m:
        raise ValueError(text)
    digits = m.group(1)
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    rgb = np.array([int(digits[i : i + 2], 16) for i in (0, 2, 4)], np.float32) / 255.0
    lab = rgb_to_lab(rgb)
    return float(lab[1]), float(lab[2])


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def parse_entry(entry: object, index: int, source: str) -> Hint:
    """One entry of a hints list (a JSON object) -> :class:`Hint`; UsageError naming the entry."""
    where = f"entry {index} of {source}"
    if isinstance(entry, Hint):
        return entry
    if not isinstance(entry, Mapping):
        raise _bad(where, 'an object like {"frame": 0, "point": [x, y], "color": "#rrggbb"}', entry)
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise _bad(
            where,
            "keys among " + ", ".join(sorted(_KEYS - {"note"})),
            f"unknown key {unknown[0]!r}",
            "remove or correct that key",
        )
    # When: exactly one of frame and time.
    if ("frame" in entry) == ("time" in entry):
        raise _bad(
            where,
            "exactly one of 'frame' and 'time'",
            "both" if "frame" in entry else "neither",
            "give the frame number or the time",
        )
    frame: int | None = None
    time: float | None = None
    if "frame" in entry:
        f = entry["frame"]
        if isinstance(f, bool) or not isinstance(f, int) or f < 0:
            raise _bad(where, "'frame' as a whole number of 0 or more", f"'frame': {f!r}")
        frame = f
    else:
        time = parse_time(entry["time"], where)
    # Where.
    units = entry.get("units", "px")
    if units not in ("px", "fraction"):
        raise _bad(where, '\'units\' of "px" or "fraction"', f"'units': {units!r}")
    pt = entry.get("point")
    coords = [_number(v) for v in pt] if isinstance(pt, (list, tuple)) else []
    if len(coords) != 2 or any(c is None for c in coords):
        raise _bad(
            where,
            "'point': [x, y] with two numbers",
            f"'point': {pt!r}" if "point" in entry else "no 'point'",
        )
    x, y = float(coords[0]), float(coords[1])  # type: ignore[arg-type]  # user JSON, checked before: float() raises on anything else
    if x < 0 or y < 0 or (units == "fraction" and (x > 1 or y > 1)):
        rng = "0..1" if units == "fraction" else "0 or more pixels"
        raise _bad(
            where, f"a 'point' inside the frame ({rng})", f"'point': {pt!r}", "move the point into the frame"
        )
    # What colour.
    colour_keys = [k for k in ("color", "colour", "ab") if k in entry]
    if len(colour_keys) != 1:
        raise _bad(
            where,
            "exactly one of 'color' (hex sRGB) and 'ab' ([a*, b*])",
            "none" if not colour_keys else " and ".join(colour_keys),
            "give the colour once",
        )
    ck = colour_keys[0]
    if ck == "ab":
        v = entry["ab"]
        ab = [_number(c) for c in v] if isinstance(v, (list, tuple)) else []
        if len(ab) != 2 or any(c is None or abs(c) > AB_LIMIT for c in ab):
            raise _bad(where, f"'ab': [a*, b*] with two numbers within +-{AB_LIMIT:g}", f"'ab': {v!r}")
        a, b = float(ab[0]), float(ab[1])  # type: ignore[arg-type]  # user JSON, checked before: float() raises on anything else
    else:
        v = entry[ck]
        try:
            if not isinstance(v, str):
                raise ValueError(v)
            a, b = hex_to_ab(v)
        except ValueError:
            raise _bad(where, f"'{ck}' as hex sRGB like \"#b03a2e\"", f"'{ck}': {v!r}") from None
    # How far.
    radius: float | None = None
    if "radius" in entry and entry["radius"] is not None:
        r = _number(entry["radius"])
        if r is None or r <= 0 or (units == "fraction" and r > 1):
            lim = "in 0..1 of the short side" if units == "fraction" else "in pixels, above 0"
            raise _bad(where, f"a 'radius' {lim}", f"'radius': {entry['radius']!r}")
        radius = r
    return Hint(index, source, (x, y), (a, b), frame, time, units, radius)


def parse_hints(doc: object, source: str = "hints") -> tuple[Hint, ...]:
    """A decoded hints document (list, or {"hints": list}) -> hints, checked for form."""
    if isinstance(doc, Mapping) and set(doc) == {"hints"}:
        doc = doc["hints"]
    if not isinstance(doc, (list, tuple)):
        raise UsageError(
            f"a JSON list of hints in {source}",
            type(doc).__name__,
            'write [{"frame": 0, "point": [x, y], "color": "#rrggbb"}, ...]',
        )
    return tuple(parse_entry(e, i, source) for i, e in enumerate(doc, 1))


def load_hints(path: str | Path) -> tuple[Hint, ...]:
    """Read a hints file; UsageError for an unreadable file, bad JSON (with its line) or a bad entry."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(
            "a readable UTF-8 hints file", f"{p}: {e.__class__.__name__}", "check the path"
        ) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(
            f"valid JSON in {p.name}", f"{e.msg} at line {e.lineno} column {e.colno}", "fix the file"
        ) from None
    return parse_hints(doc, p.name)


def as_hints(value: object) -> tuple[Hint, ...]:
    """What the API and options accept as ``hints=``: a path to a hints file, a list of entries
    (dicts or :class:`Hint`), or nothing -> a tuple of hints."""
    if value is None:
        return ()
    if isinstance(value, (str, Path)):
        return load_hints(value)
    if isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
        items = list(value)
        if all(isinstance(h, Hint) for h in items):
            return tuple(items)
        return parse_hints(items)
    return parse_hints(value)


def place_hints(
    hints: Sequence[Hint],
    width: int,
    height: int,
    rate: float | None,
    *,
    duration: float | None = None,
    frames: int | None = None,
) -> tuple[PlacedHint, ...]:
    """Check hints against a film of ``width`` x ``height`` pixels, ``rate`` frames/s (None: not
    known), ``duration`` seconds and ``frames`` frames (None: not known), and place them.

    A frame number becomes the time ``frame / rate``. Raises UsageError, naming the entry, for a
    point outside the picture, or a frame or time at or after the end of the film.
    """
    out: list[PlacedHint] = []
    for h in hints:
        x, y = h.point
        if h.units == "fraction":
            x, y = x * width, y * height
            x, y = min(x, width - 1e-3), min(y, height - 1e-3)  # 1.0 is the far edge, still inside
        if x >= width or y >= height:
            raise _bad(
                h.label,
                f"a 'point' inside the {width}x{height} picture",
                f"'point': {list(h.point)}",
                "move the point into the frame",
            )
        if h.frame is not None:
            if frames is not None and h.frame >= frames:
                raise _bad(
                    h.label,
                    f"a 'frame' before the end of the film ({frames} frames)",
                    f"'frame': {h.frame}",
                    "use a frame number inside the film",
                )
            if rate is None or rate <= 0:
                raise _bad(
                    h.label,
                    "a film with a known frame rate for 'frame'",
                    f"'frame': {h.frame}",
                    "give the hint a 'time' instead",
                )
            t = h.frame / rate
            if frames is None and duration is not None and t >= duration:
                raise _bad(
                    h.label,
                    f"a 'frame' before the end of the film ({duration:.3f} s)",
                    f"'frame': {h.frame}",
                    "use a frame number inside the film",
                )
        else:
            assert h.time is not None
            t = h.time
            if duration is not None and t >= duration:
                raise _bad(
                    h.label,
                    f"a 'time' before the end of the film ({duration:.3f} s)",
                    f"'time': {t:g}",
                    "use a time inside the film",
                )
        radius = None
        if h.radius is not None:
            radius = h.radius * min(width, height) if h.units == "fraction" else h.radius
        out.append(PlacedHint(len(out), h.label, t, x, y, h.ab, radius))
    return tuple(out)
