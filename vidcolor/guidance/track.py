"""Carry hints from frame to frame: pyramidal Lucas-Kanade tracking on the render-size L.

A point alone is a poor thing to track (on a flat patch it has no texture, at an edge it slides
along it), so each hint is followed through the features of *its region* (guidance/region.py):
up to ``MAX_FEATURES`` corners inside the region, kept ``INSET`` pixels from its outline where the
region is large enough (so that their windows see the object rather than its background), are
tracked with ``cv2.calcOpticalFlowPyrLK`` forward and back; those that come back within
``FB_LIMIT`` pixels of where they started are trusted, and the point moves by their median
displacement, weighted toward the point. A region so flat that it has no corner at all keeps its
place: nothing says it moved, and its colour is the same wherever the point lands in it.

A track is lost, and its hint stops, when fewer than ``MIN_GOOD_FRACTION`` of its features come
back (occlusion, motion blur, a change of view), when the point leaves the picture, or when the
luma under it drifts more than ``APPEARANCE_TOL`` from the luma it was placed on (the point slid
off its object). Every track ends at a scene cut: a hint holds for its shot.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vidcolor.guidance.region import grow_region, patch_value

LK_WINDOW = 15  # render pixels: side of the Lucas-Kanade window at each pyramid level
LK_LEVELS = 3  # pyramid levels above the base: motions up to ~LK_WINDOW * 2**LK_LEVELS / 2 px a frame
MAX_FEATURES = 24  # corners followed per hint
FEATURE_QUALITY = 0.01  # corner strength relative to the strongest in the region (OpenCV's qualityLevel)
FEATURE_MIN_DISTANCE = 2  # render pixels between corners
INSET = 4  # render pixels: corners are picked this far inside the region where it is large enough ...
MIN_INNER = 16  # ... i.e. when this many pixels are left
FB_LIMIT = 2.0  # render pixels: forward-backward error above which a feature is not trusted
MIN_GOOD_FRACTION = 0.25  # of a hint's features that must be trusted for the track to go on
TRACK_REACH = 0.5  # of the hint's reach: the features are picked this close to the point ...
TRACK_TOL = 0.5  # ... within this fraction of its luma tolerance, so they lie on its object
APPEARANCE_TOL = 14.0  # CIE L units: drift of the (blurred) luma under the point that ends a track
APPEARANCE_RATE = 0.1  # how fast the reference luma follows slow changes (lighting, fades)
FLAT_STD = 1.0  # grey levels (0..255): a region whose luma varies less than this has no features
_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)


@dataclass
class Track:
    """One hint being followed: position (x, y) in render pixels of the picture (content) area,
    the reach and luma tolerance of its region, and the luma it sits on."""

    key: int
    x: float
    y: float
    reach: float
    tol: float
    ref_l: float
    frames: int = 1  # frames it has been on, the one it was placed on included


def to_u8(L: np.ndarray) -> np.ndarray:
    """CIE L in [0, 100] -> uint8 0..255 for OpenCV's tracker."""
    t = L * 2.55
    t += 0.5
    return np.clip(t, 0, 255, out=t).astype(np.uint8)


class PointTracker:
    """Follows any number of points through a stream of frames (one shot after another).

    Per frame: :meth:`next_frame` with the frame's L and blurred L (and whether it starts a new
    shot) moves every live track onto it and returns the keys of the tracks that ended; then
    :meth:`add` places the hints that start on this frame.
    """

    def __init__(self) -> None:
        self.tracks: dict[int, Track] = {}
        self._prev: np.ndarray | None = None  # uint8 L of the previous frame
        self._prev_g: np.ndarray | None = None  # its blurred L

    def add(self, key: int, x: float, y: float, reach: float, tol: float, G: np.ndarray) -> Track:
        """Start following (x, y) on the current frame, whose blurred L is ``G``."""
        t = Track(key, x, y, reach, tol, patch_value(G, x, y))
        self.tracks[key] = t
        return t

    def next_frame(self, L: np.ndarray, G: np.ndarray, cut: bool) -> list[int]:
        """Move the tracks from the previous frame onto this one ((h, w) L and blurred L of the
        picture area); returns the keys of the tracks that ended here."""
        img = to_u8(L)
        prev, prev_g = self._prev, self._prev_g
        self._prev, self._prev_g = img, G
        if not self.tracks:
            return []
        if cut or prev is None or prev_g is None or prev.shape != img.shape:
            every = list(self.tracks)
            self.tracks.clear()
            return every
        ended: list[int] = []
        seeds: list[np.ndarray] = []
        owners: list[tuple[Track, int, int]] = []  # track, first row in the point list, feature count
        start = 0
        for t in self.tracks.values():
            pts = self._features(prev, prev_g, t)
            seeds.append(pts)
            owners.append((t, start, len(pts)))
            start += len(pts)
        moved: dict[int, np.ndarray | None] = {}  # per track with features: its motion, None when lost
        if start:
            p0 = np.concatenate(seeds).reshape(-1, 1, 2).astype(np.float32)
            kw = {"winSize": (LK_WINDOW, LK_WINDOW), "maxLevel": LK_LEVELS, "criteria": _CRITERIA}
            p1, st1, _ = cv2.calcOpticalFlowPyrLK(prev, img, p0, None, **kw)  # type: ignore[call-overload]  # OpenCV's stubs refuse None for nextPts
            pb, st2, _ = cv2.calcOpticalFlowPyrLK(img, prev, p1, None, **kw)  # type: ignore[call-overload]  # OpenCV's stubs refuse None for nextPts
            fb = np.linalg.norm((pb - p0).reshape(-1, 2), axis=1)
            good = (st1.ravel() == 1) & (st2.ravel() == 1) & (fb < FB_LIMIT)
            d = (p1 - p0).reshape(-1, 2)
            for t, a, n in owners:
                if n == 0:
                    continue
                g = good[a : a + n]
                if g.sum() < max(1.0, MIN_GOOD_FRACTION * n):
                    moved[t.key] = None
                else:
                    # Features near the point count most: a region may still take in some background.
                    p = p0.reshape(-1, 2)[a : a + n][g]
                    dist2 = ((p[:, 0] - t.x) ** 2 + (p[:, 1] - t.y) ** 2) / (0.25 * t.reach) ** 2
                    wts = np.exp(-0.5 * dist2)
                    moved[t.key] = np.array([_weighted_median(d[a : a + n][g][:, k], wts) for k in (0, 1)])
        h, w = img.shape
        for key, t in list(self.tracks.items()):
            if key in moved:
                m = moved[key]
                if m is None:
                    ended.append(key)
                    continue
                t.x, t.y = t.x + float(m[0]), t.y + float(m[1])
            if not (0 <= t.x <= w - 1 and 0 <= t.y <= h - 1):
                ended.append(key)
                continue
            v = patch_value(G, t.x, t.y)
            if abs(v - t.ref_l) > APPEARANCE_TOL:
                ended.append(key)
                continue
            t.ref_l += APPEARANCE_RATE * (v - t.ref_l)
            t.frames += 1
        for key in ended:
            del self.tracks[key]
        return ended

    @staticmethod
    def _features(img: np.ndarray, G: np.ndarray, t: Track) -> np.ndarray:
        """Corners of the track's region on ``img``, as (n, 2) float32 (x, y); none when flat."""
        reg = grow_region(G, t.x, t.y, max(2.0, TRACK_REACH * t.reach), TRACK_TOL * t.tol, t.ref_l)
        y0, y1, x0, x1 = reg.y0, reg.y1, reg.x0, reg.x1
        mask = reg.mask.astype(np.uint8)
        # Corners well inside the region see only the object in their window; at its outline the
        # window takes in the background too, which drags the estimate toward the background's motion.
        inner = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * INSET + 1, 2 * INSET + 1)))
        if int(inner.sum()) >= MIN_INNER:
            mask = inner.astype(np.uint8)
        roi = img[y0:y1, x0:x1]
        if roi.size == 0 or float(roi[mask > 0].std()) < FLAT_STD:
            return np.zeros((0, 2), np.float32)
        c = cv2.goodFeaturesToTrack(roi, MAX_FEATURES, FEATURE_QUALITY, FEATURE_MIN_DISTANCE, mask=mask)
        if c is None:
            return np.zeros((0, 2), np.float32)
        return c.reshape(-1, 2) + np.array([x0, y0], np.float32)


def _weighted_median(v: np.ndarray, w: np.ndarray) -> float:
    """The value below and above which half the weight lies."""
    order = np.argsort(v)
    c = np.cumsum(w[order])
    return float(v[order][np.searchsorted(c, 0.5 * c[-1])])
