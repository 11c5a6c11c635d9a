"""How far a score measured on a few pictures can be trusted: bootstrap intervals over pictures.

A validation split of a few dozen photographs ranks checkpoints by a ratio of sums (the mean
CIEDE2000 of the colour against that of leaving the picture grey). Which pictures happen to be in
the split moves that ratio; resampling the pictures with replacement shows by how much, and, for
two checkpoints scored on the same pictures, whether their difference outlives it (a paired
bootstrap: both are resampled with the same draw).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DRAWS = 4000
LEVEL = 0.9


def _draws(n: int, draws: int, seed: int) -> np.ndarray:
    """(draws, n) int64: picture indices drawn with replacement, the same for every caller of one seed."""
    return np.random.default_rng(seed).integers(0, n, size=(draws, n))


def _check(*columns: Sequence[float]) -> int:
    n = len(columns[0])
    if n == 0 or any(len(c) != n for c in columns):
        raise ValueError(
            f"expected per-picture values of one length > 0, found lengths {[len(c) for c in columns]}"
        )
    return n


def _interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def ratio_interval(
    values: Sequence[float],
    baseline: Sequence[float],
    level: float = LEVEL,
    draws: int = DRAWS,
    seed: int = 0,
) -> tuple[float, float]:
    """The ``level`` bootstrap percentile interval of sum(values) / sum(baseline) over pictures.

    values, baseline: one number per picture (e.g. a readout's mean CIEDE2000 and grey's).
    """
    n = _check(values, baseline)
    idx = _draws(n, draws, seed)
    v, b = np.asarray(values, np.float64), np.asarray(baseline, np.float64)
    return _interval(v[idx].sum(1) / b[idx].sum(1), level)


def paired_difference_interval(
    values_a: Sequence[float],
    values_b: Sequence[float],
    baseline: Sequence[float],
    level: float = LEVEL,
    draws: int = DRAWS,
    seed: int = 0,
) -> tuple[float, float]:
    """The ``level`` bootstrap interval of ratio(b) - ratio(a), both over the same pictures and
    the same ``baseline`` (one number each per picture, in the same order), resampled together.
    An interval that holds 0 means the split cannot tell the two apart."""
    n = _check(values_a, values_b, baseline)
    idx = _draws(n, draws, seed)
    a, b = np.asarray(values_a, np.float64), np.asarray(values_b, np.float64)
    base = np.asarray(baseline, np.float64)[idx].sum(1)
    return _interval((b[idx].sum(1) - a[idx].sum(1)) / base, level)
