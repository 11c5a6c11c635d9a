"""Known values of the evaluation metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vidcolor.color import rgb_to_lab
from vidcolor.evaluate import metrics

# Sharma, Wu and Dalal (2005), "The CIEDE2000 color-difference formula: implementation notes,
# supplementary test data, and mathematical observations", Table 1: L1 a1 b1  L2 a2 b2  dE00.
# Pairs 9-15 sit on either side of the hue-averaging branch (|h1 - h2| = 180 degrees), 7-8 have one
# neutral colour, 17-20 are large differences, 25-34 come from real measurements.
SHARMA = np.array(
    [
        [50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425],
        [50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615],
        [50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412],
        [50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000],
        [50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000],
        [50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000],
        [50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669],
        [50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195],
        [50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045],
        [50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045],
        [50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461],
        [50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065],
        [50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492],
        [50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977],
        [50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030],
        [50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535],
        [50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000],
        [50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000],
        [50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000],
        [50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000],
        [60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644],
        [63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630],
        [61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731],
        [35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645],
        [22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373],
        [36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146],
        [90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441],
        [90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381],
        [6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377],
        [2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082],
    ]
)


def _random_lab(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.uniform([0.0, -110.0, -110.0], [100.0, 110.0, 110.0], size=(n, 3))


# ------------------------------------------------------------------------------------ PSNR


def test_psnr_identical_is_inf_or_the_cap() -> None:
    a = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
    assert metrics.psnr(a, a) == math.inf
    assert metrics.psnr(a, a, max_db=100.0) == 100.0


def test_psnr_known_value() -> None:
    a = np.zeros((4, 5, 3), np.float32)
    assert metrics.psnr(a, a + 0.1) == pytest.approx(20.0, abs=1e-4)  # 10 log10(1 / 0.01)
    u = np.zeros((4, 5, 3), np.uint8)
    assert metrics.psnr(u, u + 255, peak=255.0) == pytest.approx(0.0, abs=1e-9)


def test_psnr_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="same shape"):
        metrics.psnr(np.zeros((2, 2)), np.zeros((2, 3)))


def test_psnr_ab_ignores_lightness() -> None:
    lab = np.zeros((3, 3, 3), np.float32)
    lab[..., 1] = 10.0
    other = lab.copy()
    other[..., 0] = 50.0  # only L differs
    assert metrics.psnr_ab(other, lab) == math.inf
    other[..., 2] = 22.0  # b* off by 22 on one of two channels: mse 242
    assert metrics.psnr_ab(other, lab) == pytest.approx(10 * math.log10(220.0**2 / 242.0), abs=1e-4)


# ------------------------------------------------------------------------------------ CIEDE2000


def test_ciede2000_sharma_pairs() -> None:
    de = metrics.ciede2000(SHARMA[:, 0:3], SHARMA[:, 3:6])
    assert de.dtype == np.float32 and de.shape == (len(SHARMA),)
    # The published values have 4 decimals.
    np.testing.assert_allclose(de, SHARMA[:, 6], atol=1e-4, rtol=0)


def test_ciede2000_is_symmetric_on_sharma_pairs() -> None:
    de = metrics.ciede2000(SHARMA[:, 3:6], SHARMA[:, 0:3])
    np.testing.assert_allclose(de, SHARMA[:, 6], atol=1e-4, rtol=0)


def test_ciede2000_identical_is_zero() -> None:
    lab = _random_lab(np.random.default_rng(1), 500).reshape(20, 25, 3)
    de = metrics.ciede2000(lab, lab)
    assert de.shape == (20, 25)
    assert np.all(de == 0.0)


def test_ciede2000_matches_skimage_on_random_colours() -> None:
    color = pytest.importorskip("skimage.color")
    rng = np.random.default_rng(2)
    a = _random_lab(rng, 20000)
    far = _random_lab(rng, 20000)
    near = a + rng.normal(0.0, 2.0, a.shape)
    for b in (far, near):
        np.testing.assert_allclose(
            metrics.ciede2000(a, b), color.deltaE_ciede2000(a, b), atol=5e-4, rtol=1e-5
        )


def test_ciede2000_of_real_images_matches_skimage() -> None:
    color = pytest.importorskip("skimage.color")
    rng = np.random.default_rng(3)
    rgb1 = rng.random((12, 16, 3)).astype(np.float32)
    rgb2 = np.clip(rgb1 + rng.normal(0, 0.05, rgb1.shape), 0, 1).astype(np.float32)
    l1, l2 = rgb_to_lab(rgb1), rgb_to_lab(rgb2)
    np.testing.assert_allclose(metrics.ciede2000(l1, l2), color.deltaE_ciede2000(l1, l2), atol=5e-4)


# ------------------------------------------------------------------------------------ colourfulness


def test_colourfulness_of_grey_is_zero() -> None:
    g = np.random.default_rng(4).integers(0, 256, (30, 40), dtype=np.uint8)
    assert metrics.colourfulness(np.repeat(g[:, :, None], 3, axis=2)) == 0.0


def test_colourfulness_known_value_of_flat_red() -> None:
    red = np.zeros((10, 10, 3), np.uint8)
    red[..., 0] = 255
    # rg = 255, yb = 127.5 everywhere: no spread, M = 0.3 * sqrt(255^2 + 127.5^2).
    assert metrics.colourfulness(red) == pytest.approx(0.3 * math.hypot(255.0, 127.5), rel=1e-6)


def test_colourfulness_grows_with_saturation() -> None:
    rng = np.random.default_rng(5)
    vivid = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    grey = vivid.mean(axis=2, keepdims=True)
    dull = (grey + 0.3 * (vivid - grey)).astype(np.uint8)
    assert metrics.colourfulness(vivid) > metrics.colourfulness(dull) > 0.0


# ------------------------------------------------------------------------------------ CDC


def _flat(rgb: tuple[int, int, int], h: int = 12, w: int = 16) -> np.ndarray:
    f = np.empty((h, w, 3), np.uint8)
    f[:] = rgb
    return f


def test_channel_histograms_are_normalised() -> None:
    img = np.random.default_rng(6).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    for bins in (256, 32):
        h = metrics.channel_histograms(img, bins)
        assert h.shape == (3, bins)
        np.testing.assert_allclose(h.sum(axis=1), 1.0)
    h32 = metrics.channel_histograms(_flat((0, 8, 255)), 32)
    assert h32[0, 0] == 1.0 and h32[1, 1] == 1.0 and h32[2, 31] == 1.0


def test_js_divergence_bounds() -> None:
    p = np.array([1.0, 0.0])
    q = np.array([0.0, 1.0])
    assert float(metrics.js_divergence(p, p)) == 0.0
    assert float(metrics.js_divergence(p, q)) == pytest.approx(math.log(2.0))  # nats
    assert float(metrics.js_divergence(p, q, base=2.0)) == pytest.approx(1.0)  # bits


def test_cdc_of_identical_frames_is_zero() -> None:
    f = np.random.default_rng(7).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    assert metrics.cdc([f] * 5) == 0.0


def test_cdc_of_changing_colours_is_positive_and_bounded() -> None:
    frames = [_flat((200, 30, 30)), _flat((30, 200, 30)), _flat((30, 30, 200))]
    v = metrics.cdc(frames)
    assert 0.0 < v <= math.log(2.0) + 1e-12
    # Each pair changes two channels completely (JS = ln 2) and keeps one: mean 2/3 ln 2.
    assert v == pytest.approx(2.0 / 3.0 * math.log(2.0))


def test_cdc_flicker_scores_worse_than_steady() -> None:
    rng = np.random.default_rng(8)
    base = rng.integers(60, 190, (24, 32, 3), dtype=np.int16)
    steady = [np.clip(base + rng.integers(-2, 3, base.shape), 0, 255).astype(np.uint8) for _ in range(6)]
    flicker = [np.clip(base + (40 if t % 2 else -40), 0, 255).astype(np.uint8) for t in range(6)]
    assert metrics.cdc(flicker) > metrics.cdc(steady)


def test_cdc_needs_two_frames_and_streams() -> None:
    assert math.isnan(metrics.cdc([_flat((1, 2, 3))]))
    acc = metrics.CDCAccumulator(step=2)
    for rgb in [(0, 0, 0), (9, 9, 9), (0, 0, 0)]:
        acc.push(_flat(rgb))
    assert acc.pairs == 1 and acc.value() == 0.0  # frames 0 and 2 are the same
