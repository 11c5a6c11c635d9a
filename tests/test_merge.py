"""Stage [5]: merge of the source luma with upsampled ab (DESIGN.md contract 6)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vidcolor import color
from vidcolor.stages.batch_l import y_to_l
from vidcolor.stages.merge import merge_frame, merge_rgb, parse_pix_fmt, resolve_matrix

YUV_FMTS = ["yuv420p", "yuv422p", "yuv444p"]


def _y(h: int, w: int, bit_depth: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    top = (1 << bit_depth) - 1
    return rng.integers(0, top + 1, size=(h, w)).astype(np.uint8 if bit_depth == 8 else np.uint16)


def _ab(h: int, w: int, seed: int = 1, spread: float = 60.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-spread, spread, size=(2, h, w)).astype(np.float32)


def _reference_cbcr(
    y: np.ndarray, ab: np.ndarray, bit_depth: int, full_range: bool, matrix: str
) -> np.ndarray:
    """Cb, Cr codes by the plain float path of vidcolor.color, per pixel, unrounded."""
    L = y_to_l(y, bit_depth, full_range)
    rgb = color.lab_to_rgb(np.stack([L, ab[0], ab[1]], axis=-1))
    # reason for the type: ignore below: matrix names come from a list of str, not the Literal
    yuv = color.rgb_to_yuv(rgb, matrix)  # type: ignore[arg-type]
    s = float(1 << (bit_depth - 8))
    scale, offset = ((1 << bit_depth) - 1, 128 * s) if full_range else (224 * s, 128 * s)
    return yuv[..., 1:] * scale + offset


@pytest.mark.parametrize("full_range", [True, False])
@pytest.mark.parametrize("matrix", ["bt601", "bt709"])
def test_yuv444_matches_the_reference_colour_path(full_range: bool, matrix: str) -> None:
    y, ab = _y(30, 40), _ab(30, 40)
    Y, U, V = merge_frame(
        y, ab, (30, 40), bit_depth=8, full_range=full_range, matrix=matrix, pix_fmt="yuv444p", guide=False
    )
    ref = np.clip(np.rint(_reference_cbcr(y, ab, 8, full_range, matrix)), 0, 255)
    assert Y is y
    assert U.dtype == np.uint8 and U.shape == (30, 40)
    assert np.abs(U.astype(int) - ref[..., 0]).max() <= 1
    assert np.abs(V.astype(int) - ref[..., 1]).max() <= 1


@pytest.mark.parametrize("pix_fmt", YUV_FMTS + ["yuv420p10le", "yuv444p12le", "yuv422p16le"])
@pytest.mark.parametrize("full_range", [True, False])
def test_grey_in_grey_out_and_luma_is_the_source(pix_fmt: str, full_range: bool) -> None:
    bits = parse_pix_fmt(pix_fmt).bits
    y = _y(23, 37, bits)
    ab = np.zeros((2, 32, 64), np.float32)  # the model said "no colour"; padded render size
    Y, U, V = merge_frame(
        y, ab, (23, 37), bit_depth=bits, full_range=full_range, matrix="bt709", pix_fmt=pix_fmt
    )
    # turned back to grey (chroma dropped), the output is the input, bit for bit
    assert Y is y
    neutral = 1 << (bits - 1)
    assert U.dtype == V.dtype == y.dtype
    assert np.all(U == neutral) and np.all(V == neutral)


def _block_mean(x: np.ndarray, sub_y: int, sub_x: int) -> np.ndarray:
    """Mean of sub_y x sub_x blocks of (h, w, ...), an odd last row/column repeated."""
    h, w = x.shape[:2]
    ch, cw = -(-h // sub_y), -(-w // sub_x)
    pad = ((0, ch * sub_y - h), (0, cw * sub_x - w)) + ((0, 0),) * (x.ndim - 2)
    x = np.pad(x, pad, mode="edge")
    return x.reshape(ch, sub_y, cw, sub_x, *x.shape[2:]).mean(axis=(1, 3))


@pytest.mark.parametrize("pix_fmt", YUV_FMTS)
@pytest.mark.parametrize("size", [(24, 32), (23, 37), (1, 1), (2, 3)])
def test_chroma_is_the_colour_of_each_blocks_mean(pix_fmt: str, size: tuple[int, int]) -> None:
    h, w = size
    y, ab = _y(h, w, seed=3), _ab(h, w, seed=4)
    fmt = parse_pix_fmt(pix_fmt)
    _, U, V = merge_frame(
        y, ab, (h, w), bit_depth=8, full_range=False, matrix="bt601", pix_fmt=pix_fmt, guide=False
    )
    ch, cw = -(-h // fmt.sub_y), -(-w // fmt.sub_x)
    assert U.shape == V.shape == (ch, cw)
    if h % fmt.sub_y or w % fmt.sub_x:
        return  # odd sizes: the enlargement to the chroma grid is not an exact block mean
    # each chroma sample is the colour of its block's mean L (f(Y) is linear in L) and mean ab
    L = _block_mean(y_to_l(y, 8, False), fmt.sub_y, fmt.sub_x)
    ab_mean = _block_mean(ab.transpose(1, 2, 0), fmt.sub_y, fmt.sub_x)
    rgb = color.lab_to_rgb(np.concatenate([L[..., None], ab_mean], axis=-1))
    ref = color.rgb_to_yuv(rgb, "bt601")[..., 1:] * 224 + 128
    assert np.abs(U.astype(float) - ref[..., 0]).max() <= 1.0
    assert np.abs(V.astype(float) - ref[..., 1]).max() <= 1.0


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv422p"])
def test_subsampled_chroma_is_close_to_the_per_pixel_average(pix_fmt: str) -> None:
    """On what the model gives (ab at a third of the size, smooth) over a luma of hard edges, many
    inside chroma blocks, the chroma stays close to the mean of the per-pixel chroma (measured here:
    56-60 dB; 64-80 dB on real film, where libx264 at CRF 18 keeps chroma to about 51 dB)."""
    h, w = 96, 128
    rng = np.random.default_rng(7)
    blocks = rng.integers(20, 236, size=(h // 8, w // 8)).astype(np.uint8)
    y = cv2.resize(blocks, (w, h), interpolation=cv2.INTER_NEAREST)  # edges at every 8th pixel
    y = np.roll(y, (3, 5), axis=(0, 1))  # ... and inside chroma blocks
    low = np.stack([cv2.GaussianBlur(c, (0, 0), 2.0) for c in _ab(h // 3, w // 3, seed=8, spread=50.0)])
    fmt = parse_pix_fmt(pix_fmt)
    render = (h // 3, w // 3)
    for guide in (False, True):
        _, U, V = merge_frame(
            y, low, render, bit_depth=8, full_range=False, matrix="bt709", pix_fmt=pix_fmt, guide=guide
        )
        _, U4, V4 = merge_frame(
            y, low, render, bit_depth=8, full_range=False, matrix="bt709", pix_fmt="yuv444p", guide=guide
        )
        for sub, per_pixel in ((U, U4), (V, V4)):
            mean = _block_mean(per_pixel.astype(np.float64), fmt.sub_y, fmt.sub_x)
            err = sub - mean
            psnr = 10 * np.log10(255**2 / float(np.mean(err**2)))
            assert psnr > 53.0, (guide, psnr)
            assert np.abs(err).max() <= 8.0


def test_padding_of_the_render_size_is_ignored() -> None:
    y, ab = _y(48, 64, seed=5), _ab(24, 32, seed=6)
    padded = np.full((2, 32, 64), 1e6, np.float32)  # garbage where the picture is not
    padded[:, :24, :32] = ab
    for guide in (False, True):
        a = merge_frame(
            y, ab, (24, 32), bit_depth=8, full_range=True, matrix="bt709", pix_fmt="yuv420p", guide=guide
        )
        b = merge_frame(
            y, padded, (24, 32), bit_depth=8, full_range=True, matrix="bt709", pix_fmt="yuv420p", guide=guide
        )
        for pa, pb in zip(a, b, strict=True):
            np.testing.assert_array_equal(pa, pb)


@pytest.mark.parametrize("guide", [False, True])
def test_flat_colour_stays_flat_when_upsampled(guide: bool) -> None:
    y = np.full((90, 120), 140, np.uint8)
    ab = np.stack([np.full((30, 40), 25.0), np.full((30, 40), -30.0)]).astype(np.float32)
    _, U, V = merge_frame(
        y, ab, (30, 40), bit_depth=8, full_range=False, matrix="bt709", pix_fmt="yuv444p", guide=guide
    )
    assert U.min() == U.max() and V.min() == V.max()
    assert U[0, 0] != 128 and V[0, 0] != 128


def test_guided_upsampling_snaps_colour_edges_to_luma_edges() -> None:
    h, w = 240, 320
    yy, xx = np.mgrid[:h, :w]
    disc = (yy - 120) ** 2 + (xx - 150) ** 2 < 70**2
    rng = np.random.default_rng(0)
    y = np.clip(np.where(disc, 170, 80) + rng.normal(0, 3, (h, w)), 0, 255).astype(np.uint8)
    sharp = np.stack([np.where(disc, 40.0, 0.0), np.where(disc, 40.0, -20.0)]).astype(np.float32)
    # what a model at a quarter of the size gives: blurred, and a pixel off
    low = np.stack(
        [
            cv2.GaussianBlur(
                np.roll(cv2.resize(c, (80, 60), interpolation=cv2.INTER_AREA), 1, axis=1), (0, 0), 1.5
            )
            for c in sharp
        ]
    )
    ideal = merge_frame(
        y, sharp, (h, w), bit_depth=8, full_range=True, matrix="bt709", pix_fmt="yuv444p", guide=False
    )
    ring = cv2.dilate(disc.astype(np.uint8), np.ones((25, 25))) != cv2.erode(
        disc.astype(np.uint8), np.ones((25, 25))
    )
    errors = {}
    for guide in (False, True):
        out = merge_frame(
            y, low, (60, 80), bit_depth=8, full_range=True, matrix="bt709", pix_fmt="yuv444p", guide=guide
        )
        errors[guide] = sum(
            float(np.abs(o.astype(int) - i.astype(int))[ring].mean())
            for o, i in zip(out[1:], ideal[1:], strict=True)
        )
    assert errors[True] < 0.85 * errors[False]  # measured: about 0.7x


def test_bit_depths_and_deeper_pix_fmt() -> None:
    y10, ab = _y(20, 30, 10, seed=7), _ab(20, 30, seed=8)
    Y, U, V = merge_frame(
        y10, ab, (20, 30), bit_depth=10, full_range=False, matrix="bt709", pix_fmt="yuv420p10le"
    )
    assert Y is y10 and U.dtype == np.uint16 and U.max() <= 1023 and V.max() <= 1023
    # 8-bit colour and 10-bit colour of the same picture agree (to the 8-bit step)
    y8 = (y10 >> 2).astype(np.uint8)
    _, U8, _ = merge_frame(y8, ab, (20, 30), bit_depth=8, full_range=False, matrix="bt709", pix_fmt="yuv420p")
    assert np.abs(U.astype(int) - (U8.astype(int) << 2)).max() <= 12
    # an 8-bit source into a 10-bit pix_fmt: Y is shifted, exactly undone by >> 2
    Y2, U2, _ = merge_frame(
        y8, ab, (20, 30), bit_depth=8, full_range=False, matrix="bt709", pix_fmt="yuv420p10le"
    )
    assert Y2.dtype == np.uint16 and np.array_equal(Y2 >> 2, y8)
    assert np.abs(U2.astype(int) - (U8.astype(int) << 2)).max() <= 3
    with pytest.raises(ValueError, match="fewer bits"):
        merge_frame(y10, ab, (20, 30), bit_depth=10, full_range=False, matrix="bt709", pix_fmt="yuv420p")


def test_extreme_ab_stays_in_range() -> None:
    y = np.array([[0, 16, 128, 235, 255] * 4] * 6, np.uint8)
    for a, b in [(127, 127), (-128, -128), (127, -128), (-128, 127)]:
        ab = np.stack([np.full(y.shape, a), np.full(y.shape, b)]).astype(np.float32)
        for fmt in ("yuv444p", "gbrp", "rgb24"):
            planes = merge_frame(y, ab, y.shape, bit_depth=8, full_range=False, matrix="bt601", pix_fmt=fmt)
            assert all(p.dtype == np.uint8 for p in planes)


def test_bt2020_keeps_grey_and_differs_for_colour() -> None:
    y = np.full((8, 8), 120, np.uint16) << 2
    grey = np.zeros((2, 8, 8), np.float32)
    _, U, V = merge_frame(
        y, grey, (8, 8), bit_depth=10, full_range=False, matrix="bt2020nc", pix_fmt="yuv444p10le"
    )
    assert np.all(U == 512) and np.all(V == 512)
    red = np.stack([np.full((8, 8), 50.0), np.full((8, 8), 30.0)]).astype(np.float32)
    u20 = merge_frame(
        y, red, (8, 8), bit_depth=10, full_range=False, matrix="bt2020nc", pix_fmt="yuv444p10le"
    )
    u709 = merge_frame(y, red, (8, 8), bit_depth=10, full_range=False, matrix="bt709", pix_fmt="yuv444p10le")
    assert int(u20[2][0, 0]) > 512 and int(u20[2][0, 0]) != int(u709[2][0, 0])


@pytest.mark.parametrize("pix_fmt", ["gbrp", "rgb24", "gbrp10le", "rgb48le"])
def test_rgb_outputs_keep_the_source_luma(pix_fmt: str) -> None:
    fmt = parse_pix_fmt(pix_fmt)
    bits = 8 if fmt.bits == 8 else 10
    y, ab = _y(16, 24, bits, seed=9), _ab(16, 24, seed=10)
    planes = merge_frame(y, ab, (16, 24), bit_depth=bits, full_range=True, matrix="bt709", pix_fmt=pix_fmt)
    if fmt.family == "rgb":
        (rgb,) = planes
        assert rgb.shape == (16, 24, 3)
    else:
        g, b, r = planes
        rgb = np.stack([r, g, b], axis=-1)
    assert rgb.dtype == fmt.dtype
    top = (1 << fmt.bits) - 1
    kr, kb = color.LUMA_WEIGHTS["bt709"]
    luma = (rgb[..., 0] * kr + rgb[..., 1] * (1 - kr - kb) + rgb[..., 2] * kb) / top
    assert np.abs(luma - y / ((1 << bits) - 1)).max() <= 1.0 / top + 1e-6
    # grey ab: R = G = B = the luma (to one code of float rounding at 16 bits)
    grey = merge_frame(
        y, np.zeros_like(ab), (16, 24), bit_depth=bits, full_range=True, matrix="bt709", pix_fmt=pix_fmt
    )
    arr = (grey[0] if fmt.family == "rgb" else np.stack(grey, axis=-1)).astype(int)
    assert np.all(arr.max(axis=-1) - arr.min(axis=-1) <= (0 if fmt.bits == 8 else 1))


def test_tiny_frames() -> None:
    y = np.full((1, 1), 100, np.uint8)
    ab = np.full((2, 32, 32), 20.0, np.float32)
    Y, U, V = merge_frame(y, ab, (32, 32), bit_depth=8, full_range=True, matrix="unknown", pix_fmt="yuv420p")
    assert Y is y and U.shape == V.shape == (1, 1)


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_merge_rgb_turned_grey_gives_the_input(bit_depth: int) -> None:
    y, ab = _y(40, 60, bit_depth, seed=11), _ab(20, 30, seed=12, spread=90)
    rgb = merge_rgb(y, ab, (20, 30), bit_depth)
    assert rgb.shape == (40, 60, 3) and rgb.dtype == (np.uint8 if bit_depth == 8 else np.uint16)
    # the usual BT.601 grey conversion of the output gives the input back (rounding aside)
    rgb_f = rgb.astype(np.float64)
    grey = np.rint(0.299 * rgb_f[..., 0] + 0.587 * rgb_f[..., 1] + 0.114 * rgb_f[..., 2])
    assert np.abs(grey - y).max() <= 1
    assert float(np.abs(rgb[..., 0].astype(int) - rgb[..., 2].astype(int)).mean()) > 5  # coloured
    # without keep_luma the CIE L, not the luma, follows the source
    lab_rgb = merge_rgb(y, ab, (20, 30), bit_depth, keep_luma=False)
    top = (1 << bit_depth) - 1
    L_out = color.rgb_to_lab(lab_rgb.astype(np.float32) / top)[..., 0]
    inside = (y > 0.1 * top) & (y < 0.9 * top)  # away from where gamut clipping moves L
    assert float(np.median(np.abs(L_out - y_to_l(y, bit_depth, True))[inside])) < 1.0


def test_resolve_matrix() -> None:
    assert resolve_matrix("smpte170m", 480) == "bt601"
    assert resolve_matrix("bt470bg", 576) == "bt601"
    assert resolve_matrix("bt709", 480) == "bt709"
    assert resolve_matrix("bt2020nc", 2160) == "bt2020"
    assert resolve_matrix(None, 480) == "bt601"
    assert resolve_matrix("unknown", 719) == "bt601"
    assert resolve_matrix("unknown", 720) == "bt709"
    with pytest.raises(ValueError):
        resolve_matrix("nonsense", 480)


def test_parse_pix_fmt() -> None:
    assert parse_pix_fmt("yuv420p10le").bits == 10 and parse_pix_fmt("yuv420p10le").sub_y == 2
    assert parse_pix_fmt("yuv422p").sub_x == 2 and parse_pix_fmt("yuv422p").sub_y == 1
    assert parse_pix_fmt("gbrp12le").family == "gbrp"
    for bad in ("nv12", "yuv420p10be", "yuv411p", "gray"):
        with pytest.raises(ValueError):
            parse_pix_fmt(bad)
