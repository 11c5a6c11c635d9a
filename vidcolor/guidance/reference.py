"""Reference stills: where the film shows content like a reference's, it takes the reference's colours.

How (measured on the evaluation clips, reference = the first colour frame of each shot):

- Both the film frame and each reference are described, per cell of 16x16 render pixels, by the
  colorizer's own encoder features: the 1/8, 1/16 and 1/32 scale maps (40 + 112 + 320 channels),
  each normalised per cell and concatenated. The frame's features are the ones the model computes
  anyway (the model is run in two halves, encoder then decoder, so matching adds no encoder pass).
- Every frame cell takes the ab of its most similar reference cell (cosine similarity, over all
  references whose time range covers the frame). Averaged against the truth, this best match is
  within 3 ab units of the true cell colour on the evaluation clips, where the automatic model is
  off by about 20 (a softmax over matches was no better, finer 1/8 cells cost 4x as much).
- The confidence of a cell grows linearly from 0 at a similarity of ``SIM_LOW`` to 1 at
  ``SIM_HIGH``: unrelated content (another scene) mostly falls below, so there the model's own
  colour stays. The thresholds trade the gain of a right reference against the harm of a wrong
  one. Whole evaluation clips, first frame of each shot as reference: 0.55/0.75 gave CIEDE2000
  0.390x grey and colourfulness 0.787x the truth's, 0.45/0.65 0.351x and 0.824x, 0.35/0.55 0.343x
  and 0.841x (later frames of pans and zooms match more weakly). A frame given the first frame of
  *another* clip as reference (frame 12 of each clip against the 6 others, no smoothing) moved
  CIEDE2000 from the automatic 11.22 to 11.61, 11.87 and 12.50 respectively: 0.45/0.65 keeps
  most of the gain at half the harm of 0.35/0.55.
- What a cell takes is not only the reference cell's mean ab but the line ab = A * L + B fitted
  over its pixels, applied to the frame's own L: petals and the dark between them keep their
  contrast of colour. (Against the cell means snapped to luma edges by a guided filter, this cut
  CIEDE2000 by a further ~15% and raised colourfulness from 0.84 to 0.89 of the truth's on the
  first 8 frames of each evaluation clip; a guided filter on top of the lines made it worse, so
  there is none.) The lines are interpolated between cell centres, and the model's
  ab is blended toward the result by the confidence. The matched colours also go to the network
  as hints, at the cells matched with full confidence (sparse patches, as the network was trained
  on), so the parts the match leaves out lean the same way.

A reference can be limited to a time range of the film ([start, end) in seconds).

(Over 400 lines: the matching, the cell lines and the still preparation share the descriptor
and cell geometry defined here; the measured thresholds above belong beside them.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.color import rgb_to_lab
from vidcolor.errors import InputError, UsageError
from vidcolor.frames import LBatch
from vidcolor.references import Reference
from vidcolor.stages.batch_l import render_shape

if TYPE_CHECKING:
    from vidcolor.stages.model_step import ModelStep

CELL = 16  # render pixels: matching is done per cell of the 1/16 scale feature map
FEATURE_SCALES = (8, 16, 32)  # encoder maps the descriptor is made of
SIM_LOW = 0.45  # cosine similarity below which a cell takes nothing from a reference
SIM_HIGH = 0.65  # similarity from which a cell takes the reference's colour fully
LINE_EPS = 4.0  # (L units)^2: shrinks a cell's ab-over-L slope where its lightness hardly varies
LINE_SLOPE = 3.0  # ab units per L unit: the steepest slope a cell's line may have
AB_MAX = 110.0  # ab units: what a transferred colour is clipped to
HINT_EVERY = 2  # cells: net hints are placed on a grid of every other cell ...
HINT_CONFIDENCE = 1.0  # ... where the match is at least this confident


def load_rgb(ref: Reference) -> np.ndarray:
    """The reference as RGB uint8 (H, W, 3); InputError naming the file when it cannot be read."""
    img = ref.image
    if isinstance(img, np.ndarray):
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise InputError(
                "a reference array RGB uint8 (H, W, 3)", f"{img.dtype} {img.shape}", "convert it first"
            )
        return img
    path = Path(img)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(
            "a readable reference image", f"{path}: {e.strerror or e}", "check the path"
        ) from None
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if bgr is None:
        raise InputError(
            "a reference still (PNG, JPEG, TIFF, BMP or WebP)",
            f"{path} that cannot be decoded",
            "pass a colour image",
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def check_references(refs: Sequence[Reference], duration: float | None) -> None:
    """Refuse, before anything runs, a reference that cannot be read or whose range starts after
    the end of the film."""
    for r in refs:
        load_rgb(r)
        if duration is not None and r.start is not None and r.start >= duration:
            raise UsageError(
                f"a reference range that starts before the end of the film ({duration:.3f} s)",
                f"{r.label()} from {r.start:g} s",
                "fix the range",
            )


# ----------------------------------------------------------------------------------- matching


def descriptors(feats: dict[Any, torch.Tensor], cells: tuple[int, int]) -> torch.Tensor:
    """Encoder features -> per-cell descriptors (B, hc*wc, D), unit length, float32, over the
    top-left ``cells`` = (hc, wc) cells of the 1/16 grid."""
    ref = feats[16]
    size = (int(ref.shape[2]), int(ref.shape[3]))
    parts = []
    for s in FEATURE_SCALES:
        f = feats[s].float()
        if s < 16:
            f = F.adaptive_avg_pool2d(f, size)
        elif s > 16:
            f = F.interpolate(f, size=size, mode="bilinear", align_corners=False)
        parts.append(F.normalize(f, dim=1))
    d = torch.cat(parts, 1)[:, :, : cells[0], : cells[1]]
    d = F.normalize(d, dim=1)
    return d.flatten(2).transpose(1, 2).contiguous()


def has_encoder(model: object) -> bool:
    """Whether ``model`` runs in two halves (a vidcolor model), so its features can be matched."""
    return all(hasattr(model, a) for a in ("encode", "decode", "ab_from_heads"))


def cell_grid(content: tuple[int, int]) -> tuple[int, int]:
    """(hc, wc): the CELL x CELL cells that cover a picture area of ``content`` = (h, w) pixels."""
    return -(-content[0] // CELL), -(-content[1] // CELL)


def guided_filter(guide: np.ndarray, src: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter: ``src`` (C, h, w) float32 made to follow the edges of ``guide``
    (h, w) float32 within windows of (2r+1)^2 pixels."""
    k = (2 * r + 1, 2 * r + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, k, borderType=cv2.BORDER_REFLECT)

    mg = box(guide)
    vg = box(guide * guide) - mg * mg
    out = np.empty_like(src)
    for c in range(src.shape[0]):
        ms = box(src[c])
        cov = box(guide * src[c]) - mg * ms
        a = cov / (vg + eps)
        b = ms - a * mg
        out[c] = box(a) * guide + box(b)
    return out


@dataclass
class PreparedStill:
    ref: Reference
    desc: torch.Tensor  # (M, D) unit descriptors of its cells
    ab: torch.Tensor  # (M, 4) per cell: ab = A * L + B as (A_a, A_b, B_a, B_b), or (0, 0, mean a, mean b)


def still_features(
    step: ModelStep, rgb: np.ndarray, render: int
) -> tuple[np.ndarray, dict[Any, torch.Tensor], tuple[int, int]]:
    """A colour still RGB uint8 (H, W, 3) seen as the model sees a frame: its Lab (ch, cw, 3)
    float32 at the render size (short side ``render`` px), the encoder's features of its L (padded
    to the model's stride as a frame is), and the picture area (ch, cw) in render pixels."""
    h, w = rgb.shape[:2]
    ch, cw, ph, pw = render_shape(h, w, render, step.stride)
    small = cv2.resize(rgb, (cw, ch), interpolation=cv2.INTER_AREA if ch * cw <= h * w else cv2.INTER_LINEAR)
    lab = rgb_to_lab(small.astype(np.float32) / 255.0)
    L = np.pad(lab[..., 0], ((0, ph - ch), (0, pw - cw)), mode="edge")
    with torch.inference_mode():
        t = torch.from_numpy(np.ascontiguousarray(L))[None, None].to(step.device, step.dtype)
        feats = step.runs.encode(t)  # type: ignore[operator]  # nn.Module types its attributes as Tensor | Module
    return lab, feats, (ch, cw)


def prepare_still(step: ModelStep, rgb: np.ndarray, render: int, ref: Reference) -> PreparedStill:
    """A still RGB uint8 (H, W, 3) ready to be matched: its cells' descriptors and colour lines."""
    lab, feats, content = still_features(step, rgb, render)
    with torch.inference_mode():
        desc = descriptors(feats, cell_grid(content))[0]
    return PreparedStill(ref, desc, cell_models(lab).to(desc.device))


@dataclass(frozen=True)
class SeenBatch:
    """A batch as the references see it, between the model's two halves.

    feats: the encoder's features of ``batch`` (the model's first half). times: seconds from the
    start of the film, per frame. cuts: per frame, whether a shot starts on it (None: no cut in
    the batch). render: the render size, pixels.
    """

    step: ModelStep
    batch: LBatch
    feats: dict[Any, torch.Tensor]
    times: Sequence[float]
    cuts: Sequence[bool] | None
    render: int


class StillChooser(Protocol):
    """What picks stills shot by shot (guidance/choose.py's ShotChooser, which builds on this module)."""

    def for_batch(self, seen: SeenBatch) -> list[list[PreparedStill]]: ...


class ReferenceMatcher:
    """Matches the frames of a film against reference stills (see the module doc): the user's
    ``refs``, and, with a ``chooser``, the stills it chooses shot by shot from a folder
    (guidance/choose.py; a user's reference takes precedence in its time range)."""

    def __init__(
        self,
        refs: Sequence[Reference],
        *,
        duration: float | None = None,
        chooser: StillChooser | None = None,
    ) -> None:
        check_references(refs, duration)
        self.refs = tuple(refs)
        self.chooser = chooser
        self._prepared: list[PreparedStill] | None = None
        self._render: tuple[int, int] | None = None

    def _prepare(self, step: ModelStep, render: int) -> list[PreparedStill]:
        if self._prepared is not None and self._render == (render, step.stride):
            return self._prepared
        if not has_encoder(step.model):
            raise UsageError(
                "a vidcolor model for --reference (it matches on the model's own features)",
                step.name,
                "use the default model, or drop --reference",
            )
        out = [prepare_still(step, load_rgb(ref), render, ref) for ref in self.refs]
        self._prepared, self._render = out, (render, step.stride)
        return out

    def _live(self, seen: SeenBatch) -> list[list[PreparedStill]]:
        """Per frame of the batch, the stills it is matched against: the user's references that
        cover it, else the chooser's for its shot (a shot starting in the batch is chosen here)."""
        prepared = self._prepare(seen.step, seen.render)
        chosen = None
        if self.chooser is not None:
            chosen = self.chooser.for_batch(seen)
        out = []
        for i, t in enumerate(seen.times):
            own = [p for p in prepared if p.ref.covers(t)]
            out.append(own if own or chosen is None else chosen[i])
        return out

    def match(
        self,
        desc: torch.Tensor,
        cells: tuple[int, int],
        live: Sequence[Sequence[PreparedStill]],
    ) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """Per frame of the batch's descriptors ``desc`` (N, hc*wc, D) on the ``cells`` = (hc, wc)
        grid and the stills ``live`` for it: (matched ab (2, hc, wc), confidence (hc, wc)), or None
        when it has none."""
        hc, wc = cells
        out: list[tuple[np.ndarray, np.ndarray] | None] = []
        for i, refs in enumerate(live):
            if not refs:
                out.append(None)
                continue
            rd = torch.cat([p.desc for p in refs]) if len(refs) > 1 else refs[0].desc
            rab = torch.cat([p.ab for p in refs]) if len(refs) > 1 else refs[0].ab
            out.append(best_match(desc[i], rd, rab, (hc, wc), SIM_LOW, SIM_HIGH))
        return out

    def run(
        self,
        step: ModelStep,
        batch: LBatch,
        times: Sequence[float],
        render: int,
        user_planes: np.ndarray | None,
        on_descriptors: Callable[[torch.Tensor], None] | None = None,
        cuts: Sequence[bool] | None = None,
    ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray] | None]]:
        """The model's ab (N, 2, h, w) for ``batch`` with the references' matched cells shown to
        the network as hints (and the users' hint planes, when given, as well), and per frame the
        match (lines, confidence) that :func:`blend_matched` draws the frame's ab toward, or None
        where no reference covers the frame. ``on_descriptors`` is shown the batch's cell
        descriptors (N, hc*wc, D), made once for the matching here and the caller. ``cuts`` says
        per frame whether a shot starts on it (the chooser's shots; None: no cut in the batch)."""
        self._prepare(step, render)  # refuses a model without features before it runs
        ch, cw = batch.content
        n, _, hp, wp = batch.L.shape
        fields: list[tuple[np.ndarray, np.ndarray] | None] = []

        def planes_for(feats: dict[Any, torch.Tensor]) -> np.ndarray | None:
            cells = cell_grid((ch, cw))
            desc = descriptors(feats, cells)
            if on_descriptors is not None:
                on_descriptors(desc)
            fields.extend(
                self.match(desc, cells, self._live(SeenBatch(step, batch, feats, times, cuts, render)))
            )
            planes = user_planes
            for i, fc in enumerate(fields):
                if fc is None:
                    continue
                ab, conf = fc
                sel = np.zeros_like(conf, bool)
                sel[HINT_EVERY // 2 :: HINT_EVERY, HINT_EVERY // 2 :: HINT_EVERY] = True
                ys, xs = np.nonzero(sel & (conf >= HINT_CONFIDENCE))
                if len(ys) == 0:
                    continue
                if planes is None:
                    planes = np.zeros((n, 3, hp, wp), np.float32)
                for y, x in zip(ys, xs, strict=True):
                    cy, cx = y * CELL + CELL // 2, x * CELL + CELL // 2
                    if cy >= ch or cx >= cw or planes[i, 2, cy, cx] > 0:
                        continue  # outside the picture, or a user's hint is there
                    lc = float(batch.L[i, 0, cy - 2 : cy + 3, cx - 2 : cx + 3].mean())
                    colour = np.clip(ab[:2, y, x] * lc + ab[2:4, y, x], -AB_MAX, AB_MAX)
                    planes[i, :2, cy - 2 : cy + 3, cx - 2 : cx + 3] = colour[:, None, None]
                    planes[i, 2, cy - 2 : cy + 3, cx - 2 : cx + 3] = 1.0
            return planes

        return split_forward(step, batch, planes_for), fields


def best_match(
    desc: torch.Tensor,
    ref_desc: torch.Tensor,
    ref_lines: torch.Tensor,
    cells: tuple[int, int],
    low: float,
    high: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Each cell of a frame, described by ``desc`` (hc*wc, D), takes the line of its most similar
    reference cell (``ref_desc`` (M, D), ``ref_lines`` (M, 4)); its confidence grows from 0 at
    similarity ``low`` to 1 at ``high``. Returns (lines (4, hc, wc), confidence (hc, wc)), float32."""
    hc, wc = cells
    sim, j = (desc @ ref_desc.T).max(dim=1)
    lines = ref_lines[j].T.reshape(-1, hc, wc).cpu().numpy()
    conf = ((sim - low) / (high - low)).clamp(0, 1).reshape(hc, wc).cpu().numpy()
    return lines.astype(np.float32), conf.astype(np.float32)


def blend_matched(
    cur: np.ndarray, L: np.ndarray, lines: np.ndarray, conf: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The model's ab ``cur`` (2, h, w) drawn toward the matched colour, per pixel the matched cell
    lines (4, hc, wc) applied to its own L (h, w), by the matches' confidence (hc, wc); the lines
    and confidences are interpolated between cell centres. Returns a new array and the per-pixel
    confidence it was blended by (h, w) in [0, 1]."""
    up = upsample_cells([*lines, conf], L.shape)
    ab_m = np.stack([up[0] * L + up[2], up[1] * L + up[3]])
    np.clip(ab_m, -AB_MAX, AB_MAX, out=ab_m)
    w = np.clip(up[4], 0.0, 1.0)
    ab_m -= cur  # cur + w * (ab_m - cur), in place
    ab_m *= w
    ab_m += cur
    return ab_m.astype(np.float32, copy=False), w


def cell_models(lab: np.ndarray) -> torch.Tensor:
    """Per CELL x CELL cell of a Lab picture (h, w, 3): the least-squares line ab = A * L + B over
    its pixels (A shrunk toward 0 by ``LINE_EPS`` and capped at ``LINE_SLOPE``), as (M, 4) float32
    rows (A_a, A_b, B_a, B_b). A matched cell brings the reference's colour *and* how it varies with
    lightness (petals and the dark between them), not only its mean; ``LINE_EPS`` = inf gives means."""
    t = torch.from_numpy(np.ascontiguousarray(lab.transpose(2, 0, 1)))[None].double()

    def mean(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, CELL, ceil_mode=True)[0]  # partial cells average what they hold

    L, ab = t[:, :1], t[:, 1:]
    mL, mab = mean(L), mean(ab)
    var = mean(L * L) - mL * mL
    cov = mean(L * ab) - mL * mab
    A = (cov / (var + LINE_EPS)).clamp(-LINE_SLOPE, LINE_SLOPE)
    B = mab - A * mL
    return torch.cat([A, B]).flatten(1).T.float().contiguous()


def upsample_cells(
    planes: Iterable[np.ndarray], content: tuple[int, int], cell: int = CELL
) -> list[np.ndarray]:
    """Planes (hc, wc) of values at the centres of cells of ``cell`` pixels -> views (ch, cw) by
    bilinear interpolation between centres, cut to ``content`` = (ch, cw) (each a view into its
    own enlarged plane: nothing is copied to cut it)."""
    ch, cw = content
    out = []
    for x in planes:
        hc, wc = x.shape
        out.append(cv2.resize(x, (wc * cell, hc * cell), interpolation=cv2.INTER_LINEAR)[:ch, :cw])
    return out


@torch.inference_mode()
def split_forward(step: ModelStep, batch: LBatch, planes_for: Any) -> np.ndarray:
    """The model step as ModelStep runs it, in two halves: the encoder, then ``planes_for(feats)``
    -> hint planes (N, 3, h, w) or None, then the decoder and heads. Same arithmetic as
    ``model(L, hints)``; the features serve the reference matching at no extra cost."""
    model = step.runs
    L = torch.from_numpy(batch.L)
    if step.device.type == "cuda":
        L = L.pin_memory().to(step.device, non_blocking=True).to(memory_format=torch.channels_last)
    L = L.to(step.dtype)
    feats = model.encode(L)  # type: ignore[operator]  # nn.Module types its attributes as Tensor | Module
    planes = planes_for(feats)
    hints = None if planes is None else torch.from_numpy(planes).to(step.device, step.dtype)
    logits, reg = model.decode(feats, hints)  # type: ignore[operator]  # nn.Module types its attributes as Tensor | Module
    ab = model.ab_from_heads(logits, reg, (L.shape[2], L.shape[3])).float()  # type: ignore[operator]  # nn.Module types its attributes as Tensor | Module
    return ab.cpu().numpy()
