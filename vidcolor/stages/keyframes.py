"""Stage [3] on fewer frames: the model on key frames, colour carried along the motion to the others.

With ``--model-every N`` the model sees one frame in ``N`` (the *key* frames: every frame whose
index in the film is a multiple of ``N``, and the others below); every other frame takes the a*b* of
the last key frame, warped along the dense optical flow from that key frame to it (OpenCV's DIS flow
on the render-size L, a few milliseconds a frame on one core). The flow is always taken from the key
frame itself, never chained from frame to frame, so errors do not add up along a shot.

Where the motion does not explain the picture -- a cut, a flash, a large occlusion, a fast pan the
flow cannot follow -- carrying would paint the wrong colour, so a frame whose L is not matched by
the warped L of its key frame (``CARRY_MAX_RESIDUAL``) becomes a key frame itself. Cuts therefore
need no detector here, and a shot's first frame is always a key frame.

Key frames fall on the film's own frame numbers, not on where a run started: a segment of a long
film (pipeline/segments.py) that starts decoding at frame ``first_index`` has, from the first
multiple of ``N`` on, the same key frames and the same carried colour as one run over the whole
film. (The key frames of a batch go through the model together, and how many share a call can
round the model's output differently in the last bit: a code value here and there, not a colour.)

The ab carried is the model's raw output at the render size; stages [4] and [5] see no difference
between a carried frame and a predicted one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from vidcolor.frames import LBatch

# L units (CIE L in [0, 100]): mean absolute difference between a frame and its key frame warped
# onto it, both shrunk 4x (which averages film grain away), above which the flow is not trusted.
# Within a shot a good warp leaves 0.5-2.5 (soft edges, grain residue, exposure flicker); a cut
# leaves 15-30. The bar sits well below a cut and above flicker, leaning towards running the model.
CARRY_MAX_RESIDUAL = 4.0
_RESIDUAL_SHRINK = 4
#: Key frames one in this many where the model runs on the CPU and ``--model-every`` is 0 (by
#: device). On eval/videos 3 scored within 0.21% of every frame (CIEDE2000, colourfulness) and
#: 1.7% (CDC), at 2.7x the speed end to end on two cores (benchmarks/README.md). On a GPU the
#: model costs less than the flow on the CPU would, so there the model runs on every frame.
CPU_MODEL_EVERY = 3


def key_interval(model_every: int, device: torch.device, guided: bool = False) -> int:
    """The key-frame interval a run uses: ``model_every`` when given (>= 1), else by ``device``;
    a guided run (hints, references) keeps the model on every frame, as guidance needs the
    model's own output wherever it reaches."""
    if model_every >= 1:
        return model_every
    return CPU_MODEL_EVERY if device.type == "cpu" and not guided else 1


def most_key_interval(model_every: int) -> int:
    """The longest interval ``model_every`` can resolve to on any device (what a segment's
    warm-up must cover before the device is known)."""
    return model_every or CPU_MODEL_EVERY


@dataclass
class CarryStats:
    """How many frames went through the model and how many were carried, for the run summary."""

    model_frames: int = 0
    carried_frames: int = 0

    def line(self) -> str:
        total = self.model_frames + self.carried_frames
        share = 100.0 * self.model_frames / total if total else 0.0
        return (
            f"the model ran on {self.model_frames} of {total} frames ({share:.0f}%), "
            "colour carried to the rest"
        )


@dataclass(frozen=True)
class CarryPlan:
    """What :meth:`KeyframeCarry.decide` made of one batch: the indices (in the batch) of its key
    frames, and for every other frame (its key frame's index in the batch, -1 for the previous
    batch's last key frame; the remap grid float32 (h, w, 2) that pulls the key frame onto it)."""

    keys: list[int]
    maps: dict[int, tuple[int, np.ndarray]]


class KeyframeCarry:
    """A model step that runs the model on key frames only; see the module docstring.

    ``step``: LBatch -> ab float32 (N, 2, h, w), the model step. ``every``: a key frame on every
    frame whose film index is a multiple of ``every`` (1: every frame, the model on all of them).
    ``first_index``: the film index of the frame the batches' index 0 stands for (a segment's first
    decoded frame). One instance per film: it keeps the last key frame of the previous batch so
    that shots run across batches.
    """

    def __init__(
        self,
        step: Callable[[LBatch], np.ndarray],
        every: int,
        max_residual: float = CARRY_MAX_RESIDUAL,
        first_index: int = 0,
    ) -> None:
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        self.step = step
        self.every = every
        self.first_index = first_index
        self.max_residual = max_residual
        self.stats = CarryStats()
        # Only a run that carries colour needs the flow; every film, still and bench pass builds one.
        self._flow = (
            cv2.DISOpticalFlow_create(  # type: ignore[attr-defined]  # missing from OpenCV's stubs
                cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST
            )
            if every > 1
            else None
        )
        # The last key frame: its (L, L8) for decide (the planning thread), its ab for apply (the
        # model thread).
        self._key: tuple[np.ndarray, np.ndarray] | None = None
        self._key_ab: np.ndarray | None = None
        self._grid: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the last key frame: the next frame goes through the model."""
        self.reset_decide()
        self.reset_apply()

    def reset_decide(self) -> None:
        """:meth:`reset`, the part :meth:`decide`'s thread owns."""
        self._key = None

    def reset_apply(self) -> None:
        """:meth:`reset`, the part :meth:`apply`'s thread owns."""
        self._key_ab = None

    def __call__(self, lb: LBatch) -> np.ndarray:
        """LBatch (L float32 (N, 1, h, w) in [0, 100]) -> ab float32 (N, 2, h, w), raw a*b* units."""
        return self.apply(lb, self.decide(lb))

    def decide(self, lb: LBatch) -> CarryPlan:
        """Which frames of ``lb`` are key frames and the flow map of every other one. Needs only L,
        so a runner makes it ahead of the model, on another thread than :meth:`apply` (each keeps
        its own state: this one the last key frame's L, :meth:`apply` its ab). Batches in order."""
        n, _, h, w = lb.L.shape
        if self.every == 1:
            return CarryPlan(list(range(n)), {})
        if self._key is not None and self._key[0].shape != (h, w):
            self._key = None  # the picture changed size: nothing can be carried across
        keys: list[int] = []
        maps: dict[int, tuple[int, np.ndarray]] = {}  # carried frame -> (its key: -1 = previous batch, map)
        ref = None if self._key is None else (-1, *self._key)  # (key index, L, L8)
        for i in range(n):
            L8 = _to_u8(lb.L[i, 0])
            carry = None
            if ref is not None and (self.first_index + lb.indices[i]) % self.every != 0:
                carry = self._warp_map(L8, ref[2], lb.L[i, 0], ref[1], lb.content)
            if carry is None:
                keys.append(i)
                ref = (i, lb.L[i, 0], L8)
            else:
                assert ref is not None
                maps[i] = (ref[0], carry)
        if ref is not None and ref[0] >= 0:  # the batch's last key frame
            self._key = (ref[1], ref[2])
        return CarryPlan(keys, maps)

    def apply(self, lb: LBatch, plan: CarryPlan) -> np.ndarray:
        """The ab (N, 2, h, w) float32 of ``lb``: the model on ``plan``'s key frames, the others
        their key frame's ab pulled along their map. Batches in order, as :meth:`decide` saw them."""
        n, _, h, w = lb.L.shape
        keys, maps = list(plan.keys), dict(plan.maps)
        prev_ab = self._key_ab  # decide carried nothing across a change of size, so it fits
        if prev_ab is None and any(k < 0 for k, _ in maps.values()):
            # Reset since the plan was made: the frames that would take the last batch's key go
            # through the model themselves.
            keys = sorted([*keys, *(i for i, (k, _) in maps.items() if k < 0)])
            maps = {i: km for i, km in maps.items() if km[0] >= 0}
        if len(keys) == n:
            out = self.step(lb)
        else:
            out = np.empty((n, 2, h, w), np.float32)
            if keys:
                out[keys] = self.step(LBatch(tuple(lb.indices[k] for k in keys), lb.L[keys], lb.content))
        for i in range(n):  # in order: a carried frame's key is earlier in the batch or before it
            if i in maps:
                k, m = maps[i]
                src = out[k] if k >= 0 else prev_ab
                assert src is not None  # k == -1 only while the previous batch's key ab is held
                out[i] = _remap(src, m)
        if keys and self.every > 1:
            # A copy: ``out`` goes down the queue to the next stage while the next batch reads the key.
            self._key_ab = out[keys[-1]].copy()
        self.stats.model_frames += len(keys)
        self.stats.carried_frames += n - len(keys)
        return out

    def _warp_map(
        self, cur8: np.ndarray, key8: np.ndarray, cur: np.ndarray, key: np.ndarray, content: tuple[int, int]
    ) -> np.ndarray | None:
        """The remap grid that pulls the key frame onto the current one (float32 (h, w, 2)), or
        None when the warped key frame does not match the current frame well enough."""
        assert self._flow is not None  # built whenever every > 1, the only way here
        flow = self._flow.calc(cur8, key8, None)  # cur(x) ~ key(x + flow(x))
        h, w = cur8.shape
        if self._grid is None or self._grid.shape[:2] != (h, w):
            ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
            self._grid = np.stack([xs, ys], axis=-1)
        m = self._grid + flow
        ch, cw = content
        warped = cv2.remap(key, m, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if _residual(cur[:ch, :cw], warped[:ch, :cw]) > self.max_residual:
            return None
        return m


def _to_u8(L: np.ndarray) -> np.ndarray:
    """CIE L (h, w) float in [0, 100] -> uint8 in [0, 255], the input DIS flow takes."""
    return np.clip(L * 2.55 + 0.5, 0, 255).astype(np.uint8)


def _residual(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |a - b| in L units after shrinking both by ``_RESIDUAL_SHRINK`` (grain averages out)."""
    h, w = a.shape
    size = (max(1, w // _RESIDUAL_SHRINK), max(1, h // _RESIDUAL_SHRINK))
    sa = cv2.resize(a, size, interpolation=cv2.INTER_AREA)
    sb = cv2.resize(b, size, interpolation=cv2.INTER_AREA)
    return float(np.mean(np.abs(sa - sb)))


def _remap(ab: np.ndarray, m: np.ndarray) -> np.ndarray:
    """ab float32 (2, h, w) pulled along the grid ``m`` (h, w, 2) -> (2, h, w)."""
    return np.stack(
        [cv2.remap(ab[c], m, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) for c in range(2)]
    )
