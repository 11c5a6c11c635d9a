"""Still images in and out: PNG, JPEG, TIFF, BMP and WebP, 8 or 16 bits, through OpenCV.

Files are read and written as bytes by Python and coded by ``cv2.imdecode``/``cv2.imencode``, so
any path the OS accepts works (``cv2.imread`` cannot open non-ASCII paths on Windows).
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from vidcolor.color import BT601_RGB
from vidcolor.errors import EncodingError, InputError
from vidcolor.formats import SIXTEEN_BIT_STILLS, STILL_SUFFIXES

# Decode keeping 16-bit samples and grey-as-grey; unlike IMREAD_UNCHANGED this applies the EXIF
# orientation (so a portrait photo comes out upright) and drops an alpha channel.
_READ_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR
JPEG_QUALITY = 95
WEBP_QUALITY = 95


def read_image(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Read a still as luma: returns ``(y, bit_depth)``, y uint8 (H, W) with bit_depth 8, or uint16
    (H, W) with bit_depth 16 (16-bit PNG/TIFF; float TIFFs in [0, 1] are scaled to 16 bits).

    Colour files are turned grey with the BT.601 luma weights (0.299 R' + 0.587 G' + 0.114 B' on
    the stored, gamma-encoded values, rounded), alpha is dropped, and the EXIF orientation is
    applied. Raises :class:`InputError` for a missing or undecodable file.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise InputError("a readable image file", f"{name}: {exc.strerror or exc}", "check the path") from exc
    img = cv2.imdecode(np.frombuffer(data, np.uint8), _READ_FLAGS) if data else None
    if img is None:
        raise InputError(
            "a PNG, JPEG, TIFF, BMP or WebP image",
            f"{name} that OpenCV cannot decode",
            "check that the file is a complete image in one of these formats",
        )
    if img.dtype in (np.float32, np.float64):
        img = np.rint(np.clip(np.nan_to_num(img), 0.0, 1.0) * 65535.0).astype(np.uint16)
    if img.dtype not in (np.uint8, np.uint16):
        raise InputError(
            "8- or 16-bit unsigned (or float) samples", f"{img.dtype} samples in {name}", "convert the image"
        )
    if img.ndim == 3 and img.shape[2] < 3:  # grey (+ alpha)
        img = img[..., 0]
    elif img.ndim == 3:
        # cv2.transform computes in floating point and rounds; cvtColor's fixed-point weights
        # are off by up to 1.4 codes at 16 bits. A 4th (alpha) channel gets weight 0.
        weights = np.zeros((1, img.shape[2]), np.float32)
        weights[0, :3] = BT601_RGB[::-1]  # OpenCV holds BGR
        img = cv2.transform(img, weights)
    return np.ascontiguousarray(img), 8 if img.dtype == np.uint8 else 16


def _rescale(rgb: np.ndarray, from_bits: int, to_bits: int) -> np.ndarray:
    """Samples holding ``from_bits`` -> ``to_bits`` (8 or 16), rounded, full range kept."""
    dtype = np.uint8 if to_bits == 8 else np.uint16
    if from_bits == to_bits and rgb.dtype == dtype:
        return rgb
    scale = ((1 << to_bits) - 1) / ((1 << from_bits) - 1)
    return np.rint(rgb.astype(np.float32) * np.float32(scale)).clip(0, (1 << to_bits) - 1).astype(dtype)


def write_image(path: str | os.PathLike[str], rgb: np.ndarray, bit_depth: int) -> None:
    """Write ``rgb`` (H, W, 3) R'G'B' (or (H, W) grey), uint8 for ``bit_depth`` 8, else uint16
    holding ``bit_depth`` bits, to ``path``; the format follows the extension.

    PNG and TIFF get 16 bits per sample when ``bit_depth`` > 8 (a 10-bit value v is stored as
    v * 65535 / 1023), else 8. JPEG (quality 95), WebP (quality 95) and BMP hold 8 bits, so deeper
    input is rounded to 8. Writes to the path given (the caller makes it atomic). Raises
    :class:`EncodingError` for an unknown extension or a failed write.
    """
    name = os.fspath(path)
    ext = os.path.splitext(name)[1].lower()
    if ext not in STILL_SUFFIXES:
        raise EncodingError(
            "an image name ending " + ", ".join(sorted(STILL_SUFFIXES)),
            f"{name!r}",
            "choose one of those extensions",
        )
    if rgb.ndim not in (2, 3) or (rgb.ndim == 3 and rgb.shape[2] != 3):
        raise ValueError(f"expected an (H, W, 3) or (H, W) image, got shape {rgb.shape}")
    if not 8 <= bit_depth <= 16:
        raise ValueError(f"bit_depth must be 8..16, got {bit_depth}")
    out_bits = 16 if bit_depth > 8 and ext in SIXTEEN_BIT_STILLS else 8
    img = _rescale(rgb, bit_depth, out_bits)
    if img.ndim == 3:
        img = np.ascontiguousarray(img[..., ::-1])  # OpenCV stores B, G, R
    params: list[int] = []
    if ext in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    elif ext == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, WEBP_QUALITY]
    try:
        ok, buf = cv2.imencode(ext, img, params)
    except cv2.error as exc:
        raise EncodingError(
            f"an image OpenCV can encode as {ext}", str(exc).strip().splitlines()[-1], "try .png"
        ) from exc
    if not ok:
        raise EncodingError(f"an image OpenCV can encode as {ext}", "the encoder failed", "try .png")
    try:
        with open(name, "wb") as fh:
            fh.write(buf.tobytes())
    except OSError as exc:
        raise EncodingError(
            "a writable destination",
            f"{name}: {exc.strerror or exc}",
            "check the folder exists and is writable",
        ) from exc
