"""The exact Huber location of one column held in memory.

`huber_location_1d` sorts the rows, returns the midpoint of psi's zero
interval where there is one (`_flat_midpoint`), and otherwise ends on the
float nearest psi's root from a start found by bisecting the breakpoints
(`_start`), psi summed exactly (`_huber_exact`). `keras_biasinit.stats.huber`
documents the formulas and drives it (and the multi-pass solve).

Example:

>>> huber_location_1d(np.array([0.0, 1.0, 3.0, 10.0]), np.ones(4), 1.0)
2.0
"""

from __future__ import annotations

import functools
from typing import Optional, Tuple

import numpy as np

from keras_biasinit.stats._huber_exact import exact_psi
from keras_biasinit.stats._huber_exact import exact_root


def huber_location_1d(y: np.ndarray, w: np.ndarray, delta: float) -> float:
    """Exact minimiser of `sum w h(y - b)` for one column (weights > 0).

    Where psi is 0 on an interval (a split of the sorted rows with equal weight
    on both sides and a gap of at least `2 delta`), the midpoint of that
    interval is returned: `(y_k + y_{k+1}) / 2`, whatever `delta`. Otherwise the
    root is unique: an approximate bisection over the breakpoints `y +- delta`
    gives a start, and a safeguarded Newton iteration on psi evaluated exactly
    (`exact_psi`) ends between two adjacent floats; the nearer is returned
    (psi's sign at their midpoint decides; a tie goes to the even one).
    Nothing is compared with a rounded `y +- delta`, so a `delta` below the
    spacing of the data (1e-12 on data near 1e9) is as exact as any other.

    Example:

    >>> huber_location_1d(np.array([0.0, 1.0, 3.0, 4.0]), np.ones(4), 1e-12)
    2.0
    >>> huber_location_1d(np.array([0.0, 1.0, 3.0, 4.0]), np.ones(4), 10.0)
    2.0
    """
    order = np.argsort(y, kind="stable")
    values, weights = y[order], w[order]
    if values[0] == values[-1]:
        return float(values[0])
    cum_w = np.concatenate([[0.0], np.cumsum(weights)])
    flat = _flat_midpoint(values, cum_w, delta)
    if flat is not None:
        return flat
    exact_cum = bool(np.all(weights == np.floor(weights))) and cum_w[-1] < 2.0**53
    psi = functools.partial(exact_psi, values, weights,
                            cum_w if exact_cum else None, delta)
    return exact_root(psi, values[0], values[-1],
                      _start(values, weights, cum_w, delta))


def _flat_midpoint(values, cum_w, delta) -> Optional[float]:
    """The midpoint of the interval where psi is 0, or None if psi has one root.

    Splitting the sorted rows after row k with the weight below equal to the
    weight above (to the rounding of summed weights), psi is `delta * 0` on
    `[y_k + delta, y_{k+1} - delta]` when `y_{k+1} - y_k >= 2 delta`.
    """
    total = cum_w[-1]
    split = cum_w[1:-1]
    balance = np.abs(split - (total - split))
    for k in np.flatnonzero(balance <= 8 * np.finfo(np.float64).eps * total):
        low, high = values[k], values[k + 1]
        if high - low >= 2 * delta:
            return float(low / 2 + high / 2)
    return None


def _start(values, weights, cum_w, delta) -> float:
    """An approximate root: bisect the breakpoints with psi evaluated in floats.

    The rows searched are widened by an ulp each side of the rounded `b -+
    delta` and their terms clipped, so no term is off by more than its own
    rounding.
    """
    total = cum_w[-1]

    def psi(b: float) -> Tuple[float, float]:
        lo = int(np.searchsorted(values, np.nextafter(b - delta, -np.inf), "left"))
        hi = int(np.searchsorted(values, np.nextafter(b + delta, np.inf), "right"))
        inside = weights[lo:hi] @ np.clip(b - values[lo:hi], -delta, delta)
        return delta * (cum_w[lo] - (total - cum_w[hi])) + inside, cum_w[hi] - cum_w[lo]

    breaks = np.unique(np.concatenate([values - delta, values + delta]))
    lo, hi = 0, breaks.size - 1  # psi(breaks[-1]) > 0
    while lo < hi:
        mid = (lo + hi) // 2
        if psi(breaks[mid])[0] > 0:
            hi = mid
        else:
            lo = mid + 1
    a, b = breaks[max(lo - 1, 0)], breaks[lo]
    middle = a / 2 + b / 2
    value, slope = psi(middle)
    start = middle - value / slope if slope > 0 else middle
    return float(np.clip(start, max(a, values[0]), min(b, values[-1])))
