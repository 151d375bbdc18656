"""Bounds on the Huber psi from binned rows, and the bracket they give.

Rows known only through bins (pass 1's radix bins, `_huber_radix`; a later
pass's histograms of the windows, `_huber_search`) still bound
`psi(b) = sum_i w_i clip(b - y_i, -delta, delta)` at any `b`. With each bin's
weight `W`, `D = sum w (y - a)` about an anchor `a`, and the values
`[lo, hi]` it holds: a bin wholly at or below `b - delta` adds `delta W`, one
wholly at or above `b + delta` adds `-delta W`, one wholly between them adds
`W (b - a) - D` exactly, and only the (at most two) bins straddling
`b - delta` or `b + delta` are uncertain, each between `W clip(b - hi)` and
`W clip(b - lo)`. A point where the upper bound is below 0 (beyond the
rounding margin) has every root above it, one where the lower bound is above
0 every root below it (psi is non-decreasing): `narrow` keeps the bracket
between the last of the first and the first of the second.

Example (three bins of weight 1, 4 and 1 over [0, 1], [1, 2] and [2, 3],
their sums about 0; psi is 0 at 1.5, by symmetry):

>>> bins = binned(low=np.array([0.0, 1.0, 2.0]), high=np.array([1.0, 2.0, 3.0]),
...               weight=np.array([1.0, 4.0, 1.0]), dev=np.array([0.5, 6.0, 2.5]),
...               anchor=0.0, groups=[(0, 3)])
>>> lower, upper, _, _ = psi_bounds(bins, 1.0, np.array([0.5, 1.5, 2.5]))
>>> lower.tolist(), upper.tolist()
([-5.0, -0.5, 3.0], [-3.0, 0.5, 5.0])
>>> narrow(lambda p: (*psi_bounds(bins, 1.0, p)[:2], 0.0), edge_points(
...     bins, 1.0, 0.0, 3.0), 0.0, 3.0)
(1.0, 2.0)
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Sequence, Tuple

import numpy as np


class Binned(NamedTuple):
    """One column's non-empty bins, in value order, as psi sees them."""

    low: np.ndarray  # the smallest value a bin holds (or may hold)
    high: np.ndarray  # the largest
    weight: np.ndarray  # W
    dev: np.ndarray  # D = sum w (y - anchor)
    anchor: np.ndarray  # per bin: the anchor of its D
    groups: Tuple[Tuple[int, int], ...]  # runs of bins sharing one anchor
    cum_w: np.ndarray  # cum_w[k] - cum_w[j]: the weight of bins j..k-1
    cum_d: np.ndarray  # likewise their D


def binned(*, low, high, weight, dev, anchor, groups: Sequence[Tuple[int, int]],
           cum_d: Optional[np.ndarray] = None) -> Binned:
    """A `Binned` whose runs of bins `groups` (`(start, stop)`, empty ones
    dropped) each take their D about one anchor (`anchor`: per bin, or one
    for all); `cum_d` (prefix sums of `dev`, summed as the caller needs)
    defaults to the plain prefix sums."""
    anchor = np.broadcast_to(np.asarray(anchor, np.float64), weight.shape)
    if cum_d is None:
        cum_d = np.concatenate([[0.0], np.cumsum(dev)])
    return Binned(low, high, weight, dev, anchor,
                  tuple((start, stop) for start, stop in groups if start < stop),
                  np.concatenate([[0.0], np.cumsum(weight)]), cum_d)


def edge_points(bins: Binned, delta: float, low: float, high: float) -> np.ndarray:
    """The bins' edges +- delta strictly inside (low, high), sorted, unique:
    where the bins bound psi most tightly."""
    with np.errstate(over="ignore"):  # edges past the float range: unused
        edges = np.concatenate([bins.low - delta, bins.low + delta,
                                bins.high - delta, bins.high + delta])
    return np.unique(edges[(edges > low) & (edges < high)])


def psi_bounds(bins: Binned, delta: float, points: np.ndarray):
    """`(lower, upper, i_a, i_c)`: bounds on the bins' part of psi at
    `points`; per point, `i_a` bins lie wholly at or below `b - delta` and
    those from `i_c` on wholly at or above `b + delta`."""
    lo, hi, weight, anchor = bins.low, bins.high, bins.weight, bins.anchor
    cum_w, cum_d = bins.cum_w, bins.cum_d
    i_a = np.searchsorted(hi, points - delta, side="right")  # hi <= b - delta
    i_c = np.searchsorted(lo, points + delta, side="left")  # lo >= b + delta
    part = delta * (cum_w[i_a] - (cum_w[-1] - cum_w[i_c]))
    for start, stop in bins.groups:  # bins wholly between: W (b - a) - D
        ra, rc = np.clip(i_a, start, stop), np.clip(i_c, start, stop)
        part += ((cum_w[rc] - cum_w[ra]) * (points - anchor[start])
                 - (cum_d[rc] - cum_d[ra]))
    lower, upper = part, part.copy()
    has = i_a < i_c
    first = np.minimum(i_a, weight.size - 1)
    last = np.maximum(i_c - 1, 0)
    s1 = has & (lo[first] < points - delta)
    s2 = has & (hi[last] > points + delta) & ~(s1 & (last == first))
    for flag, i in ((s1, first), (s2, last)):  # straddling bins: bounded
        linear = weight[i] * (points - anchor[i]) - bins.dev[i]
        lower += np.where(flag, weight[i] * np.clip(points - hi[i], -delta, delta)
                          - linear, 0.0)
        upper += np.where(flag, weight[i] * np.clip(points - lo[i], -delta, delta)
                          - linear, 0.0)
    return lower, upper, i_a, i_c


def narrow(bounds: Callable, points: np.ndarray, low: float, high: float,
           block: int = 4096) -> Tuple[float, float]:
    """`(low, high)` narrowed to the `points` where psi's sign is certain:
    `bounds(points)` gives `(lower, upper, margin)`, evaluated `block` points
    at a time (bounded temporaries)."""
    for start in range(0, points.size, block):
        p = points[start : start + block]
        lower, upper, margin = bounds(p)
        below, above = p[upper < -margin], p[lower > margin]
        if below.size:
            low = max(low, float(below.max()))
        if above.size:
            high = min(high, float(above.min()))
    return low, high
