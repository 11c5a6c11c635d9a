"""Stage [5]: the model's ab + the source's own luma -> output frame planes (DESIGN.md, contract 6).

For each frame:

1. ab (2, h, w) at the padded render size is cropped to the picture (``content``).
2. It is brought to the full frame size. With ``guide=True`` this is a *fast guided filter* (He,
   Sun and Tang, "Guided Image Filtering", TPAMI 2013; He and Sun, "Fast Guided Filter", 2015):
   the local linear model ``ab = A * g + B`` is fitted at render resolution against the source
   luma ``g`` shrunk to the same grid, ``A`` and ``B`` are enlarged bilinearly, and applied to the
   full-resolution luma. Colour edges thus snap to luma edges the model only saw blurred; where the
   colour is flat, ``A`` is 0 and this is plain bilinear enlargement. With ``guide=False`` it is
   bilinear enlargement.
3. The colour is CIE Lab with L from the source luma (``color.grey_to_l``) and the enlarged ab,
   turned into non-linear R'G'B' (sRGB transfer, BT.709 primaries -- or BT.2020 primaries when
   the matrix is BT.2020), clipped to the gamut in linear light.
4. Y'CbCr outputs: Cb and Cr of that colour with the source matrix, at the source range and bit
   depth, computed once per chroma sample: from f(Y) averaged over its 2x2 (4:2:0) or 2x1 (4:2:2)
   pixels and the coefficients of step 2 enlarged to the chroma grid, not per pixel and then
   averaged. The colour math then runs on a quarter (a half) of the pixels; the chroma differs from
   the per-pixel average only where the luma jumps inside a block, by far less than an encoder
   changes it (measured on real and generated 480p film: Cb/Cr PSNR 64-80 dB between the two,
   where libx264 at CRF 18 gives about 51). The Y plane is the source's own, bit for bit, so the
   output turned back to grey equals the input. RGB outputs (gbrp, rgb24, ...):
   R'G'B' rebuilt from the source luma and that chroma, with the chroma scaled down just enough to
   stay in gamut, so their luma (with the source matrix) is the source luma up to rounding.

Everything runs in float32, with OpenCV doing the full-resolution arithmetic in horizontal strips
of ``STRIP_ROWS`` rows so that the temporaries stay in the CPU cache, and without branches
(``np.where``) in the per-pixel colour math.

(Over 400 lines: the strip-wise full-resolution arithmetic, the guided upsampling and the
per-format plane packing share their buffers; split, they would copy them.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from vidcolor.color import LUMA_WEIGHTS, WHITE_D65

GUIDE_RADIUS = 3  # render pixels: the guided filter's window is (2r+1)^2 at render resolution
GUIDE_EPS = 4e-4  # in (f(Y))^2 units: edges weaker than a std of ~0.02 (~2.3 L) are not followed
STRIP_ROWS = 32  # full-resolution rows per strip (even, so chroma rows pair up)

# Luma weights (Kr, Kb) by FFmpeg colour-space name, beyond the three of vidcolor.color.
_MATRIX_ALIASES = {
    "bt601": "bt601",
    "smpte170m": "bt601",
    "bt470bg": "bt601",
    "bt709": "bt709",
    "bt2020": "bt2020",
    "bt2020nc": "bt2020",
    "bt2020_ncl": "bt2020",
    "bt2020c": "bt2020",  # constant-luminance BT.2020 is treated as its non-constant form
    "bt2020_cl": "bt2020",
    "smpte240m": "smpte240m",
    "fcc": "fcc",
}
_EXTRA_WEIGHTS = {"smpte240m": (0.212, 0.087), "fcc": (0.30, 0.11)}
_UNKNOWN = {"", "unknown", "unspecified", "reserved", "rgb", "gbr", "ycgco", "ycocg"}

# Chromaticities (x, y) of the primaries.
_PRIMARIES = {
    "bt709": ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060)),
    "bt2020": ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046)),
}
_DELTA = 6.0 / 29.0  # CIE f(t): cube root above DELTA^3, tangent line below
_SRGB_KNEE = 0.0031308  # linear light: sRGB transfer is linear below this


def resolve_matrix(name: str | None, height: int) -> str:
    """FFmpeg colour-space name -> a key of the luma weights: "bt601", "bt709", "bt2020", ...

    Unknown or unset matrices follow the usual player convention: BT.601 below 720 lines (SD),
    BT.709 from 720 lines up.
    """
    key = (name or "").strip().lower()
    if key in _MATRIX_ALIASES:
        return _MATRIX_ALIASES[key]
    if key in _UNKNOWN:
        return "bt601" if height < 720 else "bt709"
    raise ValueError(f"unknown colour matrix {name!r}")


def _weights(matrix: str) -> tuple[float, float]:
    return _EXTRA_WEIGHTS.get(matrix) or LUMA_WEIGHTS[matrix]


@dataclass(frozen=True)
class PixFmt:
    """What merge needs to know of an output pixel format."""

    name: str
    family: str  # "yuv" (planar Y, U, V), "gbrp" (planar G, B, R) or "rgb" (packed R, G, B)
    bits: int  # 8..16
    sub_x: int  # chroma subsampling factor across (1 or 2; yuv only)
    sub_y: int  # down (1 or 2)

    @property
    def dtype(self) -> type[np.unsignedinteger]:
        return np.uint8 if self.bits == 8 else np.uint16


_YUV = {
    "yuv420p": (2, 2),
    "yuv422p": (2, 1),
    "yuv444p": (1, 1),
    "yuvj420p": (2, 2),
    "yuvj422p": (2, 1),
    "yuvj444p": (1, 1),
}


@lru_cache(maxsize=64)
def parse_pix_fmt(name: str) -> PixFmt:
    """Parse the output pix_fmts merge supports: yuv420p, yuv422p, yuv444p (and their yuvj forms)
    with optional 10/12/16-bit ``le`` suffixes, gbrp (and gbrp10le/12le/16le), rgb24, rgb48le."""
    if name == "rgb24":
        return PixFmt(name, "rgb", 8, 1, 1)
    if name == "rgb48le":
        return PixFmt(name, "rgb", 16, 1, 1)
    m = re.fullmatch(r"(yuvj?(?:420|422|444)p|gbrp)(?:(9|10|12|14|16)le)?", name)
    if m is None or (m.group(1) not in _YUV and m.group(1) != "gbrp"):
        raise ValueError(f"unsupported output pix_fmt {name!r}")
    bits = int(m.group(2) or 8)
    if m.group(1) == "gbrp":
        return PixFmt(name, "gbrp", bits, 1, 1)
    if m.group(1).startswith("yuvj") and bits != 8:
        raise ValueError(f"unsupported output pix_fmt {name!r}")
    sx, sy = _YUV[m.group(1)]
    return PixFmt(name, "yuv", bits, sx, sy)


# ------------------------------------------------------------------------------ colour tables


@lru_cache(maxsize=16)
def _fy_lut(entries: int, bit_depth: int, full_range: bool) -> np.ndarray:
    """Code value -> (f(Y), grey level): float32 (entries, 2). f(Y) = (L + 16) / 116 of the grey."""
    from vidcolor.stages.batch_l import y_to_l  # the very same L as the model saw

    codes = np.arange(entries, dtype=np.uint16 if entries > 256 else np.uint8)
    L = y_to_l(codes, bit_depth, full_range)
    scale = float(1 << (bit_depth - 8))
    if full_range:
        grey = codes.astype(np.float64) / float((1 << bit_depth) - 1)
    else:
        grey = (codes.astype(np.float64) - 16.0 * scale) / (219.0 * scale)
    lut = np.stack([(L + 16.0) / 116.0, np.clip(grey, 0.0, 1.0)], axis=-1).astype(np.float32)
    lut.setflags(write=False)
    return lut


def _lookup(y: np.ndarray, bit_depth: int, full_range: bool, column: int) -> np.ndarray:
    if y.dtype == np.uint8:
        if bit_depth != 8:
            raise ValueError(f"a uint8 luma plane must be 8-bit, got bit_depth={bit_depth}")
        return cv2.LUT(y, _fy_lut(256, 8, bool(full_range))[:, column].copy())
    if y.dtype == np.uint16 and 8 < bit_depth <= 16:
        return np.take(_fy_lut(65536, bit_depth, bool(full_range))[:, column], y)
    raise ValueError(f"luma plane must be uint8 (8-bit) or uint16 (9..16-bit), got {y.dtype}, {bit_depth}")


def _source_f(y: np.ndarray, bit_depth: int, full_range: bool) -> np.ndarray:
    """f(Y) = (L + 16) / 116 of every source pixel, float32 (H, W)."""
    return _lookup(y, bit_depth, full_range, 0)


def _source_grey(y: np.ndarray, bit_depth: int, full_range: bool) -> np.ndarray:
    """The source luma Y' as a full-range level in [0, 1], float32 (H, W)."""
    return _lookup(y, bit_depth, full_range, 1)


def _rgb_to_xyz(primaries: str) -> np.ndarray:
    """RGB -> XYZ (Y of white = 1) of a set of primaries with a D65 white, float64 (3, 3)."""
    xy = np.array(_PRIMARIES[primaries], dtype=np.float64)
    xyz = np.stack([xy[:, 0] / xy[:, 1], np.ones(3), (1.0 - xy[:, 0] - xy[:, 1]) / xy[:, 1]])
    white = np.array(WHITE_D65, dtype=np.float64)
    return xyz * np.linalg.solve(xyz, white)[None, :]


@lru_cache(maxsize=8)
def _f_to_linear_rgb(primaries: str) -> np.ndarray:
    """(f(X/Xn), f(Y), f(Z/Zn)) cubed -> linear RGB: XYZ->RGB with the white folded in, float32 (3, 3)."""
    m = np.linalg.inv(_rgb_to_xyz(primaries)) @ np.diag(WHITE_D65)
    return m.astype(np.float32)


@lru_cache(maxsize=32)
def _cbcr_matrix(matrix: str, scale: float, offset: float) -> np.ndarray:
    """R'G'B' -> (Cb, Cr, 0) * scale + offset, as a cv2.transform affine matrix float32 (3, 4).

    The third output is a dummy: cv2.transform is about 9x faster with as many outputs as inputs.
    """
    kr, kb = _weights(matrix)
    kg = 1.0 - kr - kb
    cb = np.array([-kr, -kg, 1.0 - kb]) / (2.0 * (1.0 - kb))
    cr = np.array([1.0 - kr, -kg, -kb]) / (2.0 * (1.0 - kr))
    rows = [[*(cb * scale), offset], [*(cr * scale), offset], [0.0, 0.0, 0.0, 0.0]]
    return np.array(rows, dtype=np.float32)


# ------------------------------------------------------------------------------ ab to full size


def _ab_full(
    ab: np.ndarray,
    content: tuple[int, int],
    f_full: np.ndarray,
    guide: bool,
    radius: int,
    eps: float,
    size: tuple[int, int],
) -> tuple[np.ndarray | None, np.ndarray]:
    """ab enlarged to ``size`` = (height, width) (the frame's, or its chroma grid's), folded into
    the Lab -> f(X), f(Y), f(Z) step: returns ``(A3, B3)``, float32 (height, width, 3) each, such
    that (f_x, f_y, f_z) = A3 * f + B3 with f = f(Y) of the source at that grid (f_x = f + a/500,
    f_z = f - b/200). ``A3`` is None when it is 1 everywhere (not guided). The guided filter's
    coefficients are fitted against ``f_full``, the full-resolution f(Y)."""
    coef = _ab_coefficients(ab, content, f_full, guide, radius, eps)
    height, width = size
    zero = np.zeros(coef.shape[:2], np.float32)
    if coef.shape[2] == 2:
        a3, b3 = None, cv2.merge([coef[..., 0] / 500.0, zero, coef[..., 1] / -200.0])
    else:
        a3 = cv2.merge([1.0 + coef[..., 0] / 500.0, zero + 1.0, 1.0 - coef[..., 1] / 200.0])
        b3 = cv2.merge([coef[..., 2] / 500.0, zero, coef[..., 3] / -200.0])

    def enlarge(x: np.ndarray) -> np.ndarray:
        if x.shape[:2] == (height, width):
            return x
        return cv2.resize(x, (width, height), interpolation=cv2.INTER_LINEAR)

    return (None if a3 is None else enlarge(a3)), enlarge(b3)


def _shrink(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """Resize a float32 plane to (h, w): area-average by the largest whole factor (OpenCV's fast
    path), then bilinear for the remainder (or bilinear only, when enlarging)."""
    full_h, full_w = x.shape
    if (h, w) == (full_h, full_w):
        return x
    k = min(full_h // h, full_w // w)
    if k >= 2:
        x = cv2.resize(x, (-(-full_w // k), -(-full_h // k)), interpolation=cv2.INTER_AREA)
    if x.shape == (h, w):
        return x
    return cv2.resize(x, (w, h), interpolation=cv2.INTER_LINEAR)


def _ab_coefficients(
    ab: np.ndarray, content: tuple[int, int], f_full: np.ndarray, guide: bool, radius: int, eps: float
) -> np.ndarray:
    """Per-pixel linear model of ab on f(Y) at render resolution: float32 (ch, cw, 4) holding
    (A_a, A_b, B_a, B_b) with ab = A * f + B, or (ch, cw, 2) holding ab itself when not guided."""
    ch, cw = content
    if ab.ndim != 3 or ab.shape[0] != 2 or ab.shape[1] < ch or ab.shape[2] < cw or min(ch, cw) < 1:
        raise ValueError(f"expected ab (2, h, w) holding the {ch}x{cw} content, got {ab.shape}")
    p = cv2.merge(
        [np.ascontiguousarray(ab[0, :ch, :cw], np.float32), np.ascontiguousarray(ab[1, :ch, :cw], np.float32)]
    )
    if not guide:
        return p
    g = _shrink(f_full, ch, cw)
    k = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, k, borderType=cv2.BORDER_REFLECT)

    mean_g = box(g)
    var_g = box(g * g) - mean_g * mean_g
    mean_p = box(p)
    g2 = cv2.merge([g, g])
    mean_g2 = cv2.merge([mean_g, mean_g])
    cov = box(g2 * p) - mean_g2 * mean_p
    a = cov / cv2.merge([var_g, var_g]) if eps <= 0 else cov / (cv2.merge([var_g, var_g]) + np.float32(eps))
    b = mean_p - a * mean_g2
    return cv2.merge([box(a), box(b)])


# ------------------------------------------------------------------------------ colour of a strip


def _flat(x: np.ndarray) -> np.ndarray:
    """(r, W, c) -> a single-channel (r, W*c) view, for element-wise work that must treat every
    channel alike (OpenCV applies a Python scalar to channel 0 only of a multi-channel array)."""
    return x.reshape(x.shape[0], -1)


def _linear_to_srgb_(c: np.ndarray) -> np.ndarray:
    """In place on a single-channel c >= 0: sRGB transfer, branch-free (the linear toe below the
    knee is added as a correction term; the two pieces meet at the knee)."""
    toe = c - np.float32(_SRGB_KNEE)
    np.minimum(toe, np.float32(0.0), out=toe)
    np.maximum(c, np.float32(_SRGB_KNEE), out=c)
    cv2.log(c, dst=c)
    c *= np.float32(1.0 / 2.4)
    cv2.exp(c, dst=c)
    cv2.addWeighted(c, 1.055, toe, 12.92, -0.055, dst=c)
    return c


def _strip_rgb(f: np.ndarray, A3: np.ndarray | None, B3: np.ndarray, f_to_rgb: np.ndarray) -> np.ndarray:
    """Rows of a grid (the frame's or its chroma's): f(Y) (r, W) and the (r, W, 3) maps of
    :func:`_ab_full` -> R'G'B' (r, W, 3) float32 in [0, 1]."""
    f3 = cv2.merge([f, f, f])
    F = cv2.multiply(f3, A3) if A3 is not None else f3
    F += B3  # (f_x, f_y, f_z)
    # f^-1: t^3 above DELTA, the tangent line at DELTA below it (branch-free)
    flat = _flat(F)
    toe = flat - np.float32(_DELTA)
    np.minimum(toe, np.float32(0.0), out=toe)
    np.maximum(flat, np.float32(_DELTA), out=flat)
    cube = cv2.multiply(flat, flat)
    cv2.multiply(cube, flat, dst=cube)
    cv2.scaleAdd(toe, 3.0 * _DELTA * _DELTA, cube, dst=cube)
    rgb = cv2.transform(cube.reshape(F.shape), f_to_rgb)
    flat = _flat(rgb)
    np.clip(flat, np.float32(0.0), np.float32(1.0), out=flat)
    _linear_to_srgb_(flat)
    return rgb


def _halve(x: np.ndarray, sub_x: int, sub_y: int) -> np.ndarray:
    """Average sub_y x sub_x blocks of (r, W) or (r, W, c); an odd last row/column averages with itself."""
    if sub_x == 1 and sub_y == 1:
        return x
    r, w = x.shape[:2]
    pad_r, pad_w = (sub_y - r % sub_y) % sub_y, (sub_x - w % sub_x) % sub_x
    if pad_r or pad_w:
        x = cv2.copyMakeBorder(x, 0, pad_r, 0, pad_w, cv2.BORDER_REPLICATE)
    return cv2.resize(x, ((w + pad_w) // sub_x, (r + pad_r) // sub_y), interpolation=cv2.INTER_AREA)


def _quantise(x: np.ndarray, top: int, dtype: type[np.unsignedinteger]) -> np.ndarray:
    np.clip(x, 0.0, float(top), out=x)
    np.rint(x, out=x)
    return x.astype(dtype)


def _keep_in_gamut(grey: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    """R'G'B' = grey + t * chroma with the largest t in [0, 1] that keeps every channel in [0, 1].

    ``grey`` (r, W) is the source luma Y' in [0, 1]; ``chroma`` (r, W, 3) is R'G'B' - Y' of the
    wanted colour, which has zero luma, so every t keeps the luma at Y': a colour that does not
    fit is desaturated, never brightened or darkened. The room above is (1 - Y') / max(chroma),
    below Y' / max(-chroma), the same for all three channels."""
    c0, c1, c2 = chroma[..., 0], chroma[..., 1], chroma[..., 2]
    tiny = np.float32(1e-12)
    up = np.maximum(np.maximum(np.maximum(c0, c1), c2), tiny)
    down = np.maximum(-np.minimum(np.minimum(c0, c1), c2), tiny)
    t = np.minimum((1.0 - grey) / up, grey / down)
    np.minimum(t, np.float32(1.0), out=t)
    out = chroma * t[..., None]
    out += grey[..., None]
    return np.clip(out, 0.0, 1.0, out=out)


# ------------------------------------------------------------------------------ public API


def merge_frame(
    y: np.ndarray,
    ab: np.ndarray,
    content: tuple[int, int],
    *,
    bit_depth: int,
    full_range: bool,
    matrix: str,
    pix_fmt: str,
    guide: bool = True,
    guide_radius: int = GUIDE_RADIUS,
    guide_eps: float = GUIDE_EPS,
) -> tuple[np.ndarray, ...]:
    """Colour one frame and return the planes of ``pix_fmt``.

    ``y``: the source luma (H, W), uint8 for 8-bit, uint16 holding ``bit_depth`` bits otherwise.
    ``ab``: float32 (2, h, w) raw a*b* at the padded render size, ``content`` = (h', w') of the
    picture inside it (top-left). ``matrix``: FFmpeg colour-space name (see :func:`resolve_matrix`).

    Returns, for "yuv*" formats, ``(Y, U, V)``: Y is ``y`` itself when the pix_fmt has the source
    bit depth (the same array; shifted left, which ``>>`` undoes exactly, for a deeper pix_fmt);
    U and V are (ceil(H/sy), ceil(W/sx)) in the source range. For "gbrp*" ``(G, B, R)``, for
    "rgb24"/"rgb48le" one packed (H, W, 3) array; RGB outputs are full range. Planes are uint8 for
    8-bit pix_fmts and uint16 (native range, e.g. 0..1023) for deeper ones.
    """
    fmt = parse_pix_fmt(pix_fmt)
    if y.ndim != 2:
        raise ValueError(f"expected a luma plane (H, W), got shape {y.shape}")
    if fmt.family == "yuv" and fmt.bits < bit_depth:
        raise ValueError(f"pix_fmt {pix_fmt} holds fewer bits than the {bit_depth}-bit source luma")
    mat = resolve_matrix(matrix, y.shape[0])
    f_full = _source_f(y, bit_depth, full_range)
    height, width = y.shape
    f_to_rgb = _f_to_linear_rgb("bt2020" if mat == "bt2020" else "bt709")
    top = (1 << fmt.bits) - 1

    if fmt.family == "yuv":
        s = float(1 << (fmt.bits - 8))
        scale, offset = (224.0 * s, 128.0 * s) if not full_range else (float(top), float(1 << (fmt.bits - 1)))
        cbcr_m = _cbcr_matrix(mat, scale, offset)
        ch_h, ch_w = -(-height // fmt.sub_y), -(-width // fmt.sub_x)
        f_chroma = _halve(f_full, fmt.sub_x, fmt.sub_y)  # the mean f(Y) under each chroma sample
        A, B = _ab_full(ab, content, f_full, guide, guide_radius, guide_eps, (ch_h, ch_w))
        cbcr = np.empty((ch_h, ch_w, 3), np.float32)  # (Cb, Cr, unused)
        for r0 in range(0, ch_h, STRIP_ROWS):
            r1 = min(ch_h, r0 + STRIP_ROWS)
            rgb = _strip_rgb(f_chroma[r0:r1], None if A is None else A[r0:r1], B[r0:r1], f_to_rgb)
            cbcr[r0:r1] = cv2.transform(rgb, cbcr_m)
        q = _quantise(cbcr, top, fmt.dtype)
        u, v = np.ascontiguousarray(q[..., 0]), np.ascontiguousarray(q[..., 1])
        if fmt.bits == bit_depth:
            y_out = y
        else:
            y_out = y.astype(np.uint16) << np.uint16(fmt.bits - bit_depth)
        return y_out, u, v

    # RGB outputs: source luma + the chroma of the Lab colour, kept in gamut.
    A, B = _ab_full(ab, content, f_full, guide, guide_radius, guide_eps, (height, width))
    grey = _source_grey(y, bit_depth, full_range)
    rgb_full = _rgb_from_luma(f_full, grey, A, B, f_to_rgb, mat)
    q = _quantise(rgb_full * np.float32(top), top, fmt.dtype)
    if fmt.family == "rgb":
        return (q,)
    return np.ascontiguousarray(q[..., 1]), np.ascontiguousarray(q[..., 2]), np.ascontiguousarray(q[..., 0])


def _rgb_from_luma(
    f_full: np.ndarray,
    grey: np.ndarray,
    A: np.ndarray | None,
    B: np.ndarray,
    f_to_rgb: np.ndarray,
    matrix: str,
) -> np.ndarray:
    """R'G'B' float32 (H, W, 3) in [0, 1] whose luma (``matrix`` weights) is the source grey."""
    kr, kb = _weights(matrix)
    # R'G'B' -> (R'-Y', G'-Y', B'-Y'): the chroma of a colour, zero luma
    to_chroma = np.eye(3, dtype=np.float32) - np.array([[kr, 1 - kr - kb, kb]] * 3, np.float32)
    out = np.empty((*grey.shape, 3), np.float32)
    for r0 in range(0, grey.shape[0], STRIP_ROWS):
        r1 = min(grey.shape[0], r0 + STRIP_ROWS)
        rgb = _strip_rgb(f_full[r0:r1], None if A is None else A[r0:r1], B[r0:r1], f_to_rgb)
        out[r0:r1] = _keep_in_gamut(grey[r0:r1], cv2.transform(rgb, to_chroma))
    return out


def merge_rgb(
    y: np.ndarray,
    ab: np.ndarray,
    content: tuple[int, int],
    bit_depth: int,
    *,
    full_range: bool = True,
    guide: bool = True,
    keep_luma: bool = True,
) -> np.ndarray:
    """Colour a still: sRGB (H, W, 3), uint8 when ``bit_depth`` is 8, else uint16 in 0..2^bit_depth-1.

    ``y`` is the picture's luma as :func:`vidcolor.media.image_io.read_image` gives it (BT.601
    weights for RGB files). With ``keep_luma`` (the default) the output's BT.601 luma is the
    source luma: the chroma of the Lab colour (L from the source, the model's ab) is put on the
    source luma and scaled down where needed to stay in gamut, so turning the result grey with the
    usual BT.601 weights gives back the input (to within one code value of rounding). Without it,
    the output is the Lab colour itself clipped to the sRGB gamut, whose CIE L, not luma, follows
    the source.
    """
    if y.ndim != 2:
        raise ValueError(f"expected a luma plane (H, W), got shape {y.shape}")
    f_full = _source_f(y, bit_depth, full_range)
    A, B = _ab_full(ab, content, f_full, guide, GUIDE_RADIUS, GUIDE_EPS, y.shape)
    f_to_rgb = _f_to_linear_rgb("bt709")
    if keep_luma:
        rgb = _rgb_from_luma(f_full, _source_grey(y, bit_depth, full_range), A, B, f_to_rgb, "bt601")
    else:
        rgb = _strip_rgb(f_full, A, B, f_to_rgb)
    top = (1 << bit_depth) - 1
    return _quantise(rgb * np.float32(top), top, np.uint8 if bit_depth == 8 else np.uint16)
