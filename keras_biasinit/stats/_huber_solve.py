"""The Huber location from a collect pass: psi solved on the bracket.

A collect pass (`keras_biasinit.stats._huber_steps`) gathers every distinct value of
the bracket's two windows, `[L - delta, U - delta]` and `[L + delta,
U + delta]` (`_huber_search.windows`); every other row adds `+delta`,
`-delta` or `b - y` to `psi(b) = sum_i w_i clip(b - y_i, -delta, delta)`
whatever `b` in the bracket, and enters through its region's sums
(`_regions`). `solve` finds psi's zero stretch or a start from the segments'
lines (`solve_segments`), then the nearest float from psi summed exactly
(`_exact_solve`, `_huber_exact`), the regions entering through exact sums;
or says on which side of the bracket the root turned out to be. It also
gives the loss, `sum w h(y - location)`, from the same sums.

Example (the values 0, 1, 3 and 10 all collected, nothing in the regions,
delta 1: on [1, 2] psi(b) = 1 + (b - 1) - 1 - 1, 0 at 2, where the loss is
1.5 + 0.5 + 0.5 + 7.5):

>>> from types import SimpleNamespace
>>> from keras_biasinit.stats._exact_sum import ExactSums
>>> zeros = np.zeros((3, 1))
>>> result = SimpleNamespace(
...     column_values=lambda j: (np.array([0.0, 1.0, 3.0, 10.0]), np.ones(4)),
...     column_weight_lo=lambda j: np.zeros(4), region_weight=zeros,
...     anchors=zeros, region_sum=zeros, region_sum2=zeros,
...     exact_region=ExactSums(5, 1))
>>> solve(result, 0, 1.0, 0.0, 10.0, 0.0, 10.0)
(2.0, 10.0)
"""

from __future__ import annotations

import numpy as np

from keras_biasinit.stats._exact_sum import two_prod
from keras_biasinit.stats._huber_exact import Psi
from keras_biasinit.stats._huber_exact import exact_root
from keras_biasinit.stats._huber_exact import fsum
from keras_biasinit.stats._huber_exact import psi_parts


def huber_loss(residual: np.ndarray, delta: float) -> np.ndarray:
    """Elementwise Huber loss, as `keras.losses.Huber` computes it."""
    r = np.abs(residual)
    return np.where(r <= delta, 0.5 * r * r, delta * r - 0.5 * delta * delta)


def solve(result, j: int, delta: float, low: float, high: float,
          data_min: float, data_max: float):
    """From a collect pass: (location, sum w h(y - location)); or "low"/"high"
    if the bracket turned out not to hold the root on that side (psi's zero
    stretch reaches beyond it), "below"/"above" if every root is beyond it.

    `solve_segments` finds psi's zero stretch (the midpoint of its two bounding
    values, as in memory) or a start near the root; `_exact_solve` ends on the
    nearest float, with psi summed exactly from the collected values and the
    regions' exact sums.
    """
    values, weights = result.column_values(j)
    w_below, w_between, w_above = result.region_weight[:, j]
    a_below, a_between, a_above = result.anchors[:, j]
    s_below, s_between, s_above = result.region_sum[:, j]
    at_min, at_max = low <= data_min, high >= data_max
    b = solve_segments(
        values, weights, delta, low, high, w_below=w_below, w_above=w_above,
        w_between=w_between, s_between=s_between, a_between=a_between,
        at_min=at_min, at_max=at_max, flat_midpoint=True,
    )
    if isinstance(b, str):
        return b
    b, flat = b
    if not flat:
        b = _exact_solve(result.exact_region, j, values,
                         (weights, result.column_weight_lo(j)), delta, low,
                         high, b, at_min=at_min, at_max=at_max)
        if isinstance(b, str):
            return b
    # The loss: rows below the windows are at |r| > delta (linear part), as are
    # rows above; rows between are in the quadratic part; windows explicitly.
    loss = (
        delta * (w_below * (b - a_below) - s_below) - 0.5 * delta * delta * w_below
        + delta * (w_above * (a_above - b) + s_above) - 0.5 * delta * delta * w_above
        + 0.5 * (result.region_sum2[1, j] - 2 * (b - a_between) * s_between
                 + (b - a_between) ** 2 * w_between)
        + weights @ huber_loss(values - b, delta)
    )
    return b, float(loss)


def _exact_solve(exact, j: int, values, weights, delta: float, low: float,
                 high: float, start: float, *, at_min: bool, at_max: bool):
    """The float nearest psi's root in [low, high] (or "below"/"above" if psi's
    sign at an end proves every root is beyond it), psi summed exactly.

    For b in the bracket, psi(b) = sum over the collected values of
    `w clip(b - y, -delta, delta)` + `delta * W_below - delta * W_above +
    b * W_between - sum_between w y`; every weight and sum is exact (levels of
    `ExactSums`), every product is split exactly, and `fsum` rounds once.
    `weights`: the collected weights and their low parts (the rounding of
    merged duplicates, whose terms are a further `2^-52` smaller).
    """
    weights, lows = weights
    below, above, between = (exact.levels(k, j) for k in range(3))
    const = [*two_prod(delta, below), *two_prod(-delta, above),
             -exact.levels(3, j), -exact.levels(4, j)]
    slope_between = float(between.sum())
    cum_w = np.concatenate([[0.0], np.cumsum(weights)])
    if not (np.all(weights == np.floor(weights)) and cum_w[-1] < 2.0**53):
        cum_w = None  # prefix weights would round: saturated terms one by one

    def psi(t: float, t_lo: float = 0.0) -> Psi:  # at t + t_lo
        parts, slope, rows = psi_parts(values, weights, cum_w, delta, t, t_lo)
        residual = t - values if not t_lo else (t - values) + t_lo
        low_part = lows @ np.clip(residual, -delta, delta)
        shifted = [between * t_lo] if t_lo else []  # exact: a power of two
        return Psi(fsum([*parts, *const, *two_prod(t, between), *shifted,
                         [low_part]]), slope + slope_between, rows)

    if not at_min and psi(low).value > 0:
        return "below"
    if not at_max and psi(high).value < 0:
        return "above"
    return exact_root(psi, low, high, float(np.clip(start, low, high)))


def solve_segments(values, weights, delta, low, high, *, w_below=0.0,
                   w_above=0.0, w_between=0.0, s_between=0.0, a_between=0.0,
                   at_min, at_max, flat_midpoint=False):
    """The root of psi on [low, high] (midpoint of its zero interval), or
    "low" / "high" if psi shows the bracket does not hold every root there.
    With `flat_midpoint`, `(root, whether psi is 0 on an interval)`, the
    midpoint then being `y_k / 2 + y_{k+1} / 2` of the two values around it,
    as `huber_location_1d` gives it; the root is otherwise rounded at the
    data's scale (a start for `_exact_solve`).

    `values` (sorted) and `weights` are the rows whose term of psi changes
    regime somewhere in the bracket (all rows, in memory); the others enter
    through `w_below` (rows below: +delta each), `w_above` (-delta each) and the
    rows "between" (`b - y` each, for every b in the bracket): their weight
    and `sum w (y - a_between)`. `at_min` / `at_max`: `low` / `high` is the
    data's extreme, where psi has the right sign by construction.

    psi is linear between consecutive breakpoints (`y +- delta`): on each such
    segment it is `intercept + slope * b`, the slope being the weight of the
    rows within delta, read off at the segment's midpoint from prefix sums. A
    segment of slope 0 is flat: psi is exactly `delta * (weight below - weight
    above)` there, so a zero stretch is found with no tolerance beyond the
    rounding of summed weights, and a root is solved from its segment's line
    (sums), not interpolated between breakpoints that may be far apart.
    """
    # Centre on a middle value: with a large offset (1e9 + noise) the sums of
    # w * y would cancel catastrophically; y - centre is exact near the centre.
    centre = values[values.shape[0] // 2] if values.size else (low + high) / 2
    z = values - centre
    lo, hi, anchor = low - centre, high - centre, a_between - centre
    breaks = np.concatenate([[lo, hi], z - delta, z + delta])
    points = np.unique(breaks[(breaks >= lo) & (breaks <= hi)])
    cum_w = np.concatenate([[0.0], np.cumsum(weights)])
    cum_wz = np.concatenate([[0.0], np.cumsum(weights * z)])
    total = w_below + w_between + w_above + cum_w[-1]
    tol = 8 * np.finfo(np.float64).eps * delta * total  # rounding of weight sums

    def line(at):  # psi = intercept + slope * b on the segment(s) around `at`
        i_lo = np.searchsorted(z, at - delta, side="left")  # z < b - delta
        i_hi = np.searchsorted(z, at + delta, side="right")  # z <= b + delta
        w_in = cum_w[i_hi] - cum_w[i_lo]
        const = delta * ((w_below + cum_w[i_lo])
                         - (w_above + cum_w[-1] - cum_w[i_hi]))
        intercept = (const - (cum_wz[i_hi] - cum_wz[i_lo]) - w_between * anchor
                     - s_between)
        return intercept, w_in + w_between

    if points.shape[0] == 1:  # a single point (a probe found a flat stretch)
        intercept, slope = line(points)
        psi = float(intercept[0] + slope[0] * points[0])
        if abs(psi) <= tol:  # the midpoint the probes found
            return (float(low), True) if flat_midpoint else float(low)
        return "low" if psi > 0 else "high"
    mids = (points[:-1] + points[1:]) / 2
    intercept, slope = line(mids)
    flat = np.flatnonzero((slope == 0) & (np.abs(intercept) <= tol))
    if flat.size:  # psi == 0 on [points[first], points[last + 1]]
        if flat[0] == 0 and not at_min:
            return "low"
        if flat[-1] == mids.size - 1 and not at_max:
            return "high"
        middle = float(centre + (points[flat[0]] + points[flat[-1] + 1]) / 2)
        if not flat_midpoint:
            return middle
        return _split_midpoint(values, cum_w, w_below, w_above, middle), True
    # (With `flat_midpoint` the caller checks the ends on psi summed exactly:
    # a root exactly at an end, psi 0 there, is then no reason to widen.)
    if not flat_midpoint and not at_min and intercept[0] + slope[0] * points[0] >= 0:
        return "low"
    if not flat_midpoint and not at_max and intercept[-1] + slope[-1] * points[-1] <= 0:
        return "high"
    psi_mid = intercept + slope * mids
    k = min(int(np.searchsorted(psi_mid, 0.0, side="left")), mids.size - 1)
    # The root is in segment k (left of its midpoint) or in segment k - 1.
    root = -intercept[k] / slope[k] if slope[k] > 0 else -np.inf
    if root < points[k]:
        previous = (-intercept[k - 1] / slope[k - 1]
                    if k > 0 and slope[k - 1] > 0 else np.inf)
        root = min(max(previous, points[max(k - 1, 0)]), points[k])
    root = float(centre + min(root, points[k + 1]))
    return (root, False) if flat_midpoint else root


def _split_midpoint(values, cum_w, w_below, w_above, middle: float) -> float:
    """`y_k / 2 + y_{k+1} / 2` for the split of the collected values whose
    weight below best balances the weight above (psi's zero stretch lies
    between them); `middle` if there is no such pair."""
    if values.size < 2:
        return middle
    below = w_below + cum_w[1:-1]
    k = int(np.argmin(np.abs(below - (w_above + cum_w[-1] - cum_w[1:-1]))))
    return float(values[k] / 2 + values[k + 1] / 2)
