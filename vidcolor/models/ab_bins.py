"""Quantised in-gamut a*b* bins, soft-encoding, class rebalancing and the annealed mean.

As in Zhang, Isola and Efros, "Colorful Image Colorization" (ECCV 2016): the ab plane is cut into
a grid of 10 units; a bin is kept when some lightness puts its centre inside the sRGB gamut.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vidcolor.color import lab_to_linear_rgb

GRID = 10.0  # bin size in a*b* units
AB_RANGE = 110.0  # bin centres lie in [-AB_RANGE, AB_RANGE]


@lru_cache(maxsize=4)
def in_gamut_bins(grid: float = GRID) -> np.ndarray:
    """Centres (Q, 2) float32 of the bins that hold at least one sRGB colour at some lightness.

    A bin counts as in gamut when, for some L in 1..99, some point of its square maps to linear
    RGB inside [0, 1].
    """
    n = int(round(AB_RANGE / grid))
    centres = np.arange(-n, n + 1, dtype=np.float32) * grid
    a, b = np.meshgrid(centres, centres, indexing="ij")
    ab = np.stack([a.ravel(), b.ravel()], axis=-1)
    keep = np.zeros(len(ab), dtype=bool)
    # Points spread over each bin, so a bin is kept when any part of it is in gamut.
    offsets = np.stack(np.meshgrid(*[np.linspace(-0.5, 0.5, 5)] * 2), -1).reshape(-1, 2) * grid
    for L in np.linspace(1.0, 99.0, 99, dtype=np.float32):
        for off in offsets:
            lab = np.concatenate([np.full((len(ab), 1), L, np.float32), ab + off], axis=1)
            rgb = lab_to_linear_rgb(lab)
            keep |= np.all((rgb >= 0.0) & (rgb <= 1.0), axis=1)
    return ab[keep].astype(np.float32)


def nearest_bin(ab: Tensor, centres: Tensor) -> Tensor:
    """ab (B,2,H,W) -> index (B,H,W) int64 of the nearest bin centre (centres (Q,2))."""
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    idx = torch.cdist(flat, centres).argmin(dim=1)
    return idx.view(ab.shape[0], ab.shape[2], ab.shape[3])


@lru_cache(maxsize=4)
def _bin_lookup(device: torch.device) -> Tensor:
    """(2R, 2R) int64 on ``device``, R = AB_RANGE: the nearest in-gamut bin of the centre of every
    1x1 cell of the ab plane (cell centres sit at half units, so no cell is tied between bins)."""
    centres = in_gamut_bins()
    r = int(AB_RANGE)
    half = np.arange(-r, r, dtype=np.float32) + 0.5
    a, b = np.meshgrid(half, half, indexing="ij")
    pts = np.stack([a.ravel(), b.ravel()], axis=-1)
    d2 = ((pts[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    return torch.from_numpy(d2.argmin(axis=1).reshape(a.shape).astype(np.int64)).to(device)


def nearest_bin_fast(ab: Tensor) -> Tensor:
    """:func:`nearest_bin` against :func:`in_gamut_bins` through a table of 1x1 ab cells:
    ab (B,2,H,W) -> index (B,H,W) int64.

    Differs from the exact search only within a unit of a border between bins; for the training
    loss's rebalancing weights that is immaterial, and a look-up is far cheaper than a distance to
    every bin per pixel.
    """
    r = int(AB_RANGE)
    ia = (ab[:, 0].floor().long() + r).clamp(0, 2 * r - 1)
    ib = (ab[:, 1].floor().long() + r).clamp(0, 2 * r - 1)
    return _bin_lookup(ab.device)[ia, ib]


def soft_encode(ab: Tensor, centres: Tensor, k: int = 5, sigma: float = 5.0) -> Tensor:
    """ab (B,2,H,W) -> target distribution (B,Q,H,W): Gaussian weights on the k nearest bins."""
    B, _, H, W = ab.shape
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    d = torch.cdist(flat, centres)  # (BHW, Q)
    dk, ik = d.topk(k, dim=1, largest=False)
    wk = torch.exp(-(dk**2) / (2 * sigma**2))
    wk = wk / wk.sum(dim=1, keepdim=True)
    out = torch.zeros_like(d).scatter_(1, ik, wk)
    return out.view(B, H, W, -1).permute(0, 3, 1, 2)


def rebalance_weights(
    prior: np.ndarray, centres: np.ndarray, lam: float = 0.5, sigma: float = 5.0
) -> np.ndarray:
    """Class-rebalancing weights (Q,) from the empirical bin prior (Q,), as in Zhang et al.

    The prior is smoothed with a Gaussian of ``sigma`` ab units over the bin centres, mixed with
    the uniform distribution by ``lam``, inverted and normalised so that E_prior[w] = 1.
    """
    d2 = ((centres[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    kernel = np.exp(-d2 / (2 * sigma**2))
    smooth = kernel @ prior
    smooth = smooth / smooth.sum()
    w = 1.0 / ((1.0 - lam) * smooth + lam / len(prior))
    w = w / (smooth * w).sum()
    return w.astype(np.float32)


def annealed_mean(logits: Tensor, centres: Tensor, temperature: float) -> Tensor:
    """logits (B,Q,H,W) -> ab (B,2,H,W): the mean of softmax(logits / T) over the bin centres."""
    p = torch.softmax(logits.float() / temperature, dim=1)
    return torch.einsum("bqhw,qc->bchw", p, centres.to(p.dtype))


def corrected_annealed_mean(
    logits: Tensor,
    centres: Tensor,
    temperature: float,
    log_weights: Tensor | None = None,
    prior_correction: float = 0.0,
    confidence_gamma: float = 0.0,
) -> Tensor:
    """The class head's readout in one pass: logits (B,Q,H,W) -> ab (B,2,H,W) float32, raw units.

    Equal (to float rounding) to ``annealed_mean(z, centres, T) * hue_concentration(z,
    centres) ** confidence_gamma`` with ``z = logits - prior_correction * log_weights``
    (log_weights (Q,) float32, or None for no correction), at a third of its cost on the CPU.

    Why it is cheaper: every term is a ratio of sums over bins of exp(z_q / t) times a per-bin
    factor, so the correction exp(-c * log w_q / t) moves from the B*Q*H*W logits into the Q
    columns of a (3, Q) weight matrix, both softmax normalisers cancel in their ratios, and each
    of the two exponentials of the logits is reduced by one matrix product, with one shift by the
    pixel's largest logit shared (the shift cancels too; it only keeps exp in range: with a
    correction of at most a few logit units the largest corrected term stays far above
    underflow). The input is not modified.
    """
    z = logits.float()
    B, Q, H, W = z.shape
    c = centres.to(z.dtype)
    scale_t = torch.ones(Q, dtype=z.dtype, device=z.device)
    scale_1 = scale_t
    if log_weights is not None and prior_correction:
        lw = log_weights.to(z.dtype)
        scale_t = torch.exp(-prior_correction * lw / temperature)
        scale_1 = torch.exp(-prior_correction * lw)
    ones = torch.ones(Q, 1, dtype=z.dtype, device=z.device)
    # rows: a, b and the normaliser, each weighted by the bins' correction at temperature T
    w_t = (torch.cat([c, ones], dim=1).T * scale_t).contiguous()
    d = z - z.amax(dim=1, keepdim=True)
    e1 = d.exp() if confidence_gamma else None
    s_t = torch.matmul(w_t, d.mul_(1.0 / temperature).exp_().view(B, Q, H * W))
    ab = s_t[:, :2] / s_t[:, 2:]
    if e1 is not None:
        # R = |sum p_q c_q| / sum p_q |c_q| at T = 1: the normaliser of p cancels.
        w_1 = (torch.cat([c, c.norm(dim=1, keepdim=True)], dim=1).T * scale_1).contiguous()
        s_1 = torch.matmul(w_1, e1.view(B, Q, H * W))
        r = s_1[:, :2].norm(dim=1, keepdim=True) / s_1[:, 2:].clamp(min=1e-30)
        ab = ab * r**confidence_gamma
    return ab.view(B, 2, H, W)


def geometric_median(
    logits: Tensor, centres: Tensor, temperature: float, iterations: int = 8, eps: float = 1.0
) -> Tensor:
    """logits (B,Q,H,W) -> ab (B,2,H,W): the geometric median of softmax(logits / T) over the bins.

    The point with the least expected Euclidean distance to the colour: under a distribution
    with one strong mode and scattered doubt it stays at the mode, where the mean is pulled
    towards grey, and under two opposite modes it sits between them, where the annealed mean
    picks one and is badly wrong half the time. Colour differences (CIEDE2000) grow with the
    distance, not its square, so this is the readout that minimises them. Weiszfeld's iteration
    from the mean; ``eps`` (ab units) keeps the weights finite at a bin centre.
    """
    p = torch.softmax(logits.float() / temperature, dim=1)
    c = centres.to(p.dtype)
    y = torch.einsum("bqhw,qc->bchw", p, c)
    for _ in range(iterations):
        d2 = (c[None, :, 0, None, None] - y[:, None, 0]) ** 2 + (
            c[None, :, 1, None, None] - y[:, None, 1]
        ) ** 2
        w = p / torch.sqrt(d2 + eps * eps)
        y = torch.einsum("bqhw,qc->bchw", w, c) / w.sum(dim=1, keepdim=True)
    return y


def hue_concentration(logits: Tensor, centres: Tensor) -> Tensor:
    """logits (B,Q,H,W) -> (B,1,H,W) in [0,1]: |E[ab]| / E[|ab|] under softmax(logits).

    1 when all the probability lies along one hue direction, towards 0 when it is spread over
    opposite hues (the network does not know the colour) or sits on grey.
    """
    p = torch.softmax(logits.float(), dim=1)
    c = centres.to(p.dtype)
    mean = torch.einsum("bqhw,qc->bchw", p, c)
    expected_norm = torch.einsum("bqhw,q->bhw", p, c.norm(dim=1))[:, None]
    return mean.norm(dim=1, keepdim=True) / expected_norm.clamp(min=1e-6)


@lru_cache(maxsize=8)
def _near_pairs(radius: float, device: torch.device) -> Tensor:
    """(Q, Q) float32 on ``device``: 1 where two in-gamut bin centres lie within ``radius`` ab units."""
    c = torch.from_numpy(in_gamut_bins())
    return (torch.cdist(c, c) <= radius).float().to(device)


def mode_mean(
    logits: Tensor, centres: Tensor, temperature: float, radius: float = 25.0, region: int = 5
) -> Tensor:
    """logits (B,Q,H,W) -> ab (B,2,H,W): the annealed mean of the distribution's main mode only.

    Where the network hesitates between distant colours (green grass or dry brown grass, a blue
    or a grey sky) the mean of both is a colour that is neither, dull and often wrong (brown
    lawns). This readout first finds, for each pixel, the ab bin whose neighbourhood of ``radius``
    units holds the most probability, summed over a ``region`` x ``region`` window of pixels so a
    surface picks one colour as a whole; then it takes the annealed mean at ``temperature`` of the
    bins within ``radius`` of that mode. With one mode it equals the annealed mean.

    The mode is searched on every second pixel (the votes are a window's average anyway), as one
    (pixels, Q) x (Q, Q) product.
    """
    B, Q, H, W = logits.shape
    p = torch.softmax(logits.float(), dim=1)
    votes = F.avg_pool2d(p, region, stride=2, padding=region // 2, count_include_pad=False)
    h, w = votes.shape[2:]
    mass = votes.permute(0, 2, 3, 1).reshape(-1, Q) @ _near_pairs(radius, p.device)
    mode = mass.argmax(dim=1).view(B, 1, h, w)  # bin index
    mode = F.interpolate(mode.float(), size=(H, W), mode="nearest").long()[:, 0]
    c = centres.to(p.dtype)
    at = c[mode].permute(0, 3, 1, 2)  # (B,2,H,W): the mode's centre
    d2 = (c[None, :, 0, None, None] - at[:, None, 0]) ** 2 + (c[None, :, 1, None, None] - at[:, None, 1]) ** 2
    pt = torch.softmax(logits.float() / temperature, dim=1) * (d2 <= radius * radius)
    pt = pt / pt.sum(dim=1, keepdim=True).clamp(min=1e-12)
    return torch.einsum("bqhw,qc->bchw", pt, c)
