"""The stages between decode and merge for one film, as one object: to L + batch [2], the model step
[3] (key frames carried along the motion, or the guidance around the model), and temporal
smoothing reset at scene cuts [4].

Every caller drives this same chain, so the arithmetic is the same everywhere: the film runner
(pipeline/run.py) calls :meth:`to_l` + :meth:`plan` + :meth:`plan_carry`, :meth:`model` and
:meth:`finish` + :meth:`smooth` on three threads; the in-memory stream (pipeline/stream.py) and stills
(pipeline/image.py) call them one after the other. Batches must come in film order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vidcolor.frames import Frame, LBatch
from vidcolor.guidance.guide import Guide, GuidePlan, guided
from vidcolor.options import ColorizeOptions
from vidcolor.stages.batch_l import make_batch
from vidcolor.stages.keyframes import CarryPlan, KeyframeCarry, key_interval
from vidcolor.stages.model_step import ModelStep
from vidcolor.stages.scene_cut import SceneCutDetector
from vidcolor.stages.smooth import TemporalSmoother


class StageChain:
    """Stages [2]-[4] of one film of ``bit_depth`` luma (``full_range``: 0..max, else limited).

    ``guide`` None: the unguided path (the model, or key frames with ``opts.model_every`` > 1); it
    may be set after the first frames are seen (the stream learns the frame size from them).
    ``field_aware``: the smoother compares fields of interlaced film kept interlaced.
    ``first_index``: the film index of the first frame the chain sees (a segment's first decoded
    frame), so that key frames fall on the same frames as in one run over the whole film.
    """

    def __init__(
        self,
        step: ModelStep,
        opts: ColorizeOptions,
        *,
        bit_depth: int,
        full_range: bool,
        guide: Guide | None = None,
        field_aware: bool = False,
        first_index: int = 0,
    ) -> None:
        self.step, self.opts, self.guide = step, opts, guide
        self.bit_depth, self.full_range = bit_depth, full_range
        self.render = opts.render_size or step.render_size
        every = key_interval(opts.model_every, step.device, guided(opts))
        self.carry = KeyframeCarry(step, every, first_index=first_index)
        # Smoothing restarts at every scene cut, so colour never bleeds from one shot into the next
        # (nor a hint's colour into the next shot).
        self.smoother = TemporalSmoother(opts.smoothing, SceneCutDetector(), field_aware=field_aware)

    def to_l(self, frames: Sequence[Frame]) -> LBatch:
        """[2] The frames (all of one size) as an LBatch at the render size."""
        return make_batch(list(frames), self.bit_depth, self.full_range, self.render, self.step.stride)

    def plan(self, lb: LBatch, times: Sequence[float]) -> GuidePlan | None:
        """The guidance's tracking of ``lb`` (frames at ``times`` s), which needs nothing from the
        model, so a runner does it ahead of the model; None without guidance."""
        return None if self.guide is None else self.guide.plan(lb, times)

    def plan_carry(self, lb: LBatch, plan: GuidePlan | None) -> CarryPlan | None:
        """Which frames of ``lb`` the model runs on and how colour is carried to the others: needs
        only L, so a runner makes it ahead of the model, with :meth:`plan`. None for a guided batch
        (``plan`` given), which goes through the model whole."""
        if self.guide is None or plan is None:
            return self.carry.decide(lb)
        self.carry.reset_decide()  # carrying starts afresh after guided frames
        return None

    def model(self, lb: LBatch, plan: GuidePlan | None, carried: CarryPlan | None) -> Any:
        """[3] The model's output for ``lb``: raw ab (N, 2, h, w) float32, or the guidance's
        ModelOutput where ``plan`` is given; ``carried``: :meth:`plan_carry`'s answer."""
        if self.guide is None or plan is None:
            assert carried is not None  # plan_carry decides every unguided batch
            return self.carry.apply(lb, carried)
        out = self.guide.model(self.step, lb, plan)
        self.carry.reset_apply()  # guided frames all go through the model; carrying starts afresh after them
        return out

    def finish(self, lb: LBatch, plan: GuidePlan | None, out: Any) -> np.ndarray:
        """The ab (N, 2, h, w) float32 of ``lb`` from :meth:`model`'s output, guidance applied."""
        return out if self.guide is None or plan is None else self.guide.finish(lb, plan, out)

    def colour(
        self, frames: Sequence[Frame], times: Sequence[float]
    ) -> tuple[LBatch, np.ndarray, GuidePlan | None]:
        """[2] and [3] in turn for one batch of ``frames`` at ``times`` s: (LBatch, ab, the
        guidance's plan for :meth:`smooth`, None without guidance)."""
        lb = self.to_l(frames)
        plan = self.plan(lb, times)
        return lb, self.finish(lb, plan, self.model(lb, plan, self.plan_carry(lb, plan))), plan

    def smooth(
        self, index: int, ab: np.ndarray, L: np.ndarray, plan: GuidePlan | None = None, i: int = 0
    ) -> list[tuple[int, np.ndarray]]:
        """[4] Push frame ``index``'s ab (2, h, w) and L (h, w), frame ``i`` of the batch ``plan``
        was made for (guided runs); returns the (index, ab) ready, in order."""
        # The guide's detector has judged this very L already (same detector, same thresholds):
        # its cut is the smoother's, and detecting it twice cost about 1.6 ms a frame.
        return self.smoother.push(index, ab, L, None if plan is None else plan.cuts[i])

    def flush(self) -> list[tuple[int, np.ndarray]]:
        """[4] The frames the smoother still holds, in order."""
        return self.smoother.flush()

    def notes(self) -> list[str]:
        """Lines for the run's summary, once every frame is through: what key-frame carrying did
        (where it was on), hints the decoded section did not reach."""
        lines = [self.carry.stats.line()] if self.carry.every > 1 else []
        return lines + (self.guide.notes() if self.guide is not None else [])
