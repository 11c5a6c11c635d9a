"""Quality metrics for colorization: fidelity (PSNR, CIEDE2000), vividness (colourfulness) and
temporal stability (CDC).

Conventions (see vidcolor.color): RGB is sRGB, Lab is CIE L*a*b* under D65 with L in [0, 100] and
raw a*, b*. Arrays are channels last. Everything is vectorised numpy; per-pixel work is float32,
sums over pixels are float64 so long clips do not lose precision.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

# Peak used by psnr_ab: a* and b* of sRGB colours span about -110..110.
AB_PEAK = 220.0
# Bins per channel of the CDC histograms and the log base of its divergence: those of the reference
# implementation of Liu et al. (TCVC, 2021), also used by the NTIRE 2023 video colorization challenge,
# so that values compare with published ones.
CDC_BINS = 256
CDC_LOG_BASE = math.e


# ------------------------------------------------------------------------------------ fidelity


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error of two arrays of the same shape (any dtype), in their own units squared."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"mse needs arrays of the same shape, got {a.shape} and {b.shape}")
    d = a.astype(np.float32) - b.astype(np.float32)
    return float(np.mean(np.square(d), dtype=np.float64))


def psnr_from_mse(err: float, peak: float, max_db: float | None = None) -> float:
    """PSNR in dB of a mean squared error ``err`` for signals of range ``peak``.

    ``err == 0`` gives ``inf``, or ``max_db`` when given (a cap keeps means over items finite).
    """
    if err <= 0.0:
        return math.inf if max_db is None else float(max_db)
    db = 10.0 * math.log10(peak * peak / err)
    return db if max_db is None else min(db, float(max_db))


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0, max_db: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB of two arrays of the same shape.

    ``peak`` is the range of the signal: 1.0 for float RGB in [0, 1], 255 for uint8. Identical inputs
    give ``inf`` (or ``max_db`` when given).
    """
    return psnr_from_mse(mse(a, b), peak, max_db)


def psnr_ab(
    lab_pred: np.ndarray, lab_true: np.ndarray, peak: float = AB_PEAK, max_db: float | None = None
) -> float:
    """PSNR in dB on the a*b* channels only of two Lab arrays (..., 3), with peak ``AB_PEAK`` (220).

    L is left out: a colorizer keeps the source's luma, so only the chroma it invents is measured.
    """
    return psnr(np.asarray(lab_pred)[..., 1:], np.asarray(lab_true)[..., 1:], peak, max_db)


def _pow7(x: np.ndarray) -> np.ndarray:
    # Three multiplications: x**7 goes through the generic pow and takes most of the time otherwise.
    x2 = x * x
    return x2 * x2 * x2 * x


def _hue_degrees(b: np.ndarray, a: np.ndarray) -> np.ndarray:
    h = np.degrees(np.arctan2(b, a))
    return np.where(h < 0.0, h + 360.0, h)  # a branch is much cheaper than % on floats


def ciede2000(
    lab1: np.ndarray, lab2: np.ndarray, kL: float = 1.0, kC: float = 1.0, kH: float = 1.0
) -> np.ndarray:
    """CIEDE2000 colour difference per pixel, following Sharma, Wu and Dalal (2005) exactly.

    lab1, lab2: Lab (..., 3) float (broadcastable to each other). Returns float32 (...): Delta E00,
    where about 1 is a just-noticeable difference and 2.3 a clearly visible one. ``kL, kC, kH`` are
    the parametric weights (1 for the reference conditions).
    """
    lab1 = np.asarray(lab1, dtype=np.float32)
    lab2 = np.asarray(lab2, dtype=np.float32)
    L1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    L2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]

    # a* is stretched so that near-neutral colours get hue differences closer to what is seen.
    c_mean = 0.5 * (np.hypot(a1, b1) + np.hypot(a2, b2))
    c7 = _pow7(c_mean)
    g = 0.5 * (1.0 - np.sqrt(c7 / (c7 + np.float32(25.0**7))))
    a1p = (1.0 + g) * a1
    a2p = (1.0 + g) * a2
    c1p = np.hypot(a1p, b1)
    c2p = np.hypot(a2p, b2)
    # Hue angle in degrees in [0, 360); arctan2(0, 0) is 0, which is the convention of the paper.
    h1p = _hue_degrees(b1, a1p)
    h2p = _hue_degrees(b2, a2p)

    dLp = L2 - L1
    dCp = c2p - c1p
    cc = c1p * c2p
    neutral = cc == 0.0  # either colour has no hue: hue difference 0, mean hue = the sum
    dh = h2p - h1p
    dh = np.where(dh > 180.0, dh - 360.0, np.where(dh < -180.0, dh + 360.0, dh))
    dh = np.where(neutral, 0.0, dh)
    dHp = 2.0 * np.sqrt(cc) * np.sin(np.radians(0.5 * dh))

    Lp_mean = 0.5 * (L1 + L2)
    Cp_mean = 0.5 * (c1p + c2p)
    h_sum = h1p + h2p
    far = np.abs(h1p - h2p) > 180.0  # the two hues straddle 0 degrees: average the short way round
    h_mean = np.where(far, np.where(h_sum < 360.0, h_sum + 360.0, h_sum - 360.0), h_sum) * 0.5
    h_mean = np.where(neutral, h_sum, h_mean)

    rad = np.float32(math.pi / 180.0)
    T = (
        1.0
        - 0.17 * np.cos((h_mean - 30.0) * rad)
        + 0.24 * np.cos(2.0 * h_mean * rad)
        + 0.32 * np.cos((3.0 * h_mean + 6.0) * rad)
        - 0.20 * np.cos((4.0 * h_mean - 63.0) * rad)
    )
    d_theta = 30.0 * np.exp(-np.square((h_mean - 275.0) / 25.0))
    cp7 = _pow7(Cp_mean)
    Rc = 2.0 * np.sqrt(cp7 / (cp7 + np.float32(25.0**7)))
    l50 = np.square(Lp_mean - 50.0)
    Sl = 1.0 + 0.015 * l50 / np.sqrt(20.0 + l50)
    Sc = 1.0 + 0.045 * Cp_mean
    Sh = 1.0 + 0.015 * Cp_mean * T
    Rt = -np.sin(2.0 * d_theta * rad) * Rc

    tl = dLp / (kL * Sl)
    tc = dCp / (kC * Sc)
    th = dHp / (kH * Sh)
    de = np.sqrt(np.maximum(tl * tl + tc * tc + th * th + Rt * tc * th, 0.0))
    return de.astype(np.float32, copy=False)


# ------------------------------------------------------------------------------------ vividness


def colourfulness(rgb: np.ndarray) -> float:
    """Colourfulness M of Hasler and Suesstrunk (2003) of one image.

    rgb: (H, W, 3) sRGB in the 0..255 scale (uint8, or float already scaled to 0..255; the metric's
    published scale of about 0 "not colourful" .. 109+ "extremely colourful" assumes it).
    With rg = R - G and yb = (R + G)/2 - B: M = sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2).
    A grey image gives 0.
    """
    x = np.asarray(rgb, dtype=np.float32)
    if x.ndim < 1 or x.shape[-1] != 3:
        raise ValueError(f"colourfulness needs (..., 3) RGB, got shape {x.shape}")
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    rg = (r - g).ravel()
    yb = (0.5 * (r + g) - b).ravel()
    m_rg, m_yb = float(rg.mean(dtype=np.float64)), float(yb.mean(dtype=np.float64))
    s_rg, s_yb = float(rg.std(dtype=np.float64)), float(yb.std(dtype=np.float64))
    return math.hypot(s_rg, s_yb) + 0.3 * math.hypot(m_rg, m_yb)


# ------------------------------------------------------------------------------------ stability


def channel_histograms(rgb: np.ndarray, bins: int = CDC_BINS) -> np.ndarray:
    """Normalised histogram of each channel of a uint8 image.

    rgb: (H, W, C) uint8. Returns float64 (C, bins), each row summing to 1; bins split 0..255 evenly
    (``bins`` must divide 256).
    """
    x = np.asarray(rgb)
    if x.dtype != np.uint8 or x.ndim != 3:
        raise ValueError(f"channel_histograms needs (H, W, C) uint8, got {x.dtype} {x.shape}")
    if bins <= 0 or 256 % bins:
        raise ValueError(f"bins must divide 256, got {bins}")
    c = x.shape[2]
    shift = int(math.log2(256 // bins))  # 256 levels -> bins: drop low bits
    q = x.reshape(-1, c) >> shift
    # One bincount for all channels: channel k's bins live at k*bins .. (k+1)*bins - 1.
    idx = q.astype(np.int64) + np.arange(c, dtype=np.int64) * bins
    h = np.bincount(idx.ravel(), minlength=c * bins).reshape(c, bins).astype(np.float64)
    return h / float(x.shape[0] * x.shape[1])


def js_divergence(p: np.ndarray, q: np.ndarray, base: float = CDC_LOG_BASE) -> np.ndarray:
    """Jensen-Shannon divergence of distributions along the last axis: float64 (...).

    p, q: (..., bins) non-negative, each summing to 1. In units of log ``base`` (nats for e, bits
    for 2; at most ln 2 or 1 respectively). Empty bins contribute 0 (0 log 0 = 0).
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    m = 0.5 * (p + q)

    def kl(x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(x > 0.0, x * np.log(x / np.where(m > 0.0, m, 1.0)), 0.0)
        return t.sum(axis=-1)

    return (0.5 * kl(p) + 0.5 * kl(q)) / math.log(base)


class CDCAccumulator:
    """Streaming colour-distribution consistency: push frames in order, read ``value()``.

    Keeps only the histograms of the last ``step`` frames, so memory does not grow with the clip.
    """

    def __init__(self, bins: int = CDC_BINS, base: float = CDC_LOG_BASE, step: int = 1) -> None:
        if step < 1:
            raise ValueError(f"step must be >= 1, got {step}")
        self.bins, self.base, self.step = bins, base, step
        self._recent: list[np.ndarray] = []
        self._sum = 0.0
        self._pairs = 0

    def push(self, rgb: np.ndarray) -> None:
        """Add the next frame: (H, W, 3) uint8 RGB."""
        h = channel_histograms(rgb, self.bins)
        if len(self._recent) == self.step:
            self._sum += float(js_divergence(self._recent.pop(0), h, self.base).mean())
            self._pairs += 1
        self._recent.append(h)

    @property
    def pairs(self) -> int:
        """Number of frame pairs measured so far."""
        return self._pairs

    def value(self) -> float:
        """Mean over pairs (t, t+step) and over channels of the JS divergence; NaN with no pair."""
        return self._sum / self._pairs if self._pairs else math.nan


def cdc(
    frames_rgb: Iterable[np.ndarray], bins: int = CDC_BINS, base: float = CDC_LOG_BASE, step: int = 1
) -> float:
    """Colour-distribution consistency of a clip (Liu et al. 2021, "Temporally consistent video
    colorization with deep feature propagation and self-regularization learning").

    frames_rgb: (H, W, 3) uint8 frames in order (any iterable; consumed once). For each pair of frames
    (t, t + step) the Jensen-Shannon divergence of each channel's histogram (``bins`` bins over
    0..255, log ``base``; defaults are the reference implementation's: 256 bins, natural log) is
    taken; CDC is the mean over channels and pairs. Lower is steadier; identical frames give 0.
    Fewer than step + 1 frames give NaN.
    """
    acc = CDCAccumulator(bins, base, step)
    for f in frames_rgb:
        acc.push(f)
    return acc.value()
