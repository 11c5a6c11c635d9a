"""Turn the hints active on a frame into colour: what the network is shown, and what is done after.

Three parts, all at the render size, applied in this order:

1. :func:`hint_planes` -- the network's own hint input (B, 3, h, w) = [a, b, mask]: a square patch
   of ``NET_PATCH`` pixels at each hint carrying its ab, as the network was trained on (patches of
   1..9 px with the patch's mean ab). The network spreads it over what it takes to be the same
   surface.
2. :func:`spread` -- after the model, a soft, far-reaching lean of every pixel toward the hints,
   weighted by geodesic distance (luma edges count as distance) and luma likeness, with the
   model's own colour as a prior of small weight: an edge-aware interpolation of the hints, in the
   spirit of Levin, Lischinski and Weiss, "Colorization using Optimization" (2004), at a fraction
   of its cost. A hint given a radius spreads only that far. Hints whose track ended stay in
   their shot as its palette: weakly wherever the luma is like theirs (``PALETTE_WEIGHT``), and
   strongly (``PALETTE_MATCH``) where a cell looks, to the colorizer's encoder, like the place
   the hint was put (cosine similarity of the per-cell descriptors of guidance/reference.py,
   from ``MATCH_LOW`` to ``MATCH_HIGH``), so a surface that comes back into view takes its own
   hint's colour rather than any of like luma.
3. :func:`pull` -- ab is drawn firmly toward each hint over the *region* it sits in: the
   connected pixels of similar blurred luma (guidance/region.py) within its reach. The weight is 1
   inside the region up to half the reach and falls smoothly to 0 at the reach; the region's
   border is softened by a pixel. Where hints overlap, their pulls are averaged by weight. The
   network alone moves colour only approximately (it saw hints only in training, at other sizes,
   and its output at a point is not exactly the hinted ab); the pull makes the hint hold, which a
   tracked hint on a moving object needs in every frame.

The constants were chosen by measurement on ../shared/data/eval/videos with 10 hints per shot from
the truth (``vidcolor eval --hints-from-truth 10``; CIEDE2000 as a fraction of the grey
baseline's, first 8 frames of each clip, interim checkpoint): the pull alone, reach 0.2/0.35 of
the short side, gave 1.17/0.99; adding the soft spread (Euclidean, sigma 0.5) 0.68, geodesic
(2 px per L unit of edge) 0.63; a smaller pull (reach 0.1, luma tolerance 8) 0.59, as a large
pull over a whole luma region pulls in what does not belong to it. The network's own hint input
makes no measurable difference: with the shipped weights, 10 true-colour hints move its output
by 0.04 ab units on average (40 hints: 0.15), so it learned next to nothing from its hint
channels, and the effect of a hint is all in the spread and the pull. The input stays, for a
network that uses it. Over whole clips, hints leave the picture in pans and
zooms; keeping ended hints as the shot's palette took the whole-clip figure from 0.75 to 0.63.
The palette's weight, over the whole clips (shipped model, 10 hints per shot): 0.1 gave 0.618x
grey and 0.756x the truth's colourfulness, 0.2 0.615x and 0.751x, 0.3 0.619x and 0.744x, 0.6
0.639x and 0.730x: a memory that is too strong paints what comes into view with the wrong hint.

Telling the palette's colours apart by the encoder's features (first 24 frames of each clip,
10 hints per shot, shipped model): luma alone 0.604x grey and 0.809x the truth's colourfulness;
feature weight 1 0.592x / 0.811x, 3 0.584x / 0.810x, 10 0.584x / 0.802x; likeness from 0.3 to
0.6 0.578x / 0.801x, from 0.5 to 0.8 0.591x / 0.816x. Tried on the same frames and not adopted:
gating the spread of *live* hints by likeness (half of it: 0.591x / 0.796x; all of it: 0.640x /
0.749x, as the model's cautious colour shows where the gate closes); letting a live hint reach
every cell like its place however far (weight 1: 0.600x / 0.808x); scaling a hint's a*b* with
the lightness over its surface (a*, b* and L* grow together with the light in CIE Lab; ratio
bounded to 0.5..2): 0.5841x / 0.8097x against 0.5842x / 0.8106x without.

Hints with a reference (10 hints and the first true frame of each shot, first 24 frames): the
pull keeping the reference's variation inside a hint's region (``REFERENCE_KEEP``) 0, 0.5 and 1
gave 0.3314x / 0.8253x, 0.3301x / 0.8256x and 0.3294x / 0.8262x; leaving the ended hints'
palette out where a reference applies (it knows better what comes back into view), with 1:
0.3260x / 0.8283x, adopted. Over whole clips the hints' soft spread still evened out the
reference's colour: the model's (here, the reference's) weight in the spread (``REFERENCE_PRIOR``)
5, 20 and 100 gave 0.369x / 0.791x, 0.352x / 0.816x and 0.349x / 0.827x (reference alone: 0.351x
/ 0.824x): where a reference coloured the frame a hint holds over its region and barely beyond.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from vidcolor.guidance.reference import CELL as FEATURE_CELL
from vidcolor.guidance.reference import upsample_cells
from vidcolor.guidance.region import grow_region, patch_value

NET_PATCH = 5  # render pixels: side of the square patch each hint shows the network
DEFAULT_REACH = 0.1  # of the render short side: reach of the full pull of a hint without a radius
LUMA_TOL = 8.0  # CIE L units: blurred-luma difference that still counts as the hint's region
FLAT_TOP = 0.5  # fraction of the reach over which the pull is full
SOFTEN = 1.0  # render pixels: Gaussian sigma that softens the region's border
SPREAD_SIGMA = 1.0  # of the render short side: geodesic sigma of the soft spread of a hint without a radius
SPREAD_LUMA = 12.0  # CIE L units: luma affinity of the soft spread
SPREAD_PRIOR = 0.05  # weight of the model's own colour in the soft spread
SPREAD_SHARPEN = 12.0  # power on the hints' weights when their colours are mixed
SPREAD_EDGE = 2.5  # render pixels of distance per L unit of luma edge crossed (geodesic distance)
SPREAD_CELL = 8  # render pixels: grid of the soft spread
KEEP_CHROMA = True  # a mix of hint colours keeps their mean chroma
REFERENCE_KEEP = 1.0  # the pull's ``keep`` where a reference coloured the frame (a hint alone: 0)
REFERENCE_PRIOR = 100.0  # the model's weight in the soft spread where a reference coloured the frame
PALETTE_WEIGHT = 0.2  # weight of an ended hint's colour, by luma alone, for the rest of its shot
MATCH_FEATURES = True  # hints remember the encoder's description of where they were placed
MATCH_LOW = 0.4  # cosine similarity to a hint's place below which a cell does not look like it ...
MATCH_HIGH = 0.7  # ... and from which it looks like it fully
PALETTE_MATCH = 3.0  # weight of an ended hint's colour where a cell looks like its place


@dataclass(frozen=True)
class ActiveHint:
    """A hint on one frame, in render pixels of the picture area: position, ab, reach, luma
    tolerance, and how strongly it pulls (1 for a user's hint)."""

    x: float
    y: float
    ab: tuple[float, float]
    reach: float
    tol: float = LUMA_TOL
    strength: float = 1.0
    spread: float | None = (
        None  # render pixels: sigma of the soft spread (None: SPREAD_SIGMA of the short side)
    )


def likeness(sim: np.ndarray | None, shape: tuple[int, int], cell: int) -> np.ndarray | None:
    """Similarities (hc, wc) per ``FEATURE_CELL`` cell of a picture -> weights in [0, 1] on its grid
    of ``cell`` pixels, ``shape`` = (hs, ws) (the cells cover the picture, so they cover its grid):
    0 up to ``MATCH_LOW``, 1 from ``MATCH_HIGH``."""
    if sim is None:
        return None
    r = np.clip((sim - MATCH_LOW) / (MATCH_HIGH - MATCH_LOW), 0.0, 1.0).astype(np.float32)
    return upsample_cells([r], shape, FEATURE_CELL // cell)[0]


def hint_planes(
    hints: Sequence[ActiveHint],
    shape: tuple[int, int],
    patch: int | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The network's hint input for one frame: float32 (3, h, w) = [a, b, mask] in raw ab units,
    zero where there is no hint. ``shape`` is the padded (h, w) of the batch; ``patch`` the side
    of each hint's square (None: ``NET_PATCH``; 0: the network is shown nothing). ``out``: a
    zeroed (3, h, w) float32 array to draw into (e.g. one frame of the batch's planes)."""
    h, w = shape
    patch = NET_PATCH if patch is None else patch
    if out is None:
        out = np.zeros((3, h, w), np.float32)
    if patch <= 0:
        return out
    lo, hi = (patch - 1) // 2, patch // 2 + 1
    for hint in hints:
        cx, cy = int(round(hint.x)), int(round(hint.y))
        y0, y1, x0, x1 = max(0, cy - lo), min(h, cy + hi), max(0, cx - lo), min(w, cx + hi)
        out[0, y0:y1, x0:x1] = hint.ab[0]
        out[1, y0:y1, x0:x1] = hint.ab[1]
        out[2, y0:y1, x0:x1] = 1.0
    return out


def hint_weight(G: np.ndarray, hint: ActiveHint) -> tuple[slice, slice, np.ndarray]:
    """The pull weight of one hint: (rows, cols, float32 weights in [0, 1] over that box)."""
    reg = grow_region(G, hint.x, hint.y, hint.reach, hint.tol)
    m = reg.mask.astype(np.float32)
    if SOFTEN > 0:
        m = cv2.GaussianBlur(m, (0, 0), SOFTEN, borderType=cv2.BORDER_CONSTANT) * reg.mask
        # A pixel inside keeps at least half its weight, so thin regions are not washed out.
        m = np.maximum(m, 0.5 * reg.mask)
    yy, xx = np.ogrid[reg.y0 : reg.y1, reg.x0 : reg.x1]
    t = np.sqrt((xx - hint.x) ** 2 + (yy - hint.y) ** 2) / max(hint.reach, 1e-6)
    s = np.clip((1.0 - t) / max(1.0 - FLAT_TOP, 1e-6), 0.0, 1.0)
    falloff = s * s * (3.0 - 2.0 * s)  # smoothstep: 1 up to FLAT_TOP of the reach, 0 at the reach
    return slice(reg.y0, reg.y1), slice(reg.x0, reg.x1), (m * falloff * hint.strength).astype(np.float32)


def geodesic(G: np.ndarray, seeds: Sequence[tuple[float, float]], beta: float, rounds: int = 2) -> np.ndarray:
    """Geodesic distances (K, h, w) float32 from each seed (x, y) over the picture ``G`` (h, w):
    a step to a 4-neighbour costs ``1 + beta * |dG|``, so crossing a luma edge of ``e`` L units
    costs as much as ``beta * e`` pixels. Raster sweeps (down, up, right, left) repeated
    ``rounds`` times, vectorised over the seeds and the other axis."""
    h, w = G.shape
    k = len(seeds)
    D = np.full((k, h, w), np.inf, np.float32)
    for i, (x, y) in enumerate(seeds):
        D[i, min(max(int(round(y)), 0), h - 1), min(max(int(round(x)), 0), w - 1)] = 0.0
    cv = 1.0 + beta * np.abs(np.diff(G, axis=0))  # (h-1, w): cost between rows y and y+1
    ch = 1.0 + beta * np.abs(np.diff(G, axis=1))  # (h, w-1): cost between columns x and x+1
    for _ in range(rounds):
        for y in range(1, h):
            np.minimum(D[:, y], D[:, y - 1] + cv[y - 1], out=D[:, y])
        for y in range(h - 2, -1, -1):
            np.minimum(D[:, y], D[:, y + 1] + cv[y], out=D[:, y])
        for x in range(1, w):
            np.minimum(D[:, :, x], D[:, :, x - 1] + ch[:, x - 1], out=D[:, :, x])
        for x in range(w - 2, -1, -1):
            np.minimum(D[:, :, x], D[:, :, x + 1] + ch[:, x], out=D[:, :, x])
    return D


def spread(
    ab: np.ndarray,
    G: np.ndarray,
    hints: Sequence[ActiveHint],
    short: int,
    palette: Sequence[tuple[float, tuple[float, float], np.ndarray | None]] = (),
    prior: float | np.ndarray | None = None,
) -> np.ndarray:
    """The soft, far-reaching part: every pixel leans toward the hints' colours, each hint weighted
    by a Gaussian of its *geodesic* distance (luma edges count as distance, ``SPREAD_EDGE``; sigma
    ``SPREAD_SIGMA`` of the short side ``short``) times a luma affinity (Gaussian of the
    blurred-L difference to the hint's, sigma ``SPREAD_LUMA``). The model's own colour counts as a
    hint of weight ``prior`` (default ``SPREAD_PRIOR``) everywhere, so a pixel far from every hint
    keeps it. A hint brings its flat colour (carrying the model's variation around it measured
    no better). Computed on a grid of ``SPREAD_CELL`` pixels and brought back with bilinear interpolation.

    ``palette``: (luma, ab) of the shot's hints whose track has ended (the point left the picture
    or could not be followed). They stay in the shot as a weak memory (weight ``PALETTE_WEIGHT``,
    luma affinity only, no place): what was seen of the shot's colours still says something about
    the parts of it that come into view. Returns a new array."""
    if (not hints and not palette) or SPREAD_SIGMA <= 0:
        return ab
    h, w = G.shape
    c = SPREAD_CELL
    hs, ws = max(1, h // c), max(1, w // c)
    g = cv2.resize(G, (ws, hs), interpolation=cv2.INTER_AREA)
    fx, fy = ws / w, hs / h
    seeds = [((hh.x + 0.5) * fx - 0.5, (hh.y + 0.5) * fy - 0.5) for hh in hints]
    D = geodesic(g, seeds, SPREAD_EDGE / c) if seeds else np.zeros((0, hs, ws), np.float32)
    l2 = 2.0 * SPREAD_LUMA**2
    num = np.zeros((2, hs, ws), np.float32)
    den = np.zeros((hs, ws), np.float32)  # sum of weights: how much the hints have to say here
    sharp = np.zeros((hs, ws), np.float32)  # sum of sharpened weights: which hint's colour it is
    terms: list[tuple[np.ndarray, tuple[float, float]]] = []
    for k, hint in enumerate(hints):
        lk = patch_value(G, hint.x, hint.y)
        sigma = (hint.spread if hint.spread is not None else SPREAD_SIGMA * short) / c
        wk = np.exp(-(D[k] ** 2) / (2.0 * sigma * sigma) - (g - lk) ** 2 / l2) * hint.strength
        terms.append((wk, hint.ab))
    for lk, abk, sim in palette:
        like = likeness(sim, (hs, ws), c)
        strength = PALETTE_WEIGHT + (PALETTE_MATCH * like if like is not None else 0.0)
        terms.append((strength * np.exp(-((g - lk) ** 2) / l2), abk))
    chroma = np.zeros((hs, ws), np.float32)  # sharpened-weighted mean chroma of the hints
    for wk, abk in terms:
        den += wk
        # Mixing the colours of unlike hints greys them; sharpened weights pick the likeliest, and
        # the mix is given the hints' mean chroma back (their hues average, their saturation not).
        wk = wk**SPREAD_SHARPEN + 1e-30 if SPREAD_SHARPEN != 1 else wk
        num[0] += wk * abk[0]
        num[1] += wk * abk[1]
        chroma += wk * float(np.hypot(*abk))
        sharp += wk
    if isinstance(prior, np.ndarray):
        prior = cv2.resize(prior, (ws, hs), interpolation=cv2.INTER_AREA)
    conf = den / (den + (SPREAD_PRIOR if prior is None else prior))
    colour = num / np.maximum(sharp, 1e-30)
    if KEEP_CHROMA:
        mixed = np.sqrt(colour[0] ** 2 + colour[1] ** 2)
        colour *= (chroma / np.maximum(sharp, 1e-30)) / np.maximum(mixed, 1e-3)

    def up(x: np.ndarray) -> np.ndarray:
        return cv2.resize(x, (w, h), interpolation=cv2.INTER_LINEAR)

    target = np.stack([up(colour[0]), up(colour[1])])
    target -= ab  # ab + conf * (target - ab), in place
    target *= up(conf)
    target += ab
    return target.astype(np.float32, copy=False)


def pull(ab: np.ndarray, G: np.ndarray, hints: Sequence[ActiveHint], keep: float = 0.0) -> np.ndarray:
    """Draw ``ab`` (2, h, w) float32 toward the hints over their regions; ``G`` is the blurred L
    (h, w) of the same picture. ``keep`` 0: the region takes the hint's ab; 1: the model's ab
    shifted by the hint's offset at the point (its variation kept). Returns a new array (``ab``
    is not written to)."""
    if not hints:
        return ab
    h, w = G.shape
    total = np.zeros((2, h, w), np.float32)  # sum_k w_k (target_k - ab)
    weight = np.zeros((h, w), np.float32)
    for hint in hints:
        rows, cols, wk = hint_weight(G, hint)
        box = ab[:, rows, cols]
        target = np.array(hint.ab, np.float32)[:, None, None]
        if keep > 0:
            # Keep the model's variation inside the region: shift it by the hint's offset at the point.
            cx, cy = int(round(hint.x)), int(round(hint.y))
            at = ab[:, max(0, cy - 1) : cy + 2, max(0, cx - 1) : cx + 2].reshape(2, -1).mean(axis=1)
            target = target + keep * (box - at[:, None, None])
        total[:, rows, cols] += wk * (target - box)
        weight[rows, cols] += wk
    out = ab.copy()
    out[:, :h, :w] += total / np.maximum(weight, 1.0)
    return out
