"""The model step with guidance: hints tracked through their shot, reference colours, per batch.

:class:`Guide` sits where the pipeline calls the model (stage [3]) and sees the frames in order,
in three steps that a pipeline runs on three threads, so that the guidance's work before and
after the model overlaps the model's on other batches (:meth:`Guide.plan`, :meth:`Guide.model`,
:meth:`Guide.finish`; calling the guide runs them one after the other):

1. plan: every frame goes through its own scene-cut detector (the smoother's detector and
   thresholds, on the same L), and the point tracker moves the live hints onto it; a cut ends
   them all; hints whose time has come start on this frame (a hint at a time between two frames
   starts on the later one, within half a frame); the hints live on each frame become the
   network's hint input;
2. model: the model runs (with the hints derived from the reference stills added to the input)
   in two halves, so the encoder's per-cell descriptors serve the matching below at no extra
   cost;
3. finish, per frame in order: the references' matched colours (guidance/reference.py), the
   shot's memory of its hinted frames where it looks like them (guidance/memory.py; not where a
   reference still applies), then the soft spread of the live hints and of the shot's palette
   of ended ones, and the pull over the live hints' regions (guidance/render.py); a frame hints
   were placed on is then remembered.

Frames without any hint in a batch cost nothing extra; a batch without any hint calls the model
exactly as the unguided pipeline does (``hints=None``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vidcolor.frames import Frame, LBatch, SourceInfo
from vidcolor.guidance.choose import ShotChooser
from vidcolor.guidance.memory import MEMORY, MEMORY_PRIOR, ShotMemory
from vidcolor.guidance.reference import (
    CELL,
    ReferenceMatcher,
    blend_matched,
    cell_grid,
    descriptors,
    has_encoder,
    split_forward,
)
from vidcolor.guidance.region import guide_l
from vidcolor.guidance.render import (
    DEFAULT_REACH,
    LUMA_TOL,
    MATCH_FEATURES,
    REFERENCE_KEEP,
    REFERENCE_PRIOR,
    SPREAD_PRIOR,
    ActiveHint,
    hint_planes,
    pull,
    spread,
)
from vidcolor.guidance.track import PointTracker
from vidcolor.hints import PlacedHint, place_hints
from vidcolor.stages.scene_cut import SceneCutDetector, small_luma

if TYPE_CHECKING:
    from vidcolor.options import ColorizeOptions
    from vidcolor.stages.model_step import ModelStep


@dataclass
class GuidePlan:
    """What :meth:`Guide.plan` decided for a batch of N frames before the model runs."""

    times: list[float]  # seconds from the start of the film, per frame
    hints: list[list[ActiveHint]] = field(default_factory=list)  # per frame: the live hints
    guides: list[np.ndarray] = field(default_factory=list)  # per frame: blurred L (ch, cw) float32
    palettes: list[tuple[int, ...]] = field(default_factory=list)  # per frame: the shot's ended hints
    cuts: list[bool] = field(default_factory=list)  # per frame: whether a shot starts on it
    placed: dict[int, tuple[int, float, float]] = field(default_factory=dict)  # hint: frame, x, y
    planes: np.ndarray | None = None  # the network's hint input (N, 3, hp, wp) float32
    shot_hinted: bool = False  # whether a hint was placed in the shot before this batch
    ref_l: dict[int, float] = field(default_factory=dict)  # per hint in palettes: the luma it was placed on


@dataclass
class _Planning:
    """What :meth:`Guide.plan` carries from batch to batch. Only the planning thread (a
    pipeline's decode thread) touches it; what :meth:`Guide.finish` needs of it travels in the
    :class:`GuidePlan`."""

    pending: list[PlacedHint]  # hints not yet placed, by time
    tracker: PointTracker = field(default_factory=PointTracker)
    detector: SceneCutDetector = field(default_factory=SceneCutDetector)
    spread: dict[int, float | None] = field(default_factory=dict)  # per hint: sigma of its soft spread, px
    ref_l: dict[int, float] = field(default_factory=dict)  # per hint: the luma it was placed on
    palette: list[int] = field(default_factory=list)  # keys of this shot's ended hints
    shot_hinted: bool = False  # whether a hint was placed in the shot the planning is in
    started: int = 0  # hints placed on a frame so far
    skipped: int = 0  # hints whose frame lay before the section that was decoded


@dataclass
class _Finishing:
    """What :meth:`Guide.finish` carries from batch to batch. Only the finishing thread (a
    pipeline's colour thread) touches it."""

    described: dict[int, torch.Tensor] = field(default_factory=dict)  # per hint: its cell's descriptor
    memory: ShotMemory = field(default_factory=ShotMemory)  # the shot's hinted frames, as coloured


@dataclass
class ModelOutput:
    """What :meth:`Guide.model` gives :meth:`Guide.finish` for a batch of N frames."""

    ab: np.ndarray  # (N, 2, hp, wp) float32, the model's
    desc: torch.Tensor | None  # (N, hc*wc, D) the encoder's unit cell descriptors, when needed
    matches: list[tuple[np.ndarray, np.ndarray] | None] | None  # per frame: the references' match


class Guide:
    """Hints and references for one stream of frames (a film, or a clip in memory).

    ``hints`` are placed on a picture of ``frame_size`` = (width, height) pixels; ``rate`` is the
    frame rate (frames/s) the frame times count in. ``reference`` matches the film against
    reference stills (None: no references).

    Its three steps may run on three threads (see the module docstring). The state each keeps
    between batches is its own: ``planning`` is plan's, ``reference`` (the matcher) model's,
    ``finishing`` finish's; the rest (frame size, the hints by key) is read-only after
    construction. What finish needs from plan travels in the :class:`GuidePlan`.
    """

    def __init__(
        self,
        hints: Sequence[PlacedHint],
        frame_size: tuple[int, int],
        rate: float | None,
        reference: ReferenceMatcher | None = None,
    ) -> None:
        self.frame_size = frame_size
        self.half_frame = 0.5 / rate if rate else 1e-6
        self.by_key = {h.key: h for h in hints}
        self.reference = reference
        self.planning = _Planning(sorted(hints, key=lambda h: (h.time, h.key)))
        self.finishing = _Finishing()

    def _start_due(
        self,
        i: int,
        t: float,
        G: np.ndarray,
        scale: tuple[float, float],
        short: int,
        placed: dict[int, tuple[int, float, float]],
    ) -> None:
        st = self.planning
        while st.pending and st.pending[0].time <= t + self.half_frame:
            h = st.pending.pop(0)
            if t - h.time > 3 * self.half_frame:  # its frame was never seen (the section starts later)
                st.skipped += 1
                continue
            sx, sy = scale
            x, y = (h.x + 0.5) * sx - 0.5, (h.y + 0.5) * sy - 0.5
            reach = h.radius * 0.5 * (sx + sy) if h.radius is not None else DEFAULT_REACH * short
            track = st.tracker.add(h.key, x, y, max(reach, 1.0), LUMA_TOL, G)
            st.ref_l[h.key] = track.ref_l
            st.spread[h.key] = None if h.radius is None else max(reach, 1.0)
            placed[h.key] = (i, x, y)
            st.shot_hinted = True
            st.started += 1

    def _describe(
        self, desc: torch.Tensor, cells: tuple[int, int], placed: dict[int, tuple[int, float, float]]
    ) -> None:
        """Keep the descriptor (D,) of the cell each hint ``placed`` in this batch sits in
        (key: frame in the batch, x, y); ``desc`` is the batch's (N, hc*wc, D) on the ``cells``
        = (hc, wc) grid."""
        hc, wc = cells
        for key, (i, x, y) in placed.items():
            cy = min(max(int(y) // CELL, 0), hc - 1)
            cx = min(max(int(x) // CELL, 0), wc - 1)
            self.finishing.described[key] = desc[i, cy * wc + cx].clone()

    def _similarity(
        self, desc: torch.Tensor | None, i: int, cells: tuple[int, int], keys: Sequence[int]
    ) -> dict[int, np.ndarray]:
        """Per hint key: how much each cell (hc, wc) of frame ``i`` looks like where the hint was
        placed (cosine similarity of the encoder descriptors), for the hints described so far."""
        if desc is None:
            return {}
        described = self.finishing.described
        known = [k for k in dict.fromkeys(keys) if k in described]
        if not known:
            return {}
        hc, wc = cells
        sims = (desc[i] @ torch.stack([described[k] for k in known]).T).T.reshape(-1, hc, wc)
        return {k: sims[j].cpu().numpy() for j, k in enumerate(known)}

    def plan(self, batch: LBatch, times: Sequence[float]) -> GuidePlan:
        """Step 1 for ``batch``, whose frames are at ``times`` (seconds from the start of the
        film): cuts, tracking, the hints that start, and the network's hint input. Needs nothing
        from the model, so a pipeline runs it ahead, on another thread than the model's."""
        n, _, hp, wp = batch.L.shape
        ch, cw = batch.content
        W, H = self.frame_size
        scale = (cw / W, ch / H)
        st = self.planning
        plan = GuidePlan(list(times))
        plan.shot_hinted = st.shot_hinted
        for i in range(n):
            L = batch.L[i, 0, :ch, :cw]
            G = guide_l(L)
            cut = st.detector.is_cut(small_luma(batch.L[i, 0]))
            ended = st.tracker.next_frame(L, G, cut)
            plan.cuts.append(cut)
            if cut:
                st.palette.clear()
                st.shot_hinted = False
            else:
                st.palette.extend(ended)
            self._start_due(i, times[i], G, scale, min(ch, cw), plan.placed)
            active = [
                ActiveHint(t.x, t.y, self.by_key[t.key].ab, t.reach, t.tol, spread=st.spread[t.key])
                for t in st.tracker.tracks.values()
            ]
            plan.hints.append(active)
            plan.guides.append(G)
            plan.palettes.append(tuple(st.palette))
            plan.ref_l.update((k, st.ref_l[k]) for k in st.palette)
        if any(plan.hints):
            plan.planes = np.zeros((n, 3, hp, wp), np.float32)
            for i, active in enumerate(plan.hints):
                hint_planes(active, (hp, wp), out=plan.planes[i])
        return plan

    def model(self, step: ModelStep, batch: LBatch, plan: GuidePlan) -> ModelOutput:
        """Step 2: the model on ``batch`` with the plan's hint input, the references matched, and
        the encoder's cell descriptors when the steps after need them."""
        ch, cw = batch.content
        planes = plan.planes
        if not getattr(getattr(step.model, "config", None), "hints", False):
            planes = None  # a model without hint inputs (upstream ones): the pull alone applies the hints
        # Descriptors serve the hints placed in this shot (their cells, the shot's memory) and the
        # ended ones; a shot no hint was placed in has no use for them.
        wants = (MATCH_FEATURES or MEMORY) and (plan.shot_hinted or any(plan.hints) or any(plan.palettes))
        wants = wants and has_encoder(step.model)
        cells = cell_grid((ch, cw))
        descs: list[torch.Tensor] = []

        def keep(desc: torch.Tensor) -> None:
            descs.append(desc.float())

        def keep_then_planes(feats: dict[Any, torch.Tensor]) -> np.ndarray | None:
            keep(descriptors(feats, cells))
            return planes

        matches = None
        if self.reference is not None:
            ab, matches = self.reference.run(
                step, batch, plan.times, min(ch, cw), planes, keep if wants else None, plan.cuts
            )
        elif wants:
            ab = split_forward(step, batch, keep_then_planes)
        elif planes is None:
            ab = step(batch)
        else:
            ab = step(batch, planes)
        return ModelOutput(ab, descs[0] if descs else None, matches)

    def finish(self, batch: LBatch, plan: GuidePlan, out: ModelOutput) -> np.ndarray:
        """Step 3: the model's output for ``batch`` with the references' colours, the shot's
        memory, the spread and the pull applied, frame by frame in order; returns the ab
        (N, 2, h, w) float32 (the model's array, written in place). Batches must come in the
        order :meth:`plan` saw them; a pipeline runs this on a thread of its own."""
        ch, cw = batch.content
        cells = cell_grid((ch, cw))
        ab, desc = out.ab, out.desc
        fin = self.finishing
        if any(plan.cuts):
            fin.described.clear()  # the hints of shots that ended: only the last shot's can come back
        if desc is not None:
            self._describe(desc, cells, plan.placed)
        hinted = {f for f, _, _ in plan.placed.values()}  # frames of the batch hints were placed on
        for i, active in enumerate(plan.hints):
            if plan.cuts[i]:
                fin.memory.forget()
            L = batch.L[i, 0, :ch, :cw]
            match = out.matches[i] if out.matches is not None else None  # None: no reference covers it
            referenced = match is not None
            if match is not None:
                ab[i, :, :ch, :cw] = blend_matched(ab[i, :, :ch, :cw], L, *match)[0]
            # Where a reference coloured the frame, the hints' soft spread trusts that more.
            prior: float | np.ndarray | None = REFERENCE_PRIOR if referenced else None
            if desc is not None and not referenced and fin.memory.frames:
                ab[i, :, :ch, :cw], conf = fin.memory.recall(desc[i], L, ab[i, :, :ch, :cw], cells)
                if conf is not None:  # and where the shot's hinted frames did
                    prior = SPREAD_PRIOR + conf * (MEMORY_PRIOR - SPREAD_PRIOR)
            gone = () if referenced else plan.palettes[i]  # a reference knows better what comes back
            if active or gone:
                sims = self._similarity(desc, i, cells, gone)
                palette = [(plan.ref_l[k], self.by_key[k].ab, sims.get(k)) for k in gone]
                soft = spread(ab[i, :, :ch, :cw], plan.guides[i], active, min(ch, cw), palette, prior)
                hold = REFERENCE_KEEP if referenced else 0.0
                ab[i, :, :ch, :cw] = pull(soft, plan.guides[i], active, hold)
            if desc is not None and not referenced and MEMORY and i in hinted:
                fin.memory.remember(desc[i], L, ab[i, :, :ch, :cw].copy())
        return ab

    def notes(self) -> list[str]:
        """Lines for the run's summary, once the frames are through: hints the film never reached."""
        st = self.planning
        before, after = st.skipped, len(st.pending)
        if not before and not after:
            return []
        return [
            f"hints: {before + after} of {before + after + st.started} lie outside the decoded section "
            f"({before} before it, {after} after it) and were not used"
        ]

    @property
    def chooser(self) -> ShotChooser | None:
        """The choice of stills from a reference folder, shot by shot (None without one)."""
        chooser = self.reference.chooser if self.reference is not None else None
        # The matcher sees it as any StillChooser; the one made in create() is a ShotChooser.
        return chooser if isinstance(chooser, ShotChooser) else None

    def __call__(self, step: ModelStep, batch: LBatch, times: Sequence[float]) -> np.ndarray:
        """The model's ab (N, 2, h, w) float32 for ``batch`` with the guidance of its frames;
        ``times`` are the frames' times in seconds from the start of the film. The three steps
        one after the other, for callers that hold one batch at a time."""
        plan = self.plan(batch, times)
        return self.finish(batch, plan, self.model(step, batch, plan))


def guided(opts: ColorizeOptions) -> bool:
    """Whether ``opts`` ask for any guidance (hints, reference stills or a reference folder)."""
    return bool(opts.hints or opts.reference or opts.reference_dir)


def guide_for(
    opts: ColorizeOptions,
    width: int,
    height: int,
    rate: float | None,
    *,
    duration: float | None = None,
    frames: int | None = None,
) -> Guide | None:
    """The :class:`Guide` for the hints and references of ``opts`` on a film of ``width`` x
    ``height`` pixels (None when there are none: the pipeline then runs exactly as without).
    Hints are checked against the film here (UsageError naming the entry), before anything runs."""
    hints = getattr(opts, "hints", ())
    refs = getattr(opts, "reference", ())
    folder = getattr(opts, "reference_dir", None)
    if not hints and not refs and not folder:
        return None
    placed = place_hints(hints, width, height, rate, duration=duration, frames=frames)
    matcher = None
    if refs or folder:
        chooser = ShotChooser(folder, getattr(opts, "reference_drop", ())) if folder else None
        matcher = ReferenceMatcher(refs, duration=duration, chooser=chooser)
    return Guide(placed, (width, height), rate, matcher)


def guide_for_film(info: SourceInfo, opts: ColorizeOptions) -> Guide | None:
    """:func:`guide_for` a probed film: its coded size, frame rate, duration and frame count."""
    if not guided(opts):
        return None
    v = info.video
    rate = v.mean_rate
    return guide_for(
        opts,
        v.width,
        v.height,
        float(rate) if rate else None,
        duration=info.duration or v.duration,
        frames=v.frames,
    )


def frame_times(frames: Sequence[Frame], info: SourceInfo) -> list[float]:
    """Seconds from the start of the film of each decoded frame (its pts, less the stream start)."""
    start = info.video.start_time or 0.0
    return [float(f.pts * f.time_base) - start for f in frames]
