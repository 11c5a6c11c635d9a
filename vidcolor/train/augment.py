"""Augmentations that suit old film, and sampled colour hints.

The target colours always come from the clean picture; only the lightness the network sees is
degraded (contrast and gamma drift, grain, softness), so it learns to colour worn film as it would
colour a clean photograph.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vidcolor.color import rgb_to_lab


@dataclass(frozen=True)
class AugmentConfig:
    crop: int = 144  # output side, pixels
    scale: tuple[float, float] = (0.15, 1.0)  # crop area as a fraction of the picture
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    gamma: tuple[float, float] = (0.75, 1.35)  # applied to L/100
    contrast: tuple[float, float] = (0.75, 1.25)
    brightness: float = 6.0  # +- L units
    grain: tuple[float, float] = (0.0, 4.0)  # std of Gaussian grain, L units
    blur_p: float = 0.3
    blur_sigma: tuple[float, float] = (0.3, 1.2)  # pixels
    hint_p_none: float = 0.6  # probability that a sample gets no hints at all
    hint_geom_p: float = 0.125  # number of hints ~ Geometric(p) when there are some
    hint_max: int = 40


def random_resized_crop(rgb: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """A random crop of random area and aspect, resized to (crop, crop), randomly mirrored."""
    h, w = rgb.shape[:2]
    area = h * w
    for _ in range(10):
        target = area * rng.uniform(*cfg.scale)
        ar = np.exp(rng.uniform(np.log(cfg.ratio[0]), np.log(cfg.ratio[1])))
        cw, ch = int(round(np.sqrt(target * ar))), int(round(np.sqrt(target / ar)))
        if 0 < cw <= w and 0 < ch <= h:
            break
    else:
        ch = cw = min(h, w)
    y0, x0 = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    crop = rgb[y0 : y0 + ch, x0 : x0 + cw]
    interp = cv2.INTER_AREA if ch > cfg.crop else cv2.INTER_LINEAR
    out = cv2.resize(crop, (cfg.crop, cfg.crop), interpolation=interp)
    return out[:, ::-1] if rng.random() < 0.5 else out


def degrade_l(L: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """L (H,W) float32 in [0,100] -> the same picture as worn film might show it."""
    x = (np.clip(L, 0, 100) / 100.0) ** rng.uniform(*cfg.gamma)
    m = x.mean()
    x = (x - m) * rng.uniform(*cfg.contrast) + m
    x = x * 100.0 + rng.uniform(-cfg.brightness, cfg.brightness)
    if rng.random() < cfg.blur_p:
        x = cv2.GaussianBlur(x.astype(np.float32), (0, 0), rng.uniform(*cfg.blur_sigma))
    sigma = rng.uniform(*cfg.grain)
    if sigma > 0:
        grain = rng.normal(0.0, sigma, x.shape).astype(np.float32)
        # Film grain is a little soft, not pixel-independent noise.
        x = x + cv2.GaussianBlur(grain, (0, 0), 0.6) * 1.5
    return np.clip(x, 0.0, 100.0).astype(np.float32)


def sample_hints(ab: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Sparse hints from the truth, as in Zhang et al. 2017: (3,H,W) float32 = [a, b, mask].

    Often none; otherwise a geometric number of square patches (side 1..9 px), each carrying the
    mean ab of the truth inside it.
    """
    _, h, w = ab.shape
    out = np.zeros((3, h, w), np.float32)
    if rng.random() < cfg.hint_p_none:
        return out
    n = min(int(rng.geometric(cfg.hint_geom_p)), cfg.hint_max)
    for _ in range(n):
        s = int(rng.integers(1, 10))
        cy = int(np.clip(rng.normal(h / 2, h / 4), 0, h - 1))
        cx = int(np.clip(rng.normal(w / 2, w / 4), 0, w - 1))
        y0, x0 = max(0, cy - s // 2), max(0, cx - s // 2)
        patch = ab[:, y0 : y0 + s, x0 : x0 + s]
        out[:2, y0 : y0 + s, x0 : x0 + s] = patch.reshape(2, -1).mean(axis=1)[:, None, None]
        out[2, y0 : y0 + s, x0 : x0 + s] = 1.0
    return out


def make_example(
    rgb: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator, augment: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One training example: (L_in (1,S,S), ab_true (2,S,S), hints (3,S,S)), float32, raw units."""
    crop = random_resized_crop(rgb, cfg, rng)
    lab = rgb_to_lab(crop.astype(np.float32) / 255.0)
    L, ab = lab[..., 0], np.ascontiguousarray(lab[..., 1:].transpose(2, 0, 1))
    L_in = degrade_l(L, cfg, rng) if augment else L
    hints = sample_hints(ab, cfg, rng)
    return L_in[None], ab, hints
