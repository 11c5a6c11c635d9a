"""Colour conversions shared by inference, training and evaluation: one implementation each.

Conventions:
- sRGB values are float in [0, 1] (D65 white, IEC 61966-2-1 transfer).
- CIE Lab: L in [0, 100], a* and b* raw (roughly -110..110 for sRGB colours).
- numpy functions take channels last (..., 3); torch functions take channels first (B, 3, H, W).
- Luma Y' is the gamma-encoded weighted sum of R'G'B' (BT.601 or BT.709 weights), in [0, 1] full
  range. A grey pixel has R' = G' = B' = Y', which is how luma is turned into L.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

Matrix = Literal["bt601", "bt709", "bt2020"]

# D65 reference white, XYZ with Y = 1.
WHITE_D65 = (0.95047, 1.0, 1.08883)
_RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    dtype=np.float64,
)
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
_EPS = 216.0 / 24389.0  # CIE epsilon: below it f(t) is linear
_KAPPA = 24389.0 / 27.0

#: BT.601 luma weights of R', G', B' (on gamma-encoded values): grey from colour everywhere.
BT601_RGB = (0.299, 0.587, 0.114)

# Kr, Kb of each luma matrix (Kg = 1 - Kr - Kb).
LUMA_WEIGHTS: dict[str, tuple[float, float]] = {
    "bt601": (0.299, 0.114),
    "bt709": (0.2126, 0.0722),
    "bt2020": (0.2627, 0.0593),
}


# --------------------------------------------------------------------------------------- numpy


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, dtype=np.float32)
    return np.where(c <= 0.04045, c / 12.92, ((np.maximum(c, 0.04045) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, dtype=np.float32)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * np.maximum(c, 0.0031308) ** (1.0 / 2.4) - 0.055)


def _f(t: np.ndarray) -> np.ndarray:
    return np.where(t > _EPS, np.cbrt(np.maximum(t, _EPS)), (_KAPPA * t + 16.0) / 116.0)


def _finv(f: np.ndarray) -> np.ndarray:
    f3 = f**3
    return np.where(f3 > _EPS, f3, (116.0 * f - 16.0) / _KAPPA)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB float (..., 3) in [0,1] -> Lab float32 (..., 3)."""
    lin = srgb_to_linear(rgb)
    xyz = lin @ _RGB_TO_XYZ.T.astype(np.float32)
    fx = _f(xyz[..., 0] / WHITE_D65[0])
    fy = _f(xyz[..., 1] / WHITE_D65[1])
    fz = _f(xyz[..., 2] / WHITE_D65[2])
    lab = np.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)
    return lab.astype(np.float32)


def lab_to_linear_rgb(lab: np.ndarray) -> np.ndarray:
    """Lab (..., 3) -> linear RGB float32 (..., 3), unclipped (out-of-gamut values leave [0,1])."""
    lab = np.asarray(lab, dtype=np.float32)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = fy - lab[..., 2] / 200.0
    xyz = np.stack([_finv(fx) * WHITE_D65[0], _finv(fy) * WHITE_D65[1], _finv(fz) * WHITE_D65[2]], axis=-1)
    return (xyz @ _XYZ_TO_RGB.T.astype(np.float32)).astype(np.float32)


def lab_to_rgb(lab: np.ndarray, clip: bool = True) -> np.ndarray:
    """Lab (..., 3) -> sRGB float32 (..., 3), clipped to [0,1] unless ``clip`` is False."""
    rgb = linear_to_srgb(np.clip(lab_to_linear_rgb(lab), 0.0, None))
    return np.clip(rgb, 0.0, 1.0) if clip else rgb


def grey_to_l(y: np.ndarray) -> np.ndarray:
    """Gamma-encoded grey level in [0,1] (any shape) -> CIE L in [0,100], float32.

    A grey sRGB pixel has relative luminance Y = linear(y), so L = 116 f(Y) - 16.
    """
    return (116.0 * _f(srgb_to_linear(y)) - 16.0).astype(np.float32)


def l_to_grey(L: np.ndarray) -> np.ndarray:
    """Inverse of :func:`grey_to_l`: CIE L in [0,100] -> grey level in [0,1], float32."""
    return linear_to_srgb(_finv((np.asarray(L, np.float32) + 16.0) / 116.0))


def rgb_to_yuv(rgb: np.ndarray, matrix: Matrix = "bt601") -> np.ndarray:
    """R'G'B' float (..., 3) in [0,1] -> Y'CbCr float32 (..., 3), Y in [0,1], Cb/Cr in [-0.5,0.5]."""
    kr, kb = LUMA_WEIGHTS[matrix]
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = kr * r + (1.0 - kr - kb) * g + kb * b
    cb = (b - y) / (2.0 * (1.0 - kb))
    cr = (r - y) / (2.0 * (1.0 - kr))
    return np.stack([y, cb, cr], axis=-1).astype(np.float32)


def yuv_to_rgb(yuv: np.ndarray, matrix: Matrix = "bt601") -> np.ndarray:
    """Y'CbCr float (..., 3) (Y in [0,1], Cb/Cr in [-0.5,0.5]) -> R'G'B' float32 (..., 3), unclipped."""
    kr, kb = LUMA_WEIGHTS[matrix]
    kg = 1.0 - kr - kb
    y, cb, cr = yuv[..., 0], yuv[..., 1], yuv[..., 2]
    r = y + 2.0 * (1.0 - kr) * cr
    b = y + 2.0 * (1.0 - kb) * cb
    g = (y - kr * r - kb * b) / kg
    return np.stack([r, g, b], axis=-1).astype(np.float32)


# --------------------------------------------------------------------------------------- torch


def _f_t(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > _EPS, torch.clamp(t, min=_EPS) ** (1.0 / 3.0), (_KAPPA * t + 16.0) / 116.0)


def _finv_t(f: torch.Tensor) -> torch.Tensor:
    f3 = f**3
    return torch.where(f3 > _EPS, f3, (116.0 * f - 16.0) / _KAPPA)


def rgb_to_lab_t(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB (B,3,H,W) float in [0,1] -> Lab (B,3,H,W) float32."""
    rgb = rgb.float()
    lin = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4)
    m = torch.as_tensor(_RGB_TO_XYZ, dtype=torch.float32, device=rgb.device)
    xyz = torch.einsum("ij,bjhw->bihw", m, lin)
    w = torch.tensor(WHITE_D65, dtype=torch.float32, device=rgb.device).view(1, 3, 1, 1)
    f = _f_t(xyz / w)
    L = 116.0 * f[:, 1:2] - 16.0
    a = 500.0 * (f[:, 0:1] - f[:, 1:2])
    b = 200.0 * (f[:, 1:2] - f[:, 2:3])
    return torch.cat([L, a, b], dim=1)


def lab_to_rgb_t(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """Lab (B,3,H,W) -> sRGB (B,3,H,W) float32 in [0,1] (clipped unless ``clip`` is False)."""
    lab = lab.float()
    fy = (lab[:, 0:1] + 16.0) / 116.0
    fx = fy + lab[:, 1:2] / 500.0
    fz = fy - lab[:, 2:3] / 200.0
    w = torch.tensor(WHITE_D65, dtype=torch.float32, device=lab.device).view(1, 3, 1, 1)
    xyz = torch.cat([_finv_t(fx), _finv_t(fy), _finv_t(fz)], dim=1) * w
    m = torch.as_tensor(_XYZ_TO_RGB, dtype=torch.float32, device=lab.device)
    lin = torch.einsum("ij,bjhw->bihw", m, xyz).clamp(min=0.0)
    rgb = torch.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)
    return rgb.clamp(0.0, 1.0) if clip else rgb


def grey_to_l_t(y: torch.Tensor) -> torch.Tensor:
    """Grey level in [0,1] (any shape) -> CIE L in [0,100]."""
    y = y.float()
    lin = torch.where(y <= 0.04045, y / 12.92, ((y.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4)
    return 116.0 * _f_t(lin) - 16.0
