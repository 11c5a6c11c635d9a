"""The region a point sits in: the connected area of similar (blurred) luma around it.

Shared by the tracker (which follows features inside the region, so a hint on an object moves
with the object rather than with its background) and the renderer (which colours the region).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

GUIDE_SIGMA = 1.5  # render pixels: blur of L before regions are cut, so grain and fine texture count little
PATCH = 2  # render pixels: the reference luma is the median over a (2*PATCH+1)^2 patch at the point


def guide_l(L: np.ndarray) -> np.ndarray:
    """CIE L (h, w) -> the blurred float32 L that regions are cut on."""
    return cv2.GaussianBlur(
        L.astype(np.float32, copy=False), (0, 0), GUIDE_SIGMA, borderType=cv2.BORDER_REPLICATE
    )


def patch_value(img: np.ndarray, x: float, y: float, r: int = PATCH) -> float:
    """Median of ``img`` over the (2r+1)^2 patch at (x, y), clipped to the picture."""
    h, w = img.shape
    cx, cy = int(round(min(max(x, 0), w - 1))), int(round(min(max(y, 0), h - 1)))
    # np.median's own arithmetic (the two middle values' mean in the array's dtype), without its
    # overhead: it is called for every hint on every frame, several times.
    v = np.sort(img[max(0, cy - r) : cy + r + 1, max(0, cx - r) : cx + r + 1], axis=None)
    k = v.size // 2
    return float(v[k] if v.size % 2 else (v[k - 1] + v[k]) / 2)


@dataclass(frozen=True)
class Region:
    """A region as a mask over a box of the picture: rows y0:y1, columns x0:x1; ``mask`` bool
    (y1-y0, x1-x0), True inside. ``ref_l`` is the luma the region was grown from."""

    y0: int
    y1: int
    x0: int
    x1: int
    mask: np.ndarray
    ref_l: float

    @property
    def area(self) -> int:
        return int(self.mask.sum())


def grow_region(
    G: np.ndarray, x: float, y: float, reach: float, tol: float, ref_l: float | None = None
) -> Region:
    """The pixels within ``reach`` render pixels of (x, y) whose blurred L (``G``, from
    :func:`guide_l`) is within ``tol`` of ``ref_l`` (default: the patch median at the point) and
    that connect to the point through such pixels. The point itself always belongs to it."""
    h, w = G.shape
    r = max(1, int(np.ceil(reach)))
    cx, cy = int(round(min(max(x, 0), w - 1))), int(round(min(max(y, 0), h - 1)))
    y0, y1, x0, x1 = max(0, cy - r), min(h, cy + r + 1), max(0, cx - r), min(w, cx + r + 1)
    ref = patch_value(G, x, y) if ref_l is None else ref_l
    roi = G[y0:y1, x0:x1]
    yy, xx = np.ogrid[y0:y1, x0:x1]
    inside = ((xx - x) ** 2 + (yy - y) ** 2 <= reach * reach) & (np.abs(roi - ref) <= tol)
    inside[cy - y0, cx - x0] = True
    n, labels = cv2.connectedComponents(inside.astype(np.uint8), connectivity=4)
    mask = labels == labels[cy - y0, cx - x0] if n > 1 else inside
    return Region(y0, y1, x0, x1, mask, ref)
