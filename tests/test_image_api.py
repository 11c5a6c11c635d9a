"""colorize_image: stills in PNG, JPEG and TIFF, 8 and 16 bits, grey and RGB, files and arrays.

The one property of every still: turned grey (BT.601), the colour output is the input's luma to
within rounding. A 16-bit input stays 16-bit (array and PNG/TIFF file); JPEG holds 8 bits.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vidcolor.errors import InputError, UsageError
from vidcolor.pipeline.image import colorize_image

BT601 = np.array([0.299, 0.587, 0.114])


def pattern(bits: int, rgb: bool, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    """A grey gradient with texture (or an RGB picture), uint8 or uint16, full range used."""
    w, h = size
    top = (1 << bits) - 1
    yy, xx = np.mgrid[0:h, 0:w]
    g = ((xx * 3 + yy * 2) % 200 + 20 + ((xx + yy) % 2) * 8) / 255.0
    g[0, 0], g[0, 1] = 0.0, 1.0
    img = np.stack([g, np.roll(g, 7, axis=1) * 0.8, 1.0 - g], axis=-1) if rgb else g
    return np.rint(img * top).astype(np.uint8 if bits == 8 else np.uint16)


def luma(img: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB image as float (a grey image as it is)."""
    return img.astype(np.float64) @ BT601 if img.ndim == 3 else img.astype(np.float64)


def assert_colour_with_the_input_luma(out: np.ndarray, src_luma: np.ndarray, dtype: type, rgb: bool) -> None:
    assert out.dtype == dtype and out.shape == (*src_luma.shape, 3)
    # Turned grey, the colour output is the input: within half a code, as the output channels are
    # rounded; an RGB input's luma is itself rounded once on the way in (in float32 for files).
    tol = 1.5 if rgb else 0.5
    assert np.abs(luma(out) - src_luma).max() <= tol + 1e-6
    # The random tiny model paints random colour: the channels are not all equal.
    assert np.abs(out[..., 0].astype(np.int64) - out[..., 2]).max() > 0


def write(path: Path, img: np.ndarray) -> Path:
    """Write an RGB or grey array with OpenCV (which stores B, G, R)."""
    assert cv2.imwrite(str(path), img[..., ::-1] if img.ndim == 3 else img)
    return path


def read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, path
    return img[..., ::-1] if img.ndim == 3 else img


@pytest.mark.parametrize(
    "ext,bits,rgb",
    [
        (".png", 8, False),
        (".png", 16, False),
        (".png", 8, True),
        (".png", 16, True),
        (".tif", 8, False),
        (".tif", 16, True),
        (".jpg", 8, False),
        (".jpg", 8, True),
    ],
)
def test_still_file_to_file(tmp_path, tiny_model, ext, bits, rgb):
    img = pattern(bits, rgb)
    src = write(tmp_path / f"in{ext}", img)
    # The luma vidcolor sees: of the file as decoded (JPEG is lossy), BT.601 of RGB, rounded.
    decoded = read(src)
    src_luma = np.rint(luma(decoded)) if rgb else decoded.astype(np.float64)
    dst = tmp_path / f"out{ext}"
    out = colorize_image(src, dst, colorizer=tiny_model)
    dtype = np.uint16 if bits == 16 else np.uint8
    assert_colour_with_the_input_luma(out, src_luma, dtype, rgb)
    back = read(dst)
    assert back.dtype == dtype and back.shape == out.shape  # 16 bits in, 16 bits out
    if ext != ".jpg":
        np.testing.assert_array_equal(back, out)
    else:  # JPEG is lossy: the file is close to the returned array
        assert np.abs(back.astype(np.int64) - out).mean() < 4
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([src.name, dst.name])  # no temp file


def test_sixteen_bit_png_in_gives_sixteen_bit_png_out_with_values_past_8_bits(tmp_path, tiny_model):
    img = pattern(16, False)
    img[1::2, :] += 1  # values an 8-bit path would lose
    src = write(tmp_path / "scan.png", img)
    out = colorize_image(src, tmp_path / "scan_colour.png", colorizer=tiny_model)
    back = read(tmp_path / "scan_colour.png")
    assert back.dtype == np.uint16 and back.ndim == 3
    np.testing.assert_array_equal(back, out)
    assert np.any(back % 257 != 0)  # not an 8-bit picture scaled up
    assert np.abs(luma(back) - img).max() <= 0.5 + 1e-6


@pytest.mark.parametrize("bits,rgb", [(8, False), (16, False), (8, True), (16, True)])
def test_array_in_array_out(tmp_path, tiny_model, bits, rgb):
    img = pattern(bits, rgb, size=(65, 49))  # odd sizes too
    out = colorize_image(img, colorizer=tiny_model)
    src_luma = np.rint(luma(img)) if rgb else img.astype(np.float64)
    assert_colour_with_the_input_luma(out, src_luma, img.dtype.type, rgb)
    assert list(tmp_path.iterdir()) == []  # no dst: nothing written


def test_array_with_a_file_destination(tmp_path, tiny_model):
    img = pattern(8, False)
    out = colorize_image(img, tmp_path / "out.png", colorizer=tiny_model)
    np.testing.assert_array_equal(read(tmp_path / "out.png"), out)


@pytest.mark.parametrize(
    "array",
    [np.zeros((48, 64), np.float32), np.zeros((48, 64, 2), np.uint8), np.zeros((2, 48, 64, 3), np.uint8)],
    ids=["float", "two_channels", "a_batch"],
)
def test_arrays_that_are_not_images(tiny_model, array):
    with pytest.raises(InputError):
        colorize_image(array, colorizer=tiny_model)


def test_bad_destinations_write_nothing(tmp_path, tiny_model):
    src = write(tmp_path / "in.png", pattern(8, False))
    with pytest.raises(UsageError, match="different from the input"):
        colorize_image(src, src, colorizer=tiny_model, overwrite=True)
    with pytest.raises(UsageError, match="image file name"):
        colorize_image(src, tmp_path / "out.mp4", colorizer=tiny_model)
    existing = tmp_path / "old.png"
    existing.write_bytes(b"older")
    with pytest.raises(UsageError, match="--overwrite"):
        colorize_image(src, existing, colorizer=tiny_model)
    assert existing.read_bytes() == b"older"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "old.png"]


def test_not_an_image(tmp_path, tiny_model):
    src = tmp_path / "photo.png"
    src.write_text("not a picture")
    with pytest.raises(InputError):
        colorize_image(src, tmp_path / "out.png", colorizer=tiny_model)
    assert not (tmp_path / "out.png").exists()
