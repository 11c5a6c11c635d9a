"""media/window.py: the --start/--duration section, one way for every reader of it."""

from __future__ import annotations

from fractions import Fraction

import pytest

from vidcolor.media.window import section_frames, section_length, section_pts, start_at_pts


@pytest.mark.parametrize(
    "tb", [Fraction(1, 90000), Fraction(1, 1000), Fraction(1001, 30000), Fraction(1, 12800)]
)
@pytest.mark.parametrize("origin", [None, 0, 900, 126_000])
def test_start_at_pts_lands_on_that_pts(tb: Fraction, origin: int | None) -> None:
    for pts in (1, 7, 1001, 123_457):
        target = (origin or 0) + pts
        lo, _ = section_pts(origin, tb, start_at_pts(target, origin, tb), None)
        assert lo == target


def test_section_length() -> None:
    assert section_length(10.0, None, None) == 10.0
    assert section_length(10.0, 4.0, None) == 6.0
    assert section_length(10.0, 4.0, 3.0) == 3.0
    assert section_length(10.0, 12.0, 3.0) == 0.0  # a start past the end holds nothing
    assert section_length(10.0, None, 30.0) == 10.0


def test_section_frames() -> None:
    assert section_frames(100, 25.0, None, None) == 100
    assert section_frames(None, 25.0, None, None) is None
    assert section_frames(100, 25.0, 1.0, None) == 75  # a whole number of frames: none lost to rounding
    assert section_frames(100, 25.0, 1.0, 2.0) == 50
    assert section_frames(100, 25.0, 3.5, 2.0) == 13  # cut by the end of the film: 100 - 87
    assert section_frames(None, 25.0, 1.0, 2.0) == 50  # no count: the section's own length
    assert section_frames(100, 30000 / 1001, 0.0, 1.0) == 30
    assert section_frames(100, 25.0, 10.0, None) == 0
    assert section_frames(100, None, 1.0, None) is None
