"""The Huber psi evaluated exactly, and its root to the nearest float.

`psi(t) = sum_i w_i clip(t - y_i, -delta, delta)`: which rows lie within delta
of `t` is decided exactly (`count`), every term is split into floats that sum
to it exactly (`two_sum`, `two_prod`), and `math.fsum` rounds the whole sum
once (`exact_psi`). `exact_root` ends between two adjacent floats. Both the
in-memory solve (`keras_biasinit.stats.huber`) and the multi-pass one's final
solve (`keras_biasinit.stats._huber_solve`) use them.

Example:

>>> values, weights = np.array([0.0, 1.0, 5.0]), np.ones(3)
>>> exact_psi(values, weights, None, 1.0, 0.5)
(-1.0, 2.0)
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from keras_biasinit.stats._exact_sum import two_prod
from keras_biasinit.stats._exact_sum import two_sum
from keras_biasinit.stats._keys import from_keys
from keras_biasinit.stats._keys import to_keys

_MAX_STEPS = 200
_CHUNK = 2**14


def exact_root(psi, low: float, high: float, t: float) -> float:
    """The float nearest the root of the monotone `psi` in `[low, high]`.

    `psi(t)` returns (psi correctly rounded, its slope). Newton steps, kept
    inside the bracket (a step that would not move is nudged by an ulp), then
    bisection in float keys if Newton has not closed the bracket in 8 steps.
    Ends when `low` and `high` are adjacent floats (or psi is exactly 0).
    """
    psi_low = psi_high = None
    for step in range(_MAX_STEPS):
        value, slope = psi(t)
        if value == 0:
            return float(t)
        if value < 0:
            low, psi_low = t, value
        else:
            high, psi_high = t, value
        if np.nextafter(low, np.inf) >= high:
            break
        t = t - value / slope if slope > 0 and step < 8 else np.nan
        if t <= low:
            t = np.nextafter(low, np.inf)
        elif t >= high:
            t = np.nextafter(high, -np.inf)
        if not low < t < high:  # no Newton step (slope 0, or bisecting now)
            keys = to_keys(np.array([low, high]))
            t = float(from_keys(keys[0] + (keys[1] - keys[0]) // 2))
    psi_low = psi(low)[0] if psi_low is None else psi_low
    psi_high = psi(high)[0] if psi_high is None else psi_high
    return float(low if -psi_low <= psi_high else high)


def psi_parts(values, weights, cum_w, delta: float, t: float):
    """psi(t) = sum w clip(t - y, -delta, delta) as arrays of floats whose
    exact sum it is, and its slope (the weight within delta of t).

    Which rows lie within delta of t is decided exactly (`count`); `t - y` is
    split into two floats that sum to it exactly (`two_sum`), each product
    with a weight likewise (`two_prod`); `exact_psi` rounds the whole sum
    once. `cum_w`: the prefix weights if they are exact (integer weights),
    else None (the saturated rows then enter one by one).
    """
    lo = count(values, delta, t, strict=True)  # rows with y < t - delta
    hi = count(values, -delta, t, strict=False)  # rows with y <= t + delta
    diff = two_sum(t, -values[lo:hi])
    if cum_w is not None:
        saturated = cum_w[lo] - (cum_w[-1] - cum_w[hi])  # exact: integer weights
        parts = [*two_prod(np.array([delta]), np.array([saturated])),
                 *two_prod(weights[lo:hi], diff[0]),
                 *two_prod(weights[lo:hi], diff[1])]
        slope = cum_w[hi] - cum_w[lo]
    else:
        parts = [*two_prod(weights[:lo], delta),
                 *(-p for p in two_prod(weights[hi:], delta)),
                 *two_prod(weights[lo:hi], diff[0]),
                 *two_prod(weights[lo:hi], diff[1])]
        slope = fsum([weights[lo:hi]])
    return parts, slope


def exact_psi(values, weights, cum_w, delta: float, t: float):
    """psi(t) correctly rounded (`math.fsum` of `psi_parts`), and its slope."""
    parts, slope = psi_parts(values, weights, cum_w, delta, t)
    return fsum(parts), slope


def count(values, shift: float, t: float, *, strict: bool) -> int:
    """The number of (sorted) rows with `y + shift < t` (or `<= t`), exactly.

    Rows more than two ulps from the rounded `t - shift` are certain; the few
    near it are decided on `fl(y + shift)` and its rounding error.
    """
    edge = t - shift
    lo = np.searchsorted(values, np.nextafter(np.nextafter(edge, -np.inf), -np.inf))
    hi = np.searchsorted(values, np.nextafter(np.nextafter(edge, np.inf), np.inf),
                         side="right")
    s, e = two_sum(values[lo:hi], shift)
    at = (s == t) & ((e < 0) if strict else (e <= 0))
    return int(lo + np.count_nonzero((s < t) | at))


def fsum(arrays) -> float:
    """The correctly rounded sum of all the arrays' elements (`math.fsum`), in
    bounded memory; a plain float sum if an exact split overflowed."""
    arrays = [np.ravel(a) for a in arrays]
    if not all(np.isfinite(a).all() for a in arrays):
        return float(sum(np.nansum(a) for a in arrays))
    return math.fsum(itertools.chain.from_iterable(
        a[i : i + _CHUNK].tolist() for a in arrays for i in range(0, a.size, _CHUNK)))
