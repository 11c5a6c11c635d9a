"""Streaming shot-change detection on small luma images, for the temporal smoother (stage [4]).

Two measures compare each frame with the one before it, both on a small picture (``CUT_WIDTH``
pixels wide, blurred by a 5x5 box so film grain and one-pixel shifts count little):

- ``structure``: the mean absolute difference of the two pictures after each is normalised to zero
  mean and unit contrast, ``z = (L - mean) / max(std, MIN_CONTRAST)``. A fade, a flash or an
  exposure change moves mean and contrast but not ``z``, so it scores near 0 (fades about 0.2 at
  most, near black); on natural (1/f) textures a pan of 1.5 % of the width per frame scores about
  0.17, of 5 % about 0.45; a reframing of the same scene about 0.75; two unrelated pictures about
  1.0-1.2 (the expected |z1 - z2| of two independent unit-variance fields is 1.13).
- ``tonal``: the total-variation distance, in [0, 1], between 16-bin histograms of raw L. It tells
  apart two shots whose layouts are alike (a wide shot by day, then by night).

A cut is declared when ``structure`` exceeds ``STRUCTURE_CUT``, or when it exceeds the lower
``STRUCTURE_TONAL_CUT`` while ``tonal`` exceeds ``TONAL_CUT`` -- and, either way, when it is also at
least ``MOTION_RATIO`` times the median score of the last ``MOTION_HISTORY`` frames, so that a
shaky or fast-moving shot, whose every frame scores high, does not cut itself to pieces. That last
bar never rises above ``STRONG_CUT``: two unrelated pictures always cut, however busy the film.
Fades therefore cut nowhere (their tonal change comes with no structural change), and a
cross-dissolve cuts at most once, near its middle.

A flash that brightens the picture without washing it out keeps its structure and is not a cut. A
flash that clips much of the frame to white does cut (it shares little with the shot), but the
return to the shot within ``FLASH_FRAMES`` frames, to a picture that matches the one before the
flash, is not a second cut. False cuts are cheap for the smoother (a shot's smoothing restarts),
missed cuts are not (colour would bleed between shots), so the thresholds lean towards cutting.
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

CUT_WIDTH = 64  # pixels: width of the picture the measures are taken on
MIN_CONTRAST = 4.0  # L units: floor on the std used to normalise, so flat frames do not amplify grain
HIST_BINS = 16  # over L in [0, 100]
STRUCTURE_CUT = 0.55  # normalised MAD above which the pictures are unrelated
STRUCTURE_TONAL_CUT = 0.35  # normalised MAD that is a cut when the tones change too
TONAL_CUT = 0.5  # histogram total-variation distance
MOTION_RATIO = 2.5  # a cut must stand this far above the recent scores of the shot
MOTION_HISTORY = 12  # frames of recent scores (kept across cuts: one spike barely moves a median)
STRONG_CUT = 0.9  # normalised MAD that is a cut whatever the recent motion
FLASH_FRAMES = 3  # frames within which a return to the pre-cut picture is not a new cut


def small_luma(L: np.ndarray, width: int = CUT_WIDTH) -> np.ndarray:
    """Shrink an L (or any luma) plane (H, W) to ``width`` pixels wide, aspect kept; float32."""
    h, w = L.shape
    src = L.astype(np.float32, copy=False)
    if w <= width:
        return src
    height = max(1, round(h * width / w))
    return cv2.resize(src, (width, height), interpolation=cv2.INTER_AREA)


class _Features:
    __slots__ = ("z", "hist", "shape")

    def __init__(self, L: np.ndarray) -> None:
        L = cv2.blur(small_luma(L), (5, 5), borderType=cv2.BORDER_REPLICATE)
        mean, std = cv2.meanStdDev(L)
        self.z = (L - np.float32(mean[0, 0])) / np.float32(max(float(std[0, 0]), MIN_CONTRAST))
        hist, _ = np.histogram(L, bins=HIST_BINS, range=(0.0, 100.0))
        self.hist = hist.astype(np.float32) / max(1, L.size)
        self.shape = L.shape

    def structure(self, other: _Features) -> float:
        if self.shape != other.shape:
            return float("inf")
        return float(cv2.norm(self.z, other.z, cv2.NORM_L1)) / self.z.size

    def tonal(self, other: _Features) -> float:
        return 0.5 * float(np.abs(self.hist - other.hist).sum())


class SceneCutDetector:
    """Say, frame by frame, whether a frame starts a new shot. Streaming: no look-ahead.

    Feed every frame of the film in order to :meth:`is_cut`; the first frame is never a cut. The
    thresholds are the module constants (see the module docstring); keyword options override them.
    """

    def __init__(
        self,
        *,
        structure_cut: float = STRUCTURE_CUT,
        structure_tonal_cut: float = STRUCTURE_TONAL_CUT,
        tonal_cut: float = TONAL_CUT,
        motion_ratio: float = MOTION_RATIO,
        strong_cut: float = STRONG_CUT,
        flash_frames: int = FLASH_FRAMES,
    ) -> None:
        self.structure_cut = structure_cut
        self.structure_tonal_cut = structure_tonal_cut
        self.tonal_cut = tonal_cut
        self.motion_ratio = motion_ratio
        self.strong_cut = strong_cut
        self.flash_frames = flash_frames
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next frame is treated as the first."""
        self._prev: _Features | None = None
        self._before_cut: _Features | None = None  # the last frame of the previous shot
        self._since_cut = 1 << 30
        self._scores: deque[float] = deque(maxlen=MOTION_HISTORY)
        self.last_scores: tuple[float, float] = (0.0, 0.0)  # (structure, tonal) of the last frame

    def is_cut(self, L_small: np.ndarray) -> bool:
        """``L_small``: CIE L (h, w) float in [0, 100], ideally ~``CUT_WIDTH`` pixels wide (larger
        pictures are shrunk here). Returns True when this frame starts a new shot."""
        if L_small.ndim != 2:
            raise ValueError(f"expected a 2-D luma picture, got shape {L_small.shape}")
        cur = _Features(L_small)
        prev, self._prev = self._prev, cur
        self._since_cut += 1
        if prev is None:
            return False
        structure, tonal = cur.structure(prev), cur.tonal(prev)
        self.last_scores = (structure, tonal)
        if structure == float("inf"):  # the picture changed size: nothing can be compared
            self._start_shot(prev)
            return True
        baseline = float(np.median(self._scores)) if self._scores else 0.0
        self._scores.append(structure)
        busy = min(self.motion_ratio * baseline, self.strong_cut)
        cut = structure > max(self.structure_cut, busy) or (
            structure > max(self.structure_tonal_cut, busy) and tonal > self.tonal_cut
        )
        if not cut:
            return False
        if (
            self._before_cut is not None
            and self._since_cut <= self.flash_frames
            and cur.structure(self._before_cut) <= self.structure_tonal_cut
        ):
            # Back to the picture from before the last cut: that cut was a flash, not a new shot.
            return False
        self._start_shot(prev)
        return True

    def _start_shot(self, last_of_previous: _Features) -> None:
        self._before_cut = last_of_previous
        self._since_cut = 0
