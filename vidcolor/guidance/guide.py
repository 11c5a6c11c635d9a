"""The model step with guidance: hints tracked through their shot, reference colours, per batch.

:class:`Guide` sits where the pipeline calls the model (stage [3]) and sees the frames in order:

1. every frame goes through its own scene-cut detector (the smoother's detector and thresholds,
   on the same L), and the point tracker moves the live hints onto it; a cut ends them all;
2. hints whose time has come start on this frame (a hint at a time between two frames starts on
   the later one, within half a frame);
3. the hints live on each frame (and those derived from the reference stills) become the
   network's hint input; the model runs in two halves, so the encoder's per-cell descriptors
   serve the matching below at no extra cost;
4. after the model, per frame in order: the shot's memory of its hinted frames colours what
   looks like them (guidance/memory.py; not where a reference still applies), then the soft
   spread of the live hints and of the shot's palette of ended ones, and the pull over the live
   hints' regions (guidance/render.py); a frame hints were placed on is then remembered.

Frames without any hint in a batch cost nothing extra; a batch without any hint calls the model
exactly as the unguided pipeline does (``hints=None``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vidcolor.frames import Frame, LBatch, SourceInfo
from vidcolor.guidance.hints import PlacedHint, place_hints
from vidcolor.guidance.memory import MEMORY, MEMORY_PRIOR, ShotMemory
from vidcolor.guidance.reference import (
    CELL,
    ReferenceMatcher,
    cell_grid,
    descriptors,
    has_encoder,
    split_forward,
)
from vidcolor.guidance.region import guide_l
from vidcolor.guidance.render import (
    DEFAULT_REACH,
    KEEP_VARIATION,
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
from vidcolor.pipeline.scene_cut import SceneCutDetector, small_luma

if TYPE_CHECKING:
    from vidcolor.options import ColorizeOptions
    from vidcolor.pipeline.model_step import ModelStep


class Guide:
    """Hints and references for one stream of frames (a film, or a clip in memory).

    ``hints`` are placed on a picture of ``frame_size`` = (width, height) pixels; ``rate`` is the
    frame rate (frames/s) the frame times count in. ``reference`` matches the film against
    reference stills (None: no references).
    """

    def __init__(
        self,
        hints: Sequence[PlacedHint],
        frame_size: tuple[int, int],
        rate: float | None,
        reference: ReferenceMatcher | None = None,
    ) -> None:
        self.pending = sorted(hints, key=lambda h: (h.time, h.key))
        self.frame_size = frame_size
        self.half_frame = 0.5 / rate if rate else 1e-6
        self.reference = reference
        self.tracker = PointTracker()
        self.detector = SceneCutDetector()
        self.by_key = {h.key: h for h in hints}
        self.spread: dict[int, float | None] = {}  # per hint: sigma of its soft spread, render px
        self.ref_l: dict[int, float] = {}  # per hint: the luma it was placed on
        self.palette: list[int] = []  # keys of this shot's ended hints
        self.described: dict[int, torch.Tensor] = {}  # per hint: the encoder's descriptor of its cell
        self.placed: dict[int, tuple[int, float, float]] = {}  # per hint: frame in batch, x, y placed
        self.memory = ShotMemory()  # the shot's hinted frames, as coloured
        self.started = 0  # hints placed on a frame so far
        self.skipped = 0  # hints whose frame lay before the section that was decoded

    def _start_due(self, i: int, t: float, G: np.ndarray, scale: tuple[float, float], short: int) -> None:
        while self.pending and self.pending[0].time <= t + self.half_frame:
            h = self.pending.pop(0)
            if t - h.time > 3 * self.half_frame:  # its frame was never seen (the section starts later)
                self.skipped += 1
                continue
            sx, sy = scale
            x, y = (h.x + 0.5) * sx - 0.5, (h.y + 0.5) * sy - 0.5
            reach = h.radius * 0.5 * (sx + sy) if h.radius is not None else DEFAULT_REACH * short
            track = self.tracker.add(h.key, x, y, max(reach, 1.0), LUMA_TOL, G)
            self.ref_l[h.key] = track.ref_l
            self.spread[h.key] = None if h.radius is None else max(reach, 1.0)
            self.placed[h.key] = (i, x, y)
            self.started += 1

    def _describe(self, desc: torch.Tensor, cells: tuple[int, int]) -> None:
        """Keep the descriptor (D,) of the cell each hint placed in this batch sits in; ``desc``
        is the batch's (N, hc*wc, D) on the ``cells`` = (hc, wc) grid."""
        hc, wc = cells
        for key, (i, x, y) in self.placed.items():
            cy = min(max(int(y) // CELL, 0), hc - 1)
            cx = min(max(int(x) // CELL, 0), wc - 1)
            self.described[key] = desc[i, cy * wc + cx].clone()

    def _similarity(
        self, desc: torch.Tensor | None, i: int, cells: tuple[int, int], keys: Sequence[int]
    ) -> dict[int, np.ndarray]:
        """Per hint key: how much each cell (hc, wc) of frame ``i`` looks like where the hint was
        placed (cosine similarity of the encoder descriptors), for the hints described so far."""
        if desc is None:
            return {}
        known = [k for k in dict.fromkeys(keys) if k in self.described]
        if not known:
            return {}
        hc, wc = cells
        sims = (desc[i] @ torch.stack([self.described[k] for k in known]).T).T.reshape(-1, hc, wc)
        return {k: sims[j].cpu().numpy() for j, k in enumerate(known)}

    def __call__(self, step: ModelStep, batch: LBatch, times: Sequence[float]) -> np.ndarray:
        """The model's ab (N, 2, h, w) float32 for ``batch`` with the guidance of its frames;
        ``times`` are the frames' times in seconds from the start of the film."""
        n, _, hp, wp = batch.L.shape
        ch, cw = batch.content
        W, H = self.frame_size
        scale = (cw / W, ch / H)
        per_frame: list[list[ActiveHint]] = []
        guides: list[np.ndarray] = []
        palettes: list[tuple[int, ...]] = []
        cuts: list[bool] = []
        self.placed.clear()
        for i in range(n):
            L = batch.L[i, 0, :ch, :cw]
            G = guide_l(L)
            cut = self.detector.is_cut(small_luma(batch.L[i, 0]))
            ended = self.tracker.next_frame(L, G, cut)
            cuts.append(cut)
            if cut:
                self.palette.clear()
                self.described.clear()
            else:
                self.palette.extend(ended)
            self._start_due(i, times[i], G, scale, min(ch, cw))
            active = [
                ActiveHint(t.x, t.y, self.by_key[t.key].ab, t.reach, t.tol, spread=self.spread[t.key])
                for t in self.tracker.tracks.values()
            ]
            per_frame.append(active)
            guides.append(G)
            palettes.append(tuple(self.palette))
        planes = np.stack([hint_planes(a, (hp, wp)) for a in per_frame]) if any(per_frame) else None
        if not getattr(getattr(step.model, "config", None), "hints", False):
            planes = None  # a model without hint inputs (upstream ones): the pull alone applies the hints
        wants = (MATCH_FEATURES or MEMORY) and (any(per_frame) or any(palettes) or bool(self.memory.frames))
        wants = wants and has_encoder(step.model)
        cells = cell_grid((ch, cw))
        descs: list[torch.Tensor] = []

        def keep(desc: torch.Tensor) -> None:
            descs.append(desc.float())

        def keep_then_planes(feats: dict[Any, torch.Tensor]) -> np.ndarray | None:
            keep(descriptors(feats, cells))
            return planes

        if self.reference is not None:
            ab = self.reference.run(step, batch, times, min(ch, cw), planes, keep if wants else None)
        elif wants:
            ab = split_forward(step, batch, keep_then_planes)
        elif planes is None:
            ab = step(batch)
        else:
            ab = step(batch, planes)
        desc = descs[0] if descs else None
        if desc is not None:
            self._describe(desc, cells)
        hinted = {f for f, _, _ in self.placed.values()}  # frames of the batch hints were placed on
        for i, active in enumerate(per_frame):
            if cuts[i]:
                self.memory.forget()
            L = batch.L[i, 0, :ch, :cw]
            # Where a reference coloured the frame, the hints' soft spread trusts that more.
            referenced = self.reference is not None and self.reference.covers(times[i])
            prior: float | np.ndarray | None = REFERENCE_PRIOR if referenced else None
            if desc is not None and not referenced and self.memory.frames:
                ab[i, :, :ch, :cw], conf = self.memory.recall(desc[i], L, ab[i, :, :ch, :cw], cells)
                if conf is not None:  # and where the shot's hinted frames did
                    prior = SPREAD_PRIOR + conf * (MEMORY_PRIOR - SPREAD_PRIOR)
            gone = () if referenced else palettes[i]  # a reference knows better what comes back
            if active or gone:
                sims = self._similarity(desc, i, cells, gone)
                palette = [(self.ref_l[k], self.by_key[k].ab, sims.get(k)) for k in gone]
                soft = spread(ab[i, :, :ch, :cw], guides[i], active, min(ch, cw), palette, prior)
                hold = REFERENCE_KEEP if referenced else KEEP_VARIATION
                ab[i, :, :ch, :cw] = pull(soft, guides[i], active, hold)
            if desc is not None and not referenced and MEMORY and i in hinted:
                self.memory.remember(desc[i], L, ab[i, :, :ch, :cw].copy())
        return ab


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
    if not hints and not refs:
        return None
    placed = place_hints(hints, width, height, rate, duration=duration, frames=frames)
    matcher = None
    if refs:
        matcher = ReferenceMatcher(refs, duration=duration)
    return Guide(placed, (width, height), rate, matcher)


def guide_for_film(info: SourceInfo, opts: ColorizeOptions) -> Guide | None:
    """:func:`guide_for` a probed film: its coded size, frame rate, duration and frame count."""
    if not (getattr(opts, "hints", ()) or getattr(opts, "reference", ())):
        return None
    v = info.video
    rate = v.average_rate or v.guessed_rate
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
