"""Stage [4]: scene-cut detection and temporal smoothing of ab (DESIGN.md contract 5)."""

from __future__ import annotations

import numpy as np
import pytest

from vidcolor.stages.scene_cut import SceneCutDetector, small_luma
from vidcolor.stages.smooth import TemporalSmoother

H, W = 48, 64


def natural(seed: int, h: int = H, w: int = W, pad: int = 64) -> np.ndarray:
    """A picture with the 1/f amplitude spectrum of natural images, L float32 in [0, 100]."""
    rng = np.random.default_rng(seed)
    hh, ww = h + pad, w + pad
    f = np.sqrt(np.fft.fftfreq(hh)[:, None] ** 2 + np.fft.fftfreq(ww)[None] ** 2)
    f[0, 0] = 1.0
    spec = (rng.normal(size=(hh, ww)) + 1j * rng.normal(size=(hh, ww))) / f
    spec[0, 0] = 0.0
    n = np.real(np.fft.ifft2(spec))
    n = (n - n.mean()) / n.std()
    return np.clip(50.0 + 18.0 * n, 0.0, 100.0).astype(np.float32)


def grain(rng: np.random.Generator, shape: tuple[int, ...] = (H, W), s: float = 1.5) -> np.ndarray:
    return rng.normal(scale=s, size=shape).astype(np.float32)


def cuts_of(frames: list[np.ndarray]) -> list[int]:
    det = SceneCutDetector()
    return [i for i, f in enumerate(frames) if det.is_cut(f)]


# ------------------------------------------------------------------------------ scene cuts


def test_cuts_found_at_shot_changes() -> None:
    rng = np.random.default_rng(0)
    shots = [natural(s)[:H, :W] for s in (1, 2, 3)]
    frames = [shot + grain(rng) for shot in shots for _ in range(8)]
    assert cuts_of(frames) == [8, 16]


def test_cut_between_alike_layouts_with_other_tones() -> None:
    rng = np.random.default_rng(1)
    a = natural(4)[:H, :W]
    night = np.clip(100.0 - 0.5 * a, 0, 100)
    assert cuts_of([a + grain(rng) for _ in range(5)] + [night + grain(rng) for _ in range(5)]) == [5]


@pytest.mark.parametrize("step", [1, 2])
def test_slow_pan_is_not_a_cut(step: int) -> None:
    rng = np.random.default_rng(2)
    scene = natural(5)
    assert cuts_of([scene[:H, step * i : step * i + W] + grain(rng) for i in range(30)]) == []


def test_fades_are_not_cuts() -> None:
    rng = np.random.default_rng(3)
    a = natural(6)[:H, :W]
    fade_out = [a * (1 - i / 20) + grain(rng) for i in range(21)]
    fade_in = [a * (i / 20) + grain(rng) for i in range(21)]
    assert cuts_of(fade_out + fade_in) == []


def test_cross_dissolve_cuts_at_most_once() -> None:
    rng = np.random.default_rng(4)
    a, b = natural(7)[:H, :W], natural(8)[:H, :W]
    for n in (4, 12):
        frames = [a + grain(rng)] * 3 + [a * (1 - i / n) + b * (i / n) + grain(rng) for i in range(n + 1)]
        assert len(cuts_of(frames)) <= 1


def test_brightening_flash_is_not_a_cut() -> None:
    rng = np.random.default_rng(5)
    a = natural(9)[:H, :W]
    frames = [a + grain(rng) for _ in range(10)]
    frames[5] = np.clip(a * 1.3 + 10.0, 0, 100)
    assert cuts_of(frames) == []


@pytest.mark.parametrize("length", [1, 2])
def test_washed_out_flash_cuts_at_most_once(length: int) -> None:
    rng = np.random.default_rng(6)
    a = natural(10)[:H, :W]
    frames = [a + grain(rng) for _ in range(12)]
    for i in range(5, 5 + length):
        frames[i] = np.full((H, W), 97.0, np.float32) + grain(rng)
    assert cuts_of(frames) in ([], [5])


def test_detector_reset_and_size_change() -> None:
    a = natural(11)[:H, :W]
    det = SceneCutDetector()
    assert det.is_cut(a) is False  # the first frame starts the film, it is not a cut
    assert det.is_cut(natural(12)[:H, :W]) is True
    det.reset()
    assert det.is_cut(natural(13)[:H, :W]) is False
    assert det.is_cut(natural(13)[:32, :40]) is True  # a new size cannot be compared: a cut


def test_small_luma_shrinks_to_width() -> None:
    small = small_luma(np.zeros((480, 640), np.float32))
    assert small.shape == (48, 64) and small.dtype == np.float32


# ------------------------------------------------------------------------------ smoother


def run(
    smoother: TemporalSmoother, abs_: list[np.ndarray], Ls: list[np.ndarray]
) -> list[tuple[int, np.ndarray]]:
    out: list[tuple[int, np.ndarray]] = []
    for i, (ab, L) in enumerate(zip(abs_, Ls, strict=True)):
        out.extend(smoother.push(i, ab, L))
    out.extend(smoother.flush())
    return out


def test_strength_zero_is_a_bit_identical_passthrough() -> None:
    rng = np.random.default_rng(0)
    sm = TemporalSmoother(0.0, SceneCutDetector())
    assert sm.latency == 0
    for i in range(5):
        ab = rng.normal(size=(2, 8, 8)).astype(np.float32)
        ready = sm.push(i, ab, np.full((8, 8), 50, np.float32))
        assert len(ready) == 1 and ready[0][0] == i and ready[0][1] is ab
    assert sm.flush() == []


@pytest.mark.parametrize("strength", [0.1, 0.5, 1.0])
@pytest.mark.parametrize("window", [1, 2, 5, 9])
def test_frames_in_equal_frames_out_in_order_with_bounded_latency(strength: float, window: int) -> None:
    rng = np.random.default_rng(1)
    shots = [natural(s)[:16, :20] for s in (1, 2, 3)]
    sm = TemporalSmoother(strength, SceneCutDetector(), window)
    assert sm.latency <= window // 2
    indices = [i * 2 + 3 for i in range(30)]  # increasing, not necessarily dense
    seen: list[int] = []
    for n, index in enumerate(indices):
        L = shots[(n // 7) % 3] + grain(rng, (16, 20))
        ab = rng.normal(size=(2, 16, 20)).astype(np.float32)
        ready = sm.push(index, ab, L)
        seen.extend(i for i, _ in ready)
        assert all(a.shape == (2, 16, 20) and a.dtype == np.float32 for _, a in ready)
        # every frame more than `latency` frames old is out
        assert len(seen) >= n + 1 - sm.latency
    seen.extend(i for i, _ in sm.flush())
    assert seen == indices


def test_constant_input_comes_out_unchanged() -> None:
    rng = np.random.default_rng(2)
    ab = np.stack([np.full((24, 32), 17.25, np.float32), np.full((24, 32), -3.5, np.float32)])
    scene = natural(3)
    Ls = [scene[:24, i : i + 32] + grain(rng, (24, 32)) for i in range(12)]  # moving luma
    out = run(TemporalSmoother(1.0, SceneCutDetector()), [ab.copy() for _ in Ls], Ls)
    assert len(out) == 12
    for _, a in out:
        np.testing.assert_array_equal(a, ab)


@pytest.mark.parametrize("field_aware", [False, True])
def test_flicker_on_static_scene_is_reduced(field_aware: bool) -> None:
    rng = np.random.default_rng(3)
    scene = natural(4)[:H, :W]
    n = 30
    Ls = [scene + grain(rng) for _ in range(n)]
    base = np.stack([np.full((H, W), 20.0), np.full((H, W), 35.0)]).astype(np.float32)
    abs_ = [base + rng.normal(scale=5.0, size=base.shape).astype(np.float32) for _ in range(n)]
    out = np.stack(
        [a for _, a in run(TemporalSmoother(1.0, SceneCutDetector(), 9, field_aware=field_aware), abs_, Ls)]
    )
    inp = np.stack(abs_)
    mid = slice(4, n - 4)  # frames with a full window
    std_in = float(inp[mid].std(axis=0).mean())
    std_out = float(out[mid].std(axis=0).mean())
    assert std_out < 0.5 * std_in  # measured: 0.28x (grain of 1.5 L units)
    np.testing.assert_allclose(out[mid].mean(axis=(0, 2, 3)), [20.0, 35.0], atol=0.5)  # no bias


def test_weaker_strength_smooths_less() -> None:
    rng = np.random.default_rng(4)
    scene = natural(5)[:H, :W]
    Ls = [scene for _ in range(20)]
    abs_ = [rng.normal(scale=5.0, size=(2, H, W)).astype(np.float32) for _ in range(20)]
    stds = []
    for strength in (0.25, 0.5, 1.0):
        out = np.stack([a for _, a in run(TemporalSmoother(strength), abs_, Ls)])
        stds.append(float(out[5:15].std(axis=0).mean()))
    assert stds[0] > stds[1] > stds[2]


def test_no_colour_bleeds_across_a_cut() -> None:
    rng = np.random.default_rng(5)
    a, b = natural(6)[:H, :W], natural(7)[:H, :W]
    Ls = [a + grain(rng) for _ in range(10)] + [b + grain(rng) for _ in range(10)]
    red = np.stack([np.full((H, W), 40.0), np.full((H, W), 20.0)]).astype(np.float32)
    blue = np.stack([np.full((H, W), 10.0), np.full((H, W), -45.0)]).astype(np.float32)
    abs_ = [red.copy() for _ in range(10)] + [blue.copy() for _ in range(10)]
    out = run(TemporalSmoother(1.0, SceneCutDetector()), abs_, Ls)
    for i, ab in out:
        np.testing.assert_array_equal(ab, red if i < 10 else blue)
    # without shot detection the same input does bleed (so the test above means something)
    leaky = run(TemporalSmoother(1.0, None), abs_, Ls)
    assert not np.array_equal(leaky[9][1], red)


def test_size_change_is_a_cut() -> None:
    sm = TemporalSmoother(1.0, None)
    out = []
    for i in range(4):
        out += sm.push(i, np.full((2, 8, 8), 5.0, np.float32), np.full((8, 8), 50.0, np.float32))
    for i in range(4, 8):
        out += sm.push(i, np.full((2, 8, 12), -5.0, np.float32), np.full((8, 12), 50.0, np.float32))
    out += sm.flush()
    assert [i for i, _ in out] == list(range(8))
    assert all(np.all(a == (5.0 if i < 4 else -5.0)) for i, a in out)


def moving_square(n: int, speed: int = 3) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """A bright square crossing a dark static background; its ab travels with it."""
    Ls, abs_, masks = [], [], []
    for t in range(n):
        mask = np.zeros((H, W), bool)
        x = 4 + speed * t
        mask[16:32, x : x + 12] = True
        Ls.append(np.where(mask, 80.0, 25.0).astype(np.float32))
        abs_.append(np.stack([np.where(mask, 40.0, 0.0), np.where(mask, 30.0, 0.0)]).astype(np.float32))
        masks.append(mask)
    return Ls, abs_, masks


@pytest.mark.parametrize("field_aware", [False, True])
def test_moving_object_keeps_its_colour_edge(field_aware: bool) -> None:
    Ls, abs_, masks = moving_square(12)
    out = dict(run(TemporalSmoother(1.0, SceneCutDetector(), field_aware=field_aware), abs_, Ls))
    for t in range(3, 9):
        inside, outside = masks[t], ~masks[t]
        # the object keeps its colour and the background stays grey: little ghosting either way
        assert float(np.abs(out[t][0][inside] - 40.0).max()) < 2.0
        assert float(np.abs(out[t][0][outside]).max()) < 2.0
        # and the colour edge stays where the luma edge is
        assert float(np.abs(out[t] - abs_[t]).mean()) < 0.2


def test_field_aware_never_blends_where_it_moved() -> None:
    # A square that jumps back and forth: at t-2, t and t+2 it is in the same place, so the soft
    # mode blends those frames; the field-aware mode must not, as the spot moved at t-1 and t+1.
    rng = np.random.default_rng(7)
    masks = []
    for t in range(12):
        mask = np.zeros((H, W), bool)
        x = 20 + 6 * (t % 2)
        mask[16:32, x : x + 12] = True
        masks.append(mask)
    Ls = [np.where(m, 80.0, 25.0).astype(np.float32) for m in masks]
    abs_ = [rng.normal(scale=5.0, size=(2, H, W)).astype(np.float32) for _ in range(12)]
    out = dict(run(TemporalSmoother(1.0, None, field_aware=True), abs_, Ls))
    soft = dict(run(TemporalSmoother(1.0, None, field_aware=False), abs_, Ls))
    for t in range(1, 11):
        moved = masks[t] != masks[t + 1]  # == masks[t] != masks[t - 1]
        assert np.array_equal(out[t][:, moved], abs_[t][:, moved])
        assert not np.array_equal(soft[t][:, moved], abs_[t][:, moved])
        far = np.ones((H, W), bool)
        far[10:38, :] = False  # rows the square never comes near: smoothed
        assert float(np.abs(out[t][:, far] - abs_[t][:, far]).mean()) > 0.5


def test_flush_starts_a_new_stream() -> None:
    sm = TemporalSmoother(1.0, SceneCutDetector())
    ab, L = np.zeros((2, 8, 8), np.float32), np.full((8, 8), 50.0, np.float32)
    assert sm.push(0, ab, L) == []
    assert [i for i, _ in sm.flush()] == [0]
    assert sm.flush() == []
    assert sm.push(0, ab, L) == []  # indices may start again after a flush


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        TemporalSmoother(1.5)
    with pytest.raises(ValueError):
        TemporalSmoother(0.5, window=0)
    sm = TemporalSmoother(0.5)
    with pytest.raises(ValueError):
        sm.push(0, np.zeros((3, 8, 8), np.float32), np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError):
        sm.push(0, np.zeros((2, 8, 8), np.float32), np.zeros((8, 9), np.float32))
    sm.push(5, np.zeros((2, 8, 8), np.float32), np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError):
        sm.push(5, np.zeros((2, 8, 8), np.float32), np.zeros((8, 8), np.float32))


def test_a_cut_given_by_the_caller_splits_the_shots_and_the_detector_is_not_asked() -> None:
    """Guided runs pass the guide's cut for each frame (the same detector on the same L): the
    smoother must use it and not detect again."""

    class Unasked(SceneCutDetector):
        def is_cut(self, L_small: np.ndarray) -> bool:
            raise AssertionError("the smoother asked its detector although the cut was given")

    rng = np.random.default_rng(5)
    a = natural(6)[:H, :W]
    Ls = [a + grain(rng) for _ in range(20)]  # one picture throughout: only the given cut splits
    red = np.stack([np.full((H, W), 40.0), np.full((H, W), 20.0)]).astype(np.float32)
    blue = np.stack([np.full((H, W), 10.0), np.full((H, W), -45.0)]).astype(np.float32)
    abs_ = [red.copy() for _ in range(10)] + [blue.copy() for _ in range(10)]
    sm = TemporalSmoother(1.0, Unasked())
    out: list[tuple[int, np.ndarray]] = []
    for i, (ab, L) in enumerate(zip(abs_, Ls, strict=True)):
        out += sm.push(i, ab, L, cut=i == 10)
    out += sm.flush()
    assert [i for i, _ in out] == list(range(20))
    for i, ab in out:
        np.testing.assert_array_equal(ab, red if i < 10 else blue)
