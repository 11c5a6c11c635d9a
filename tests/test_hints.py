"""Hints: the file format and its errors, placing on a film, tracking, and how a hint is rendered."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidcolor.color import rgb_to_lab
from vidcolor.errors import UsageError
from vidcolor.frames import LBatch
from vidcolor.guidance.guide import Guide
from vidcolor.guidance.region import grow_region, guide_l
from vidcolor.guidance.render import ActiveHint, hint_planes, pull, spread
from vidcolor.guidance.track import PointTracker
from vidcolor.hints import (
    Hint,
    PlacedHint,
    as_hints,
    hex_to_ab,
    load_hints,
    parse_hints,
    place_hints,
)

# ------------------------------------------------------------------------------ file format


def test_parse_every_form() -> None:
    hints = parse_hints(
        [
            {"frame": 3, "point": [10, 20], "color": "#ff0000"},
            {"time": "0:01.5", "point": [0.5, 0.25], "units": "fraction", "ab": [20, -30], "radius": 0.1},
            {"time": 2, "point": [1, 2], "colour": "#0f0", "radius": 12, "note": "grass"},
        ],
        "h.json",
    )
    a, b, c = hints
    assert (a.frame, a.time, a.point, a.units, a.radius) == (3, None, (10.0, 20.0), "px", None)
    assert a.ab == pytest.approx(tuple(rgb_to_lab(np.array([1.0, 0, 0], np.float32))[1:]), abs=1e-4)
    assert (b.frame, b.time, b.units, b.ab, b.radius) == (None, 1.5, "fraction", (20.0, -30.0), 0.1)
    assert c.ab == pytest.approx(hex_to_ab("#00ff00"))
    assert [h.entry for h in hints] == [1, 2, 3] and a.label == "entry 1 of h.json"
    assert parse_hints({"hints": [{"frame": 0, "point": [0, 0], "ab": [0, 0]}]})[0].frame == 0


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"point": [1, 2], "color": "#fff"}, ["'frame' and 'time'", "neither"]),
        ({"frame": 1, "time": 2, "point": [1, 2], "color": "#fff"}, ["'frame' and 'time'", "both"]),
        ({"frame": -1, "point": [1, 2], "color": "#fff"}, ["'frame'", "-1"]),
        ({"frame": 1.5, "point": [1, 2], "color": "#fff"}, ["'frame'", "1.5"]),
        ({"time": "1:xx", "point": [1, 2], "color": "#fff"}, ["'time'", "1:xx"]),
        ({"frame": 1, "point": [1], "color": "#fff"}, ["'point'"]),
        ({"frame": 1, "color": "#fff"}, ["'point'", "no 'point'"]),
        ({"frame": 1, "point": [1.5, 0.5], "units": "fraction", "color": "#fff"}, ["inside the frame"]),
        ({"frame": 1, "point": [1, 2], "units": "cm", "color": "#fff"}, ["'units'"]),
        ({"frame": 1, "point": [1, 2], "color": "blue"}, ["hex sRGB", "'blue'"]),
        ({"frame": 1, "point": [1, 2], "color": "#12345"}, ["hex sRGB"]),
        ({"frame": 1, "point": [1, 2]}, ["'color'", "none"]),
        ({"frame": 1, "point": [1, 2], "color": "#fff", "ab": [1, 2]}, ["exactly one of 'color'"]),
        ({"frame": 1, "point": [1, 2], "ab": [500, 2]}, ["'ab'"]),
        ({"frame": 1, "point": [1, 2], "ab": [1, 2], "radius": -3}, ["'radius'"]),
        ({"frame": 1, "point": [1, 2], "ab": [1, 2], "colr": 1}, ["unknown key 'colr'"]),
        ("frame 1", ["an object"]),
    ],
)
def test_malformed_entry_is_one_line_naming_it(entry: object, words: list[str]) -> None:
    ok = {"frame": 0, "point": [1, 1], "ab": [0, 0]}
    with pytest.raises(UsageError) as e:
        parse_hints([ok, ok, entry], "hints.json")
    msg = str(e.value)
    assert "entry 3 of hints.json" in msg and "\n" not in msg
    for w in words:
        assert w in msg


def test_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[\n  {"frame": 1, "point": [1, 2], "color": "#fff"},\n  {"frame": 2,, }\n]\n')
    with pytest.raises(UsageError, match="line 3"):
        load_hints(bad)
    with pytest.raises(UsageError, match="readable"):
        load_hints(tmp_path / "missing.json")
    notlist = tmp_path / "obj.json"
    notlist.write_text(json.dumps({"frame": 1}))
    with pytest.raises(UsageError, match="JSON list"):
        load_hints(notlist)
    good = tmp_path / "good.json"
    good.write_text(json.dumps([{"frame": 1, "point": [1, 2], "color": "#102030"}]))
    assert as_hints(good) == as_hints(str(good)) == load_hints(good)
    assert as_hints(None) == () and as_hints([]) == ()


# ------------------------------------------------------------------------------ placing


def test_place_checks_against_the_film() -> None:
    ok = parse_hints(
        [
            {"time": 1.0, "point": [0.5, 0.5], "units": "fraction", "ab": [1, 2], "radius": 0.1},
            {"frame": 10, "point": [63, 47], "ab": [1, 2]},
        ]
    )
    a, b = place_hints(ok, 64, 48, 25.0, duration=2.0, frames=50)
    assert (a.time, a.x, a.y, a.radius) == (1.0, 32.0, 24.0, pytest.approx(4.8))
    assert (b.time, b.x, b.y) == (0.4, 63.0, 47.0)
    cases = [
        ({"frame": 1, "point": [64, 10], "ab": [1, 2]}, "inside the 64x48 picture"),
        ({"frame": 50, "point": [1, 1], "ab": [1, 2]}, "before the end of the film (50 frames)"),
        ({"time": 2.0, "point": [1, 1], "ab": [1, 2]}, "before the end of the film (2.000 s)"),
    ]
    for entry, words in cases:
        with pytest.raises(UsageError, match=r"entry 1 of hints") as e:
            place_hints(parse_hints([entry]), 64, 48, 25.0, duration=2.0, frames=50)
        assert words in str(e.value)
    # Frame count unknown: the duration still bounds a frame number.
    with pytest.raises(UsageError, match="before the end"):
        place_hints(parse_hints([{"frame": 60, "point": [1, 1], "ab": [1, 2]}]), 64, 48, 25.0, duration=2.0)


# ------------------------------------------------------------------------------ tracking


def _textured(seed: int, h: int, w: int, mean: float, amp: float, sigma: float = 1.5) -> np.ndarray:
    n = cv2.GaussianBlur(np.random.default_rng(seed).normal(0, 1, (h, w)).astype(np.float32), (0, 0), sigma)
    return mean + amp * n / n.std()


def _scene(i: int, h: int = 96, w: int = 128) -> tuple[np.ndarray, tuple[int, int]]:
    """L (h, w) of frame i: a textured bright square moving 2 px right and 1 px down per frame
    over a darker textured background; returns L and the square's top-left corner."""
    L = _textured(1, h, w, 30, 8)
    x0, y0 = 10 + 2 * i, 20 + i
    L[y0 : y0 + 24, x0 : x0 + 24] = _textured(2, 24, 24, 65, 6)
    return np.clip(L, 0, 100).astype(np.float32), (x0, y0)


def test_tracker_follows_a_moving_object_and_stops_at_a_cut() -> None:
    tr = PointTracker()
    for i in range(12):
        L, (x0, y0) = _scene(i)
        G = guide_l(L)
        assert tr.next_frame(L, G, cut=False) == []
        if i == 0:
            tr.add(7, x0 + 12, y0 + 12, reach=30, tol=14, G=G)
        t = tr.tracks[7]
        assert abs(t.x - (x0 + 12)) < 1.0 and abs(t.y - (y0 + 12)) < 1.0, (i, t)
    L, _ = _scene(12)
    assert tr.next_frame(L, guide_l(L), cut=True) == [7]
    assert not tr.tracks


def test_tracker_keeps_a_flat_region_and_loses_a_point_that_changes() -> None:
    flat = np.full((64, 64), 50, np.float32)
    tr = PointTracker()
    tr.next_frame(flat, guide_l(flat), False)
    tr.add(1, 20, 20, reach=10, tol=10, G=guide_l(flat))
    tr.next_frame(flat, guide_l(flat), False)
    assert (tr.tracks[1].x, tr.tracks[1].y) == (20, 20)
    dark = np.full((64, 64), 10, np.float32)  # the luma under the point jumps: not the same object
    assert tr.next_frame(dark, guide_l(dark), False) == [1]


# ------------------------------------------------------------------------------ rendering


def test_hint_planes_patch() -> None:
    p = hint_planes([ActiveHint(10, 5, (30.0, -20.0), reach=8)], (32, 64), patch=5)
    assert p.shape == (3, 32, 64) and p.dtype == np.float32
    assert p[2].sum() == 25 and p[2, 3:8, 8:13].all()
    assert (p[0][p[2] > 0] == 30).all() and (p[1][p[2] > 0] == -20).all()
    assert not p[:, p[2] == 0].any()
    assert not hint_planes([ActiveHint(10, 5, (30.0, -20.0), reach=8)], (32, 64), patch=0).any()


def test_region_stays_inside_similar_luma() -> None:
    L = np.full((60, 80), 20, np.float32)
    L[10:40, 10:50] = 70
    reg = grow_region(guide_l(L), 30, 25, reach=100, tol=10)
    inside = np.zeros_like(L, bool)
    inside[reg.y0 : reg.y1, reg.x0 : reg.x1] = reg.mask
    assert inside[12:38, 12:48].all() and not inside[45:, :].any() and not inside[:, 55:].any()


def test_pull_colours_the_region_and_leaves_the_rest() -> None:
    L = np.full((60, 80), 20, np.float32)
    L[10:40, 10:50] = 70
    G = guide_l(L)
    ab = np.zeros((2, 60, 80), np.float32)
    ab[0] = 5.0
    hint = ActiveHint(30, 25, (40.0, 30.0), reach=40)
    out = pull(ab, G, [hint])
    assert out is not ab and (ab[0] == 5).all()  # the input is not written to
    assert np.allclose(out[:, 14:36, 18:42], np.array([40.0, 30.0])[:, None, None], atol=0.5)
    assert np.array_equal(out[:, 45:, :], ab[:, 45:, :])  # other luma, not the region
    assert pull(ab, G, []) is ab and spread(ab, G, [], 60) is ab


def test_pull_can_keep_the_variation_it_finds() -> None:
    """With ``keep`` 1 (where a reference coloured the frame) the region takes the hint's colour
    at the point and keeps the texture of colour around it; with 0 it is flat."""
    L = np.full((60, 80), 20, np.float32)
    L[10:40, 10:50] = 70
    G = guide_l(L)
    ab = np.zeros((2, 60, 80), np.float32)
    ab[0] = np.linspace(-6, 6, 80, dtype=np.float32)[None, :]  # a ramp of a* across the picture
    hint = ActiveHint(30, 25, (40.0, 30.0), reach=40)
    flat, kept = pull(ab, G, [hint]), pull(ab, G, [hint], keep=1.0)
    inner = (slice(None), slice(14, 36), slice(18, 42))
    assert np.ptp(flat[inner][0]) < 0.5
    assert np.allclose(kept[inner][0] - ab[inner][0], kept[0, 25, 30] - ab[0, 25, 30], atol=0.5)
    assert abs(kept[0, 25, 30] - 40) < 0.5 and abs(kept[1, 25, 30] - 30) < 0.5


def test_spread_leans_toward_hints_by_luma_and_distance() -> None:
    L = np.full((64, 96), 30, np.float32)
    L[:, 48:] = 80  # two halves of different luma
    G = guide_l(L)
    ab = np.zeros((2, 64, 96), np.float32)
    out = spread(ab, G, [ActiveHint(10, 30, (50.0, 0.0), reach=10)], short=64)
    assert out[0, :, :40].mean() > 30  # the hint's half leans toward it ...
    assert out[0, :, 56:].mean() < 0.1 * out[0, :, :40].mean()  # ... the other half barely


def test_hex_to_ab_of_grey_is_neutral() -> None:
    a, b = hex_to_ab("#808080")
    assert abs(a) < 1e-3 and abs(b) < 1e-3
    with pytest.raises(ValueError):
        hex_to_ab("#xyz")


def test_hint_is_frozen_and_hashable() -> None:
    h = Hint(1, "x", (1.0, 2.0), (3.0, 4.0), frame=0)
    assert hash(h) == hash(Hint(1, "x", (1.0, 2.0), (3.0, 4.0), frame=0))


def test_ended_hints_stay_as_the_shots_palette_until_a_cut() -> None:
    """A hint whose point left the picture still colours like-luma parts of its shot, weakly."""

    class Zero:  # a model step that returns no colour, so what comes out is the guidance's
        model = None

        def __call__(self, batch: LBatch, hints: np.ndarray | None = None) -> np.ndarray:
            return np.zeros((batch.L.shape[0], 2, *batch.L.shape[2:]), np.float32)

    def frame(i: int) -> LBatch:
        """Block A (textured, L ~60) slides right by 8 px a frame and leaves; block B, alike, stays."""
        L = _textured(4, 64, 96, 25, 4)
        x0 = 8 + 8 * i
        if x0 < 96:
            L[8:28, x0 : x0 + 20] = _textured(5, 20, 20, 60, 5)[:, : max(0, min(20, 96 - x0))]
        L[44:60, 70:90] = _textured(6, 16, 20, 60, 5)
        return LBatch((i,), L[None, None].astype(np.float32), (64, 96))

    hint = PlacedHint(0, "entry 1 of t", 0.0, 18.0, 18.0, (40.0, 10.0), None)
    g = Guide([hint], (96, 64), 1.0)
    # reason for the type: ignore below: a stand-in model step, not a ModelStep
    first = g(Zero(), frame(0), [0.0])  # type: ignore[arg-type]
    assert abs(first[0, 0, 18, 18] - 40) < 1 and first[0, 0, 52, 80] < 5  # B is out of the hint's reach
    for i in range(1, 13):
        # reason for the type: ignore below: a stand-in model step, not a ModelStep
        out = g(Zero(), frame(i), [float(i)])  # type: ignore[arg-type]
    assert not g.planning.tracker.tracks and g.planning.palette  # A left the picture: its track ended ...
    assert out[0, 0, 52, 80] > 10  # ... and its colour still leans on the like-luma block B
    assert abs(out[0, 0, 35, 30]) < 0.25 * out[0, 0, 52, 80]  # much less on the darker background
    cut = np.full((1, 1, 64, 96), 90, np.float32)
    cut[0, 0, ::7, ::5] = 5  # another picture altogether: a cut
    # reason for the type: ignore below: a stand-in model step, not a ModelStep
    g(Zero(), LBatch((13,), cut, (64, 96)), [13.0])  # type: ignore[arg-type]
    assert g.planning.palette == []


class _Described:
    """A stand-in vidcolor model in two halves whose encoder tells three kinds of surface apart
    (bright and textured, bright and flat, dark) and whose colour is nil, so what comes out is the
    guidance's alone."""

    config = None  # no hint input: the guidance works after the model

    def encode(self, L: torch.Tensor) -> dict[int, torch.Tensor]:
        x = L.float()
        mean = F.avg_pool2d(x, 5, 1, 2, count_include_pad=False)
        std = (F.avg_pool2d(x * x, 5, 1, 2, count_include_pad=False) - mean**2).clamp(min=0).sqrt()
        textured, bright = std > 2, mean > 45
        kinds = torch.cat([textured & bright, ~textured & bright, ~bright], 1).float()
        return {s: F.avg_pool2d(kinds, s) for s in (8, 16, 32)}

    def decode(self, feats: dict[int, torch.Tensor], hints: torch.Tensor | None) -> tuple[None, None]:
        return None, None

    def ab_from_heads(self, logits: None, reg: None, size: tuple[int, int]) -> torch.Tensor:
        return torch.zeros((1, 2, *size))


@pytest.mark.parametrize("by", ["palette", "memory"])
def test_an_ended_hint_comes_back_where_its_surface_is_seen_again(
    by: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two hints on two surfaces of the same luma (one textured, one flat) end when both leave
    the picture; when each comes back elsewhere, it takes its own hint's colour: through the
    shot's palette, because each hint remembers how the encoder saw its place, and through the
    shot's memory of its hinted frame, matched like a reference. By luma alone they would mix."""
    h, w = 112, 176
    red, blue = (40.0, 20.0), (-10.0, -40.0)

    def frame(i: int) -> LBatch:
        L = _textured(4, h, w, 25, 4)
        if i == 0:
            L[16:48, 16:48] = _textured(5, 32, 32, 60, 8)  # A: textured
            L[16:48, 80:112] = 60.0  # C: flat, the same mean luma
        elif i >= 2:
            L[64:96, 112:144] = _textured(7, 32, 32, 60, 8)  # A seen again, elsewhere
            L[64:96, 16:48] = 60.0  # C seen again, elsewhere
        return LBatch((i,), L[None, None].astype(np.float32), (h, w))

    hints = [
        PlacedHint(0, "entry 1 of t", 0.0, 24.0, 24.0, red, None),
        PlacedHint(1, "entry 2 of t", 0.0, 88.0, 24.0, blue, None),
    ]

    class Step:  # the model step: the model in one call, or in two halves for the guidance
        model, device, dtype = _Described(), torch.device("cpu"), torch.float32
        runs = model  # what runs the halves (ModelStep.runs)

        def __call__(self, batch: LBatch, hints: np.ndarray | None = None) -> np.ndarray:
            return np.zeros((batch.L.shape[0], 2, *batch.L.shape[2:]), np.float32)

    step = Step()

    def run(palette: bool, memory: bool) -> np.ndarray:
        monkeypatch.setattr("vidcolor.guidance.guide.MATCH_FEATURES", palette)
        monkeypatch.setattr("vidcolor.guidance.guide.MEMORY", memory)
        g = Guide(hints, (w, h), 1.0)
        # reason for the type: ignore below: the detector's decision replaced: one shot throughout
        g.planning.detector.is_cut = lambda L_small: False  # type: ignore[method-assign]
        for i in range(3):
            # reason for the type: ignore below: a stand-in model step, not a ModelStep
            out = g(step, frame(i), [float(i)])  # type: ignore[arg-type]
        assert not g.planning.tracker.tracks and len(g.planning.palette) == 2  # both tracks ended on frame 1
        assert len(g.finishing.memory.frames) == int(memory)
        # reason for the type: ignore below: the detector's decision replaced for the test
        g.planning.detector.is_cut = lambda L_small: True  # type: ignore[method-assign]
        # reason for the type: ignore below: a stand-in model step, not a ModelStep
        g(step, frame(3), [3.0])  # type: ignore[arg-type]
        assert not g.planning.palette and not g.finishing.memory.frames  # a cut forgets the shot
        return out[0, :, 80, [128, 32]]  # (A, C) x (a, b) at the centres of the blocks seen again

    a_again, c_again = run(by == "palette", by == "memory")
    assert np.allclose(a_again, red, atol=6) and np.allclose(c_again, blue, atol=6)
    a_luma, _ = run(False, False)
    assert np.linalg.norm(a_luma - red) > 20  # by luma alone, A takes mostly C's colour
