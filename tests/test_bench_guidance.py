"""The bench's guidance knobs: synthetic hints and stills that the guided pipeline accepts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidcolor.benchmark.clip import SHOT_FRAMES, make_film_clip
from vidcolor.benchmark.guidance import guidance_options, synthetic_hints, synthetic_still
from vidcolor.errors import UsageError
from vidcolor.guidance import as_hints, as_references


def test_synthetic_hints_are_n_per_shot_and_parse() -> None:
    entries = synthetic_hints(SHOT_FRAMES * 2 + 5, per_shot=4)
    assert [e["frame"] for e in entries] == [0] * 4 + [SHOT_FRAMES] * 4 + [2 * SHOT_FRAMES] * 4
    hints = as_hints(entries)
    assert len(hints) == 12
    assert all(0.1 <= c <= 0.9 for h in hints for c in h.point)
    chroma = [float(np.hypot(*h.ab)) for h in hints]
    assert chroma == pytest.approx([40.0] * 12, abs=0.01)
    assert synthetic_hints(10, 2) == synthetic_hints(10, 2)  # seeded


def test_synthetic_still_is_colour_and_film_sized() -> None:
    img = synthetic_still(80, 48, seed=1)
    assert img.shape == (48, 80, 3) and img.dtype == np.uint8
    assert float(np.abs(img[..., 0].astype(int) - img[..., 2]).mean()) > 5  # not grey
    assert len(as_references([img])) == 1


def test_guidance_options_replace_counts_and_keep_other_knobs(tmp_path: Path) -> None:
    clip = tmp_path / "c.mp4"
    make_film_clip(clip, 64, 48, 12)
    out = guidance_options(clip, {"hints": "2", "reference": "1", "threads": 1})
    assert out["threads"] == 1
    assert len(out["hints"]) == 2 and out["hints"][0]["frame"] == 0
    assert len(out["reference"]) == 1 and out["reference"][0].shape == (48, 64, 3)
    assert guidance_options(clip, {"threads": 1}) == {"threads": 1}


@pytest.mark.parametrize("raw", ["0", "x", "-3"])
def test_guidance_knob_needs_a_positive_count(tmp_path: Path, raw: str) -> None:
    clip = tmp_path / "c.mp4"
    make_film_clip(clip, 64, 48, 6)
    with pytest.raises(UsageError, match="hints=N"):
        guidance_options(clip, {"hints": raw})
