"""Stage [4]: temporal smoothing of ab at render resolution (DESIGN.md, contract 5).

A per-frame colorizer flickers: the same wall comes out a little warmer or cooler from frame to
frame. The filter here is a symmetric window centred on each frame (``radius`` frames back and
forward) whose weight, per pixel, is the product of

- a temporal Gaussian over the frame distance (sigma ``strength * (window // 2) / 1.5`` frames), and
- a motion term ``exp(-dL^2 / (2 motion_sigma^2))``, where ``dL`` is the difference in CIE L between
  the neighbour and the centre frame *at that pixel* (both lightly blurred so film grain does not
  count as motion). Where something moved, L differs and the neighbour's colour is ignored, so a
  moving object does not leave a coloured ghost; where nothing moved, the colour is averaged and
  stops flickering.

Frame ``c`` comes out as ``ab_c + sum_j w_j (ab_j - ab_c) / (1 + sum_j w_j)``: a weighted mean in
which the centre frame has weight 1, written as a correction so that a constant input comes out
bit for bit unchanged.

Shots: every frame's L goes through a :class:`~vidcolor.stages.scene_cut.SceneCutDetector`; a cut
closes the window, so the frames of one shot never see the ab of another. A change of frame size
is a cut too.

Latency: a frame comes out once ``radius = ceil(strength * (window // 2))`` frames after it have
arrived (or at a cut, or at :meth:`TemporalSmoother.flush`), so at most ``window // 2`` frames are
held back. ``strength`` 0 is a passthrough: the very same arrays, with no delay.

Interlaced sources (``field_aware=True``): the two fields of a frame are 1/50 or 1/60 s apart, so
blending colour across frames where anything moved mixes two positions of it, as a weave of
moving fields combs. In this mode a neighbour is used at a pixel only if, within a 3x3
neighbourhood of it, the (grain-blurred) L differs from the centre frame's by at most
``motion_sigma`` in *every* frame from the centre out to that neighbour; elsewhere its weight is
exactly 0 (on top of the soft motion term). So colour is never carried across a frame in which
that spot moved, even when the object is back in place further on. Static pictures are still
smoothed; moving parts never.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from vidcolor.stages.scene_cut import SceneCutDetector, small_luma

DEFAULT_WINDOW = 9  # frames: at most 4 back and 4 forward, i.e. at most 4 frames of latency
MOTION_SIGMA = 4.0  # CIE L units: a change of L this large at a pixel counts as motion (weight 0.61)
GUIDE_BLUR = 1.0  # pixels (render size): Gaussian sigma applied to L before the motion test


@dataclass
class _Entry:
    index: int
    ab: np.ndarray  # (2, h, w) float32, as pushed (never written to)
    guide: np.ndarray  # (h, w) float32, blurred L for the motion test


class TemporalSmoother:
    """Streaming edge- and motion-aware temporal filter over ab.

    ``strength`` in [0, 1] scales the window's reach and its temporal weights; 0 turns the filter
    off. ``detector`` splits the stream into shots (None: the stream is one shot). ``window`` is
    the widest span in frames, centred on the frame (an even value acts as the next odd one up).

    The smoother keeps references to the ``ab`` arrays pushed until their frames leave the
    window; the caller must not write to them meanwhile. Returned arrays are new, except when a
    frame has no neighbour to blend with (or strength is 0): then the pushed array itself comes
    back.
    """

    def __init__(
        self,
        strength: float,
        detector: SceneCutDetector | None = None,
        window: int = DEFAULT_WINDOW,
        *,
        motion_sigma: float = MOTION_SIGMA,
        field_aware: bool = False,
    ) -> None:
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        if window < 1:
            raise ValueError(f"window must be at least 1 frame, got {window}")
        if motion_sigma <= 0:
            raise ValueError(f"motion_sigma must be positive, got {motion_sigma}")
        self.strength = float(strength)
        self.detector = detector
        self.field_aware = field_aware
        self.motion_sigma = float(motion_sigma)
        reach = window // 2
        self.radius = math.ceil(self.strength * reach) if reach else 0
        sigma_t = self.strength * reach / 1.5
        self._time_weight = [
            math.exp(-(k * k) / (2.0 * sigma_t * sigma_t)) if sigma_t > 0 else 0.0
            for k in range(self.radius + 1)
        ]
        self._frames: list[_Entry] = []  # the current shot's frames still needed
        self._next = 0  # position in _frames of the next frame to come out
        self._last_index: int | None = None

    @property
    def latency(self) -> int:
        """Frames a pushed frame may wait before it comes out (0 when strength is 0)."""
        return self.radius

    def push(
        self, index: int, ab: np.ndarray, L: np.ndarray, cut: bool | None = None
    ) -> list[tuple[int, np.ndarray]]:
        """Add frame ``index``: ``ab`` float32 (2, h, w) raw a*b*, ``L`` float32 (h, w) CIE L of
        the same frame at the same size. Indices must increase. Returns the frames now ready, as
        ``(index, smoothed ab (2, h, w) float32)``, in order.

        ``cut``: whether a shot starts on this frame, where another stage has already asked a
        detector of the same kind on the same L (guided runs: the guide's plan); None asks this
        smoother's detector. A caller passes it for every frame of a stream or for none."""
        if ab.ndim != 3 or ab.shape[0] != 2 or L.shape != ab.shape[1:]:
            raise ValueError(f"expected ab (2, h, w) and L (h, w), got {ab.shape} and {L.shape}")
        if self._last_index is not None and index <= self._last_index:
            raise ValueError(f"frame indices must increase: {index} after {self._last_index}")
        self._last_index = index
        if self.radius == 0:
            return [(index, ab)]
        ready: list[tuple[int, np.ndarray]] = []
        L32 = np.asarray(L, dtype=np.float32)
        resized = bool(self._frames) and self._frames[-1].ab.shape != ab.shape
        if cut is None and self.detector is not None:
            # The detector sees every frame, even after a size change, to keep its history whole.
            cut = self.detector.is_cut(small_luma(L32))
        cut = bool(cut) or resized
        if cut:
            ready.extend(self._drain())
        guide = cv2.GaussianBlur(L32, (0, 0), GUIDE_BLUR, borderType=cv2.BORDER_REPLICATE)
        self._frames.append(_Entry(index, np.asarray(ab, dtype=np.float32), guide))
        while self._next + self.radius < len(self._frames):
            ready.append(self._emit(self._next))
            self._next += 1
        self._trim()
        return ready

    def flush(self) -> list[tuple[int, np.ndarray]]:
        """End of the stream: return every frame still held, in order. The smoother (and its
        detector) then starts afresh, as for a new stream."""
        ready = self._drain()
        self._last_index = None
        if self.detector is not None:
            self.detector.reset()
        return ready

    # ------------------------------------------------------------------------------- internals

    def _drain(self) -> list[tuple[int, np.ndarray]]:
        """Emit every pending frame of the current shot (its forward half ends here) and close it."""
        out = [self._emit(i) for i in range(self._next, len(self._frames))]
        self._frames.clear()
        self._next = 0
        return out

    def _trim(self) -> None:
        """Drop frames that no pending frame can reach any more (more than ``radius`` back)."""
        excess = self._next - self.radius
        if excess > 0:
            del self._frames[:excess]
            self._next -= excess

    def _emit(self, c: int) -> tuple[int, np.ndarray]:
        frames = self._frames
        centre = frames[c]
        lo, hi = max(0, c - self.radius), min(len(frames), c + self.radius + 1)
        if hi - lo == 1:
            return centre.index, centre.ab
        scale = np.float32(-1.0 / (2.0 * self.motion_sigma * self.motion_sigma))
        kernel = np.ones((3, 3), np.uint8)
        total = np.zeros_like(centre.ab)  # sum_j w_j (ab_j - ab_c)
        norm = np.ones_like(centre.guide)  # 1 + sum_j w_j
        diff = np.empty_like(centre.guide)
        w = np.empty_like(centre.guide)
        dab = np.empty_like(centre.ab)
        for step in (-1, 1):
            static: np.ndarray | None = None  # field-aware: still static from c out to j
            for j in range(c + step, hi if step > 0 else lo - 1, step):
                other = frames[j]
                np.subtract(other.guide, centre.guide, out=diff)
                if self.field_aware:
                    now_static = cv2.dilate(np.abs(diff), kernel) <= self.motion_sigma
                    static = now_static if static is None else static & now_static
                np.multiply(diff, diff, out=w)
                w *= scale
                cv2.exp(w, w)
                w *= np.float32(self._time_weight[abs(j - c)])
                if static is not None:
                    w *= static
                norm += w
                np.subtract(other.ab, centre.ab, out=dab)
                dab *= w
                total += dab
        total /= norm
        total += centre.ab
        return centre.index, total
