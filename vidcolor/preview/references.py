"""The page's reference folder: which folder, the stills pinned to or dropped from a shot, and what
the frame shown was given.

The page sends ``reference_dir`` (a folder relative to the preview folder) and lists of
``{"name", "start", "end"}`` (a still of that folder, a shot's range in seconds of the film):
``reference_pin`` become ``--reference DIR/NAME@START-END`` (an explicit reference wins over the
folder's choice in its range), ``reference_drop`` become ``--drop-reference NAME@START-END``.
A frame is coloured from a window of frames whose times count from its first frame, so for a
frame the pins and drops whose range holds its time apply to the whole window.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import cv2
import numpy as np

from vidcolor.errors import UsageError
from vidcolor.formats import STILL_SUFFIXES
from vidcolor.guidance.reference import load_rgb
from vidcolor.options import ColorizeOptions
from vidcolor.preview.security import confine
from vidcolor.references import Reference

THUMB_HEIGHT = 96  # px, the stills listed beside the frame
MAX_PINNED = 200  # entries per list: a page sends a handful


def _entries(data: Any, key: str) -> list[tuple[str, float, float | None]]:
    if data is None:
        return []
    if not isinstance(data, list) or len(data) > MAX_PINNED:
        raise UsageError(
            f"a list of at most {MAX_PINNED} stills for {key}", type(data).__name__, "fix the request"
        )
    out = []
    for e in data:
        name = e.get("name") if isinstance(e, dict) else None
        start, end = (e.get("start", 0.0), e.get("end")) if isinstance(e, dict) else (None, None)
        ok = isinstance(name, str) and name and Path(name).suffix.lower() in STILL_SUFFIXES
        ok = ok and all(x is None or (isinstance(x, (int, float)) and math.isfinite(x)) for x in (start, end))
        if not ok:
            raise UsageError(
                f'{key} entries {{"name": still, "start": s, "end": s}}', repr(e)[:80], "fix them"
            )
        out.append((str(name), float(start or 0.0), None if end is None else float(end)))
    return out


def with_references(opts: ColorizeOptions, settings: Any, root: Path) -> ColorizeOptions:
    """``opts`` with the page's reference folder, pins and drops (film times), or unchanged
    without a folder. UsageError for a folder outside the preview folder or a bad entry."""
    if not isinstance(settings, dict) or not settings.get("reference_dir"):
        return opts
    rel = settings["reference_dir"]
    if not isinstance(rel, str):
        raise UsageError("a folder name for reference_dir", type(rel).__name__, "fix the request")
    folder = confine(root, rel)
    pins = [
        Reference(str(confine(folder, n)), s, e, name=n)
        for n, s, e in _entries(settings.get("reference_pin"), "reference_pin")
    ]
    drops = [Reference(n, s, e) for n, s, e in _entries(settings.get("reference_drop"), "reference_drop")]
    return replace(
        opts, reference_dir=str(folder), reference=(*opts.reference, *pins), reference_drop=tuple(drops)
    )


def for_frame(opts: ColorizeOptions, t: float) -> ColorizeOptions:
    """``opts`` for a window of frames around the frame at ``t`` s: the pins and drops whose range
    holds ``t`` over the whole window, the others left out."""
    if not opts.reference_dir:
        return opts
    pins = tuple(replace(r, start=None, end=None) for r in opts.reference if r.covers(t))
    drops = tuple(replace(r, start=None, end=None) for r in opts.reference_drop if r.covers(t))
    return replace(opts, reference=pins, reference_drop=drops)


def shot_header(report: dict[str, Any], frame: int, pinned: tuple[Reference, ...]) -> str:
    """The ``X-Vidcolor-References`` header: percent-encoded JSON of the stills that coloured the
    shot of window frame ``frame`` (chosen, with scores) and the pinned ones that won over them."""
    shot = next(
        (s for s in report.get("shots", []) if s["first_frame"] <= frame < s["first_frame"] + s["frames"]),
        None,
    )
    body = {
        "folder": report.get("folder"),
        "chosen": shot["stills"] if shot else [],
        "best": shot["best"] if shot else None,
        "pinned": [r.name or str(r.image) for r in pinned],
        "skipped": len(report.get("skipped", [])),
    }
    return quote(json.dumps(body, separators=(",", ":")))


def thumbnail(root: Path, rel: str, height: int = THUMB_HEIGHT) -> bytes:
    """A JPEG ``height`` px tall of the still at ``rel`` (inside the preview folder)."""
    path = confine(root, rel)
    if path.suffix.lower() not in STILL_SUFFIXES:
        raise UsageError("a still (PNG, JPEG, TIFF, BMP or WebP)", rel, "pick a still")
    rgb = load_rgb(Reference(path))
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(small[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise UsageError("a still that can be shown", rel, "pick another still")
    return buf.tobytes()
