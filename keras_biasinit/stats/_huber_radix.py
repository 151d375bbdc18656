"""A bracket of the Huber location from pass 1's radix histogram.

Pass 1 of the exact order statistics histograms the high bits of every
value's float32 pattern (`_radix`): per column and bin the count, the weight
`W` and `S = sum w y`, over a known value range `[lo, hi]`. The bins bound
`psi(b) = sum_i w_i clip(b - y_i, -delta, delta)` at any `b`
(`_huber_bounds`: only the at most two bins straddling `b - delta` or
`b + delta` are uncertain), which brackets the location, usually far inside
one bin, since a straddling bin's uncertainty is its weight times its width
while psi's slope is the weight within `delta`. Here each bin's sum is taken
about the middle bin's low edge and summed outward from it (a far outlier's
bin enters only the points near it), and the rounding margin is bounded from
the rows summed.

The bracket's two windows (`_huber_search.windows`) are then collected
exactly in pass 2 (`_huber_steps`), `collect_cost` saying how many distinct
values they may hold.

Example (three bins of weight 1, 4 and 1 over [0, 1], [1, 2] and [2, 3],
symmetric about 1.5, so the location is 1.5):

>>> lo, hi = np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0])
>>> bins = RadixBins(count=np.array([1, 4, 1]), weight=np.array([1.0, 4.0, 1.0]),
...                  sum=np.array([0.5, 6.0, 2.5]), low=lo, high=hi, rows=6,
...                  exact=False)
>>> low, high = radix_bracket(bins, 1.0, 0.0, 3.0)
>>> round(low, 3), round(high, 3)
(1.399, 1.601)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from keras_biasinit.stats._huber_bounds import binned
from keras_biasinit.stats._huber_bounds import edge_points
from keras_biasinit.stats._huber_bounds import narrow
from keras_biasinit.stats._huber_bounds import psi_bounds as bounds_of
from keras_biasinit.stats._keys import from_keys
from keras_biasinit.stats._keys import to_keys
from keras_biasinit.stats._radix import key_order
from keras_biasinit.stats._radix_select import float_range

_EPS = np.finfo(np.float64).eps
#: Points evaluated per refining round inside the bracket, and rounds.
_GRID, _ROUNDS = 256, 3


class RadixBins(NamedTuple):
    """One column's non-empty pass-1 bins, in value order."""

    count: np.ndarray  # int64
    weight: np.ndarray
    sum: np.ndarray  # sum w y
    low: np.ndarray  # the smallest float64 value the bin can hold
    high: np.ndarray  # the largest
    rows: int  # rows summed in the histogram (for the rounding margin)
    exact: bool  # every value a float32: a bin holds few distinct values


def radix_bins(histogram, column: int) -> RadixBins:
    """The non-empty bins of `column` in a pass-1 `RadixState`."""
    nb, bits = histogram.plan.bins, histogram.plan.bits
    histogram.result()  # flushed
    count = key_order(histogram.count[column], 32, None)
    keep = np.flatnonzero(count)
    weight = (count if histogram.weight is None  # unweighted: the counts
              else key_order(histogram.weight[column], 32, None))
    weight = weight[keep].astype(np.float64)
    total = key_order(histogram.total[column], 32, None)[keep]
    half = nb // 2
    raw = np.where(keep >= half, keep - half, nb - 1 - keep).astype(np.uint32)
    low, high = _bin_ranges(raw, 32 - bits)
    return RadixBins(count[keep], weight, total, low, high, int(count.sum()),
                     bool(histogram.exact[column]))


def _bin_ranges(raw: np.ndarray, shift: int):
    """The float64 values whose float32 rounding has bits `raw` above `shift`:
    between the midpoints to the neighbouring float32 values (conservative
    where a midpoint rounds out of the bin)."""
    first = (raw << np.uint32(shift)).view(np.float32)
    last = (first.view(np.uint32) | np.uint32((1 << shift) - 1)).view(np.float32)
    negative = (raw >> np.uint32(31 - shift)) > 0
    low = np.where(negative, last, first)
    high = np.where(negative, first, last)
    with np.errstate(over="ignore", invalid="ignore"):
        below = np.nextafter(low, np.float32(-np.inf)).astype(np.float64)
        above = np.nextafter(high, np.float32(np.inf)).astype(np.float64)
        low64 = (below + low.astype(np.float64)) / 2
        high64 = (high.astype(np.float64) + above) / 2
    odd = ~(np.isfinite(low64) & np.isfinite(high64))
    for i in np.flatnonzero(odd):  # infinities and NaN patterns: float64 overflow
        low64[i], high64[i] = float_range(int(raw[i]), shift)
    return low64, high64


def radix_bracket(bins: RadixBins, delta: float, low: float, high: float):
    """A narrower `(low, high)` holding every root of psi: first at the bin
    edges +- delta, then `_ROUNDS` times at `_GRID` points inside."""
    start = low, high

    def bounds(points):
        return psi_bounds(bins, delta, points)

    low, high = narrow(bounds, edge_points(bins, delta, low, high), low, high)
    for _ in range(_ROUNDS):
        if not high > low:
            break
        in_value = np.linspace(low, high, _GRID // 2 + 2)[1:-1]
        keys = np.linspace(*_keys_of(low, high), _GRID // 2 + 2)[1:-1]
        in_keys = from_keys(keys.astype(np.uint64))
        points = np.unique(np.concatenate([in_value, in_keys]))
        low, high = narrow(bounds, points[(points > low) & (points < high)],
                           low, high)
    return (low, high) if low < high else start  # (bounds broken by rounding)


def _keys_of(low: float, high: float):
    return to_keys(np.array([low, high])).astype(np.float64)


def psi_bounds(bins: RadixBins, delta: float, points: np.ndarray):
    """Lower and upper bounds on psi at `points` (`_huber_bounds.psi_bounds`),
    and the rounding margin beyond which their signs are certain."""
    weight = bins.weight
    m = min(int(np.searchsorted(np.cumsum(weight), weight.sum() / 2)),
            weight.size - 1)
    centre = bins.low[m]
    dev = bins.sum - centre * weight  # sum w (y - centre): less cancellation
    # Sums of bins from the middle one, so a far outlier's bin (1e30) enters
    # only the points whose bins it is among.
    column = binned(low=bins.low, high=bins.high, weight=weight, dev=dev,
                    anchor=centre, groups=[(0, weight.size)],
                    cum_d=_from_middle(dev, m))
    lower, upper, i_a, i_c = bounds_of(column, delta, points)
    abs_d, abs_s = _from_middle(np.abs(dev), m), _from_middle(np.abs(bins.sum), m)
    cum_w = column.cum_w
    w_in = cum_w[i_c] - cum_w[i_a]
    # Every sum rounded: the bins' own (at most `rows` terms each, all of
    # one sign within a bin), the sums over bins and the products.
    scale = (delta * cum_w[-1] + np.abs(abs_s[i_c] - abs_s[i_a])
             + np.abs(abs_d[i_c]) + np.abs(abs_d[i_a])
             + np.abs(points - centre) * cum_w[-1]
             + (np.abs(points) + abs(centre)) * (w_in + 2 * weight.max()))
    margin = 8 * _EPS * (bins.rows + weight.size + 8) * scale
    return lower, upper, margin


def _from_middle(x: np.ndarray, m: int) -> np.ndarray:
    """`c` with `c[k] - c[j] == sum(x[j:k])`, summed outward from `x[m]`
    (`c[m] == 0`): a difference rounds only over the terms between j, k
    and m."""
    c = np.zeros(x.size + 1)
    c[m + 1 :] = np.cumsum(x[m:])
    c[:m] = -np.cumsum(x[:m][::-1])[::-1]
    return c


def collect_cost(bins: RadixBins, wins) -> float:
    """The most distinct values the key windows `wins` can hold: the rows of
    the bins they overlap, for float32 data at most the float32 values in
    each overlap."""
    cost = 0.0
    for lo_key, hi_key in wins:
        a, b = from_keys(np.array([lo_key, hi_key], np.uint64))
        overlap = (bins.high >= a) & (bins.low <= b)
        rows = bins.count[overlap].astype(np.float64)
        if bins.exact:
            rows = np.minimum(rows, _float32_between(
                np.maximum(bins.low[overlap], a), np.minimum(bins.high[overlap], b)))
        cost += float(rows.sum())
    return cost


def _float32_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How many float32 values lie in [a, b] (at most; one more is fine)."""
    def order(x):
        with np.errstate(over="ignore"):
            bits = x.astype(np.float32).view(np.int32).astype(np.int64)
        return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)

    return np.maximum(order(b) - order(a) + 2, 1).astype(np.float64)
