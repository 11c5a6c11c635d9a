"""Still-image reading (as luma) and writing (8/16-bit RGB)."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from vidcolor.errors import EncodingError, InputError
from vidcolor.media.image_io import read_image, write_image


def _rgb(h: int = 24, w: int = 32, dtype: type = np.uint8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    return rng.integers(0, top + 1, size=(h, w, 3)).astype(dtype)


def _bt601(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


@pytest.mark.parametrize("ext", [".png", ".tif", ".bmp"])
def test_lossless_8bit_rgb_reads_as_bt601_luma(tmp_path: Path, ext: str) -> None:
    rgb = _rgb()
    path = tmp_path / f"a{ext}"
    write_image(path, rgb, 8)
    y, bits = read_image(path)
    assert bits == 8 and y.dtype == np.uint8 and y.shape == (24, 32)
    assert np.abs(y.astype(float) - _bt601(rgb.astype(float))).max() <= 1.0


@pytest.mark.parametrize("ext", [".png", ".tiff"])
def test_16bit_round_trip(tmp_path: Path, ext: str) -> None:
    rgb = _rgb(dtype=np.uint16, seed=1)
    path = tmp_path / f"a{ext}"
    write_image(path, rgb, 16)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw is not None
    assert raw.dtype == np.uint16 and np.array_equal(raw[..., ::-1], rgb)  # stored exactly
    y, bits = read_image(path)
    assert bits == 16 and y.dtype == np.uint16
    assert np.abs(y.astype(float) - _bt601(rgb.astype(float))).max() <= 1.0


def test_grey_files_read_as_they_are(tmp_path: Path) -> None:
    g8 = np.arange(24 * 32, dtype=np.uint32).reshape(24, 32).astype(np.uint8)
    g16 = (np.arange(24 * 32).reshape(24, 32) * 85).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "g8.png"), g8)
    cv2.imwrite(str(tmp_path / "g16.png"), g16)
    y8, b8 = read_image(tmp_path / "g8.png")
    y16, b16 = read_image(str(tmp_path / "g16.png"))
    assert b8 == 8 and np.array_equal(y8, g8)
    assert b16 == 16 and np.array_equal(y16, g16)


def test_ten_bit_values_are_scaled_to_sixteen(tmp_path: Path) -> None:
    rgb = np.array([[[0, 512, 1023]]], np.uint16)
    write_image(tmp_path / "t.png", rgb, 10)
    raw = cv2.imread(str(tmp_path / "t.png"), cv2.IMREAD_UNCHANGED)
    assert raw is not None
    assert raw[..., ::-1].tolist() == [[[0, round(512 * 65535 / 1023), 65535]]]
    write_image(tmp_path / "t.jpg", rgb, 10)  # JPEG holds 8 bits: rounded down to them
    jpg = cv2.imread(str(tmp_path / "t.jpg"), cv2.IMREAD_UNCHANGED)
    assert jpg is not None and jpg.dtype == np.uint8


@pytest.mark.parametrize("ext", [".jpg", ".jpeg", ".webp"])
def test_lossy_formats(tmp_path: Path, ext: str) -> None:
    rgb = cv2.GaussianBlur(_rgb(64, 64), (0, 0), 3)  # smooth, so quality 95 keeps it close
    write_image(tmp_path / f"a{ext}", rgb, 8)
    y, bits = read_image(tmp_path / f"a{ext}")
    assert bits == 8 and y.shape == (64, 64)
    assert float(np.abs(y.astype(float) - _bt601(rgb.astype(float))).mean()) < 2.0


def test_grey_write(tmp_path: Path) -> None:
    g = np.full((5, 7), 99, np.uint8)
    write_image(tmp_path / "g.png", g, 8)
    y, _ = read_image(tmp_path / "g.png")
    assert np.array_equal(y, g)


def _with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """Insert a minimal EXIF APP1 segment carrying only an orientation tag after the SOI marker."""
    ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + b"MM\x00\x2a" + struct.pack(">I", 8) + ifd
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    img = np.zeros((20, 40, 3), np.uint8)
    img[:6, :10] = 255  # a white block at the top left of the stored picture
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 100])
    assert ok
    path = tmp_path / "rot.jpg"
    path.write_bytes(_with_exif_orientation(buf.tobytes(), 6))  # 6: display rotated 90 degrees clockwise
    y, _ = read_image(path)
    assert y.shape == (40, 20)
    assert y[:10, -6:].mean() > 200 and y[-10:, :6].mean() < 50  # the block is now at the top right


def test_alpha_is_dropped(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 2] = 200  # red (OpenCV order B, G, R, A)
    rgba[..., 3] = 10
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    y, _ = read_image(tmp_path / "a.png")
    assert y.shape == (4, 4) and abs(int(y[0, 0]) - round(0.299 * 200)) <= 1


def test_float_tiff_is_read_as_sixteen_bit(tmp_path: Path) -> None:
    f = np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5)
    cv2.imwrite(str(tmp_path / "f.tiff"), f)
    y, bits = read_image(tmp_path / "f.tiff")
    assert bits == 16 and y.dtype == np.uint16 and y[0, 0] == 0 and y[-1, -1] == 65535


def test_unreadable_inputs_raise_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="check the path"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(InputError, match="cannot decode"):
        read_image(tmp_path / "junk.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(InputError):
        read_image(tmp_path / "empty.jpg")


def test_write_errors(tmp_path: Path) -> None:
    with pytest.raises(EncodingError, match="extension"):
        write_image(tmp_path / "a.xyz", _rgb(), 8)
    with pytest.raises(EncodingError, match="writable"):
        write_image(tmp_path / "no" / "such" / "dir.png", _rgb(), 8)
    with pytest.raises(ValueError):
        write_image(tmp_path / "a.png", np.zeros((4, 4, 2), np.uint8), 8)
