"""Stage [2]: render size, luma -> L, batching (DESIGN.md contract 3)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from vidcolor.color import grey_to_l
from vidcolor.frames import Frame
from vidcolor.stages.batch_l import make_batch, render_shape, y_to_l


def _frame(index: int, y: np.ndarray) -> Frame:
    return Frame(index=index, pts=index * 1001, time_base=Fraction(1, 30000), y=y)


@pytest.mark.parametrize(
    ("h", "w", "expected"),
    [
        (1080, 1920, (224, 398, 224, 416)),  # landscape: short side -> render size
        (1920, 1080, (398, 224, 416, 224)),  # portrait
        (480, 720, (224, 336, 224, 352)),  # SD 3:2 grid (anamorphic SAR ignored on purpose)
        (120, 160, (120, 160, 128, 160)),  # smaller than the render size: not upscaled
        (224, 224, (224, 224, 224, 224)),
        (1, 1, (32, 32, 32, 32)),  # tiny frames are raised to one stride
        (8, 8, (32, 32, 32, 32)),
        (8, 16, (32, 64, 32, 64)),
        (2, 1000, (32, 16000, 32, 16000)),
    ],
)
def test_render_shape(h: int, w: int, expected: tuple[int, int, int, int]) -> None:
    assert render_shape(h, w, 224, 32) == expected


def test_render_shape_properties() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        h, w = (int(v) for v in rng.integers(1, 3000, size=2))
        render, stride = int(rng.choice([128, 224, 256, 512])), int(rng.choice([8, 16, 32]))
        ch, cw, ph, pw = render_shape(h, w, render, stride)
        assert min(ch, cw) == max(min(h, w, render), stride)
        assert ph % stride == 0 and pw % stride == 0
        assert ch <= ph < ch + stride and cw <= pw < cw + stride
        # aspect kept to within the rounding of one pixel on the long side
        assert abs(cw / ch - w / h) <= (w / h) / min(ch, cw) + 1.0 / min(ch, cw) + 1e-9


def test_render_shape_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        render_shape(0, 10, 224, 32)
    with pytest.raises(ValueError):
        render_shape(10, 10, 224, 0)


def test_y_to_l_full_range_8bit_matches_grey_to_l() -> None:
    y = np.arange(256, dtype=np.uint8).reshape(16, 16)
    L = y_to_l(y, 8, True)
    assert L.dtype == np.float32 and L.shape == (16, 16)
    np.testing.assert_allclose(L, grey_to_l(y.astype(np.float32) / 255.0), atol=1e-4)
    assert L[0, 0] == pytest.approx(0.0, abs=1e-4) and L[-1, -1] == pytest.approx(100.0, abs=1e-3)
    assert np.all(np.diff(L.ravel()) > 0)  # strictly increasing


def test_y_to_l_limited_range_expands_and_clips() -> None:
    y = np.array([[0, 16, 126, 235, 255]], dtype=np.uint8)
    L = y_to_l(y, 8, False)
    assert L[0, 0] == pytest.approx(0.0, abs=1e-4)  # sub-black clips to black
    assert L[0, 1] == pytest.approx(0.0, abs=1e-4)
    assert L[0, 2] == pytest.approx(float(grey_to_l(np.array(110 / 219, np.float32))), abs=1e-3)
    assert L[0, 3] == pytest.approx(100.0, abs=1e-3)
    assert L[0, 4] == pytest.approx(100.0, abs=1e-3)  # super-white clips to white


@pytest.mark.parametrize("bit_depth", [10, 12, 16])
def test_y_to_l_high_bit_depth(bit_depth: int) -> None:
    top = (1 << bit_depth) - 1
    s = 1 << (bit_depth - 8)
    y = np.array([[0, top // 2, top, 16 * s, 235 * s]], dtype=np.uint16)
    full = y_to_l(y, bit_depth, True)
    np.testing.assert_allclose(full[0, :3], grey_to_l(np.array([0, (top // 2) / top, 1.0])), atol=1e-3)
    tv = y_to_l(y, bit_depth, False)
    assert tv[0, 3] == pytest.approx(0.0, abs=1e-4) and tv[0, 4] == pytest.approx(100.0, abs=1e-3)
    # a stray code above the nominal maximum clips instead of failing
    assert y_to_l(np.array([[65535]], np.uint16), bit_depth, True)[0, 0] == pytest.approx(100.0, abs=1e-3)


def test_y_to_l_8_and_10_bit_agree() -> None:
    y8 = np.arange(16, 236, dtype=np.uint8)[None]
    y10 = y8.astype(np.uint16) << 2
    np.testing.assert_allclose(y_to_l(y8, 8, False), y_to_l(y10, 10, False), atol=1e-3)


def test_y_to_l_rejects_wrong_dtype() -> None:
    with pytest.raises(ValueError):
        y_to_l(np.zeros((2, 2), np.float32), 8, True)
    with pytest.raises(ValueError):
        y_to_l(np.zeros((2, 2), np.uint8), 10, True)


def test_make_batch_shapes_and_padding() -> None:
    rng = np.random.default_rng(1)
    frames = [_frame(i, rng.integers(16, 236, size=(120, 160), dtype=np.uint8)) for i in range(3)]
    batch = make_batch(frames, 8, False, render_size=224, stride=32)
    assert batch.indices == (0, 1, 2)
    assert batch.content == (120, 160)
    assert batch.L.shape == (3, 1, 128, 160) and batch.L.dtype == np.float32
    for i, f in enumerate(frames):
        np.testing.assert_array_equal(batch.L[i, 0, :120], y_to_l(f.y, 8, False))
        # bottom padding replicates the last content row
        np.testing.assert_array_equal(batch.L[i, 0, 120:], np.broadcast_to(batch.L[i, 0, 119], (8, 160)))
    assert batch.L.min() >= 0.0 and batch.L.max() <= 100.0


def test_make_batch_downscales_and_pads_right() -> None:
    # a vertical ramp: rows keep their order and the right padding copies the last column
    y = np.tile(np.linspace(0, 1023, 300).astype(np.uint16)[:, None], (1, 500))
    batch = make_batch([_frame(7, y)], 10, True, render_size=64, stride=32)
    ch, cw = batch.content
    assert (ch, cw) == (64, 107)
    assert batch.L.shape == (1, 1, 64, 128)
    plane = batch.L[0, 0]
    assert np.all(np.diff(plane[:, 0]) > 0)
    np.testing.assert_array_equal(plane[:, cw:], np.broadcast_to(plane[:, cw - 1 : cw], (64, 128 - cw)))


def test_make_batch_upscales_tiny_frames() -> None:
    batch = make_batch([_frame(0, np.full((1, 1), 200, np.uint8))], 8, True, render_size=224, stride=32)
    assert batch.content == (32, 32) and batch.L.shape == (1, 1, 32, 32)
    np.testing.assert_allclose(batch.L, y_to_l(np.array([[200]], np.uint8), 8, True)[0, 0], atol=1e-5)


def test_make_batch_fills_out() -> None:
    y = np.full((40, 40), 128, np.uint8)
    out = np.zeros((2, 1, 64, 64), np.float32)
    batch = make_batch([_frame(0, y), _frame(1, y)], 8, True, 224, 32, out=out)
    assert batch.L is out and np.all(out > 0)
    with pytest.raises(ValueError):
        make_batch([_frame(0, y)], 8, True, 224, 32, out=out)


def test_make_batch_rejects_mixed_sizes_and_empty() -> None:
    with pytest.raises(ValueError, match="share a size"):
        make_batch(
            [_frame(0, np.zeros((4, 4), np.uint8)), _frame(1, np.zeros((4, 6), np.uint8))], 8, True, 224, 32
        )
    with pytest.raises(ValueError):
        make_batch([], 8, True, 224, 32)
