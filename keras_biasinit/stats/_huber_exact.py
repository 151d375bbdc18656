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
Psi(value=-1.0, slope=2.0, rows=(0, 2))
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple, Tuple

import numpy as np

from keras_biasinit.stats._exact_sum import two_prod
from keras_biasinit.stats._exact_sum import two_sum
from keras_biasinit.stats._keys import from_keys
from keras_biasinit.stats._keys import to_keys

_MAX_STEPS = 200
_CHUNK = 2**14


class Psi(NamedTuple):
    """psi at a point: its value correctly rounded, its slope, and `rows`,
    which rows are saturated or not there (equal at two points: psi is
    linear between them)."""

    value: float
    slope: float
    rows: Tuple[int, int]


def exact_root(psi, low: float, high: float, t: float) -> float:
    """The float nearest the root of the monotone `psi` in `[low, high]`.

    `psi(t, t_lo=0.0)` returns a `Psi` at `t + t_lo`. Newton steps, kept
    inside the bracket (a step that would not move is nudged by an ulp), then
    bisection in float keys if Newton has not closed the bracket in 8 steps.
    Ends when `low` and `high` are adjacent floats (or psi is exactly 0), on
    the one nearer the root (`_nearer`).
    """
    at_low = at_high = None
    for step in range(_MAX_STEPS):
        at = psi(t)
        if at.value == 0:
            return float(t)
        if at.value < 0:
            low, at_low = t, at
        else:
            high, at_high = t, at
        if np.nextafter(low, np.inf) >= high:
            break
        t = t - at.value / at.slope if at.slope > 0 and step < 8 else np.nan
        if t <= low:
            t = np.nextafter(low, np.inf)
        elif t >= high:
            t = np.nextafter(high, -np.inf)
        if not low < t < high:  # no Newton step (slope 0, or bisecting now)
            keys = to_keys(np.array([low, high]))
            t = float(from_keys(keys[0] + (keys[1] - keys[0]) // 2))
    at_low = psi(low) if at_low is None else at_low
    at_high = psi(high) if at_high is None else at_high
    return float(_nearer(psi, low, high, at_low, at_high))


def _nearer(psi, low: float, high: float, at_low: Psi, at_high: Psi) -> float:
    """Of two floats around psi's root, the nearer (a tie: the even one, as
    `float()` rounds).

    Where psi is linear between them (the same rows saturated at both) and
    `-psi(low) != psi(high)`, their comparison says which (rounding keeps the
    order of unequal values); otherwise psi's sign at the midpoint
    `low + (high - low) / 2`, evaluated exactly, does (a breakpoint
    `y +- delta` may lie between them).
    """
    half = (high - low) / 2  # exact, but for the smallest subnormal step
    linear = at_low.rows == at_high.rows
    if (linear and -at_low.value != at_high.value) or not half > 0 or (
            np.nextafter(low, np.inf) != high):
        return low if -at_low.value <= at_high.value else high
    middle = psi(low, half).value
    if middle == 0:
        return low if np.float64(low).view(np.int64) % 2 == 0 else high
    return low if middle > 0 else high


def psi_parts(values, weights, cum_w, delta: float, t: float, t_lo: float = 0.0):
    """psi(t + t_lo) = sum w clip(t + t_lo - y, -delta, delta) as arrays of
    floats whose exact sum it is, its slope (the weight within delta), and
    `(lo, hi)`: the rows below `lo` add `delta w`, those from `hi` on
    `-delta w`.

    Which rows lie within delta is decided exactly (`count`); `t - y` is split
    into two floats that sum to it exactly (`two_sum`), each product with a
    weight likewise (`two_prod`); `exact_psi` rounds the whole sum once.
    `t_lo`: 0, or a power of two below the spacing of the floats at `t` (a
    point between two floats). `cum_w`: the prefix weights if they are exact
    (integer weights), else None (the saturated rows then enter one by one).
    """
    lo = count(values, delta, t, strict=True, t_lo=t_lo)  # y < t - delta
    hi = count(values, -delta, t, strict=False, t_lo=t_lo)  # y <= t + delta
    diff = two_sum(t, -values[lo:hi])
    shifted = [weights[lo:hi] * t_lo] if t_lo else []  # exact: a power of 2
    if cum_w is not None:
        saturated = cum_w[lo] - (cum_w[-1] - cum_w[hi])  # exact: integer weights
        parts = [*two_prod(np.array([delta]), np.array([saturated])),
                 *two_prod(weights[lo:hi], diff[0]),
                 *two_prod(weights[lo:hi], diff[1]), *shifted]
        slope = cum_w[hi] - cum_w[lo]
    else:
        parts = [*two_prod(weights[:lo], delta),
                 *(-p for p in two_prod(weights[hi:], delta)),
                 *two_prod(weights[lo:hi], diff[0]),
                 *two_prod(weights[lo:hi], diff[1]), *shifted]
        slope = fsum([weights[lo:hi]])
    return parts, slope, (lo, hi)


def exact_psi(values, weights, cum_w, delta: float, t: float,
              t_lo: float = 0.0) -> Psi:
    """psi(t + t_lo) correctly rounded (`math.fsum` of `psi_parts`), its
    slope, and which rows are saturated: a `Psi`."""
    parts, slope, rows = psi_parts(values, weights, cum_w, delta, t, t_lo)
    return Psi(fsum(parts), float(slope), rows)


def count(values, shift: float, t: float, *, strict: bool, t_lo: float = 0.0) -> int:
    """The number of (sorted) rows with `y + shift < t + t_lo` (or `<=`),
    exactly.

    Rows more than two ulps from the rounded `t - shift` (and `t + 2 t_lo -
    shift`) are certain; the few near it are decided on `fl(y + shift)` and
    its rounding error (with `t_lo`, on their exact sum with `-t - t_lo`).
    """
    edge = t - shift
    top = edge if not t_lo else max(edge, (t + 2 * t_lo) - shift)
    lo = np.searchsorted(values, np.nextafter(np.nextafter(edge, -np.inf), -np.inf))
    hi = np.searchsorted(values, np.nextafter(np.nextafter(top, np.inf), np.inf),
                         side="right")
    s, e = two_sum(values[lo:hi], shift)
    if t_lo:  # the sign of s + e - t - t_lo, exactly
        sign = np.sign([math.fsum((a, b, -t, -t_lo)) for a, b in zip(s, e)])
        return int(lo + np.count_nonzero(sign < 0 if strict else sign <= 0))
    at = (s == t) & ((e < 0) if strict else (e <= 0))
    return int(lo + np.count_nonzero((s < t) | at))


def fsum(arrays) -> float:
    """The correctly rounded sum of all the arrays' elements (`math.fsum`), in
    bounded memory; a ValueError if a term or the sum is beyond the float64
    range (psi cannot then be summed exactly: no silent rounding)."""
    arrays = [np.ravel(a) for a in arrays]
    try:
        if not all(np.isfinite(a).all() for a in arrays):
            raise OverflowError
        return math.fsum(itertools.chain.from_iterable(
            a[i : i + _CHUNK].tolist() for a in arrays
            for i in range(0, a.size, _CHUNK)))
    except OverflowError:
        raise overflow_error() from None


def overflow_error() -> ValueError:
    """psi's sums beyond the float64 range: what to do about it."""
    return ValueError(
        "The Huber location cannot be computed exactly here: sums of "
        "`weight * target` or `weight * delta` exceed the float64 range "
        "(about 1.8e308). Rescale the targets and `delta` together (e.g. "
        "divide both by 1e300; the location scales with them), or the "
        "sample weights."
    )
