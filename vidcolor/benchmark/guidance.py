"""What guidance costs: knobs ``hints=N`` and ``reference=N`` as stand-ins a bench can time.

``vidcolor bench --knob hints=10`` reruns the end-to-end figure with N colour hints placed at the
first frame of every shot (seeded points, colours spread round the hue circle), so each hint is
tracked through its shot as a user's would be; ``--knob reference=1`` gives the run N colour
stills (seeded, film-sized, smooth colour fields with texture) to match against. The cost of
guidance does not depend on the colours chosen, only on how many hints and stills there are.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from vidcolor.errors import UsageError
from vidcolor.media.probe import probe

from .clip import SHOT_FRAMES

GUIDANCE_KNOBS = ("hints", "reference")


def _count(knob: dict[str, Any], key: str) -> int:
    raw = knob[key]
    try:
        n = int(raw)
    except (TypeError, ValueError):
        n = -1
    if n < 1:
        raise UsageError(f"--knob {key}=N with N a whole number >= 1", repr(raw), f"use e.g. {key}=10")
    return n


def synthetic_hints(frames: int, per_shot: int, seed: int = 0) -> list[dict[str, Any]]:
    """``per_shot`` hint entries at frame 0, SHOT_FRAMES, 2*SHOT_FRAMES ... (< ``frames``).

    Points are fractions of the frame in [0.1, 0.9]; colours are a*b* of chroma 40 at evenly
    spaced hues; the radius is the default (None). Fractions fit a film of any size.
    """
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    for start in range(0, max(frames, 1), SHOT_FRAMES):
        for i in range(per_shot):
            hue = 2.0 * np.pi * i / per_shot
            x, y = rng.uniform(0.1, 0.9, size=2)
            out.append(
                {
                    "frame": start,
                    "point": [round(float(x), 4), round(float(y), 4)],
                    "units": "fraction",
                    "ab": [round(40.0 * float(np.cos(hue)), 2), round(40.0 * float(np.sin(hue)), 2)],
                }
            )
    return out


def synthetic_still(width: int, height: int, seed: int) -> np.ndarray:
    """A colour still (height, width, 3) uint8: a smooth colour field with fine texture."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(40, 215, size=(6, 8, 3)).astype(np.float32)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    texture = rng.normal(0.0, 12.0, size=(height, width, 1)).astype(np.float32)
    return np.clip(field + texture, 0, 255).astype(np.uint8)


def guidance_options(path: Any, knob: dict[str, Any]) -> dict[str, Any]:
    """Turn ``hints=N`` / ``reference=N`` in a knob into the hints and stills the options take;
    other entries pass through unchanged."""
    if not any(k in knob for k in GUIDANCE_KNOBS):
        return dict(knob)
    info = probe(path)
    v = info.video
    out = dict(knob)
    if "hints" in knob:
        frames = v.frames or SHOT_FRAMES
        out["hints"] = tuple(synthetic_hints(frames, _count(knob, "hints")))
    if "reference" in knob:
        out["reference"] = tuple(
            synthetic_still(v.width, v.height, seed=i) for i in range(_count(knob, "reference"))
        )
    return out
