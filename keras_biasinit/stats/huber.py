"""Exact Huber location per column, in bounded memory: the Huber-optimal constant.

With `h(r) = r^2 / 2` for `|r| <= delta` and `delta * (|r| - delta / 2)`
otherwise (`keras.losses.Huber`), the location `b` minimises
`sum_i w_i h(y_i - b)`. Its derivative,
`psi(b) = sum_i w_i clip(b - y_i, -delta, delta)`, is continuous,
non-decreasing and linear between the breakpoints `y_i +- delta`, so the root is
found exactly: bisect the sorted breakpoints with `psi` evaluated term by term
(each term bounded by `delta * w`, so a far outlier cannot blur the sum), then
solve the line of the segment where `psi` changes sign.
When `psi` is zero on a whole interval (a segment with no value within `delta`
and equal weight on both sides) the minimiser is not unique; the midpoint of
that interval is returned (as the median does for an even count).
Large `delta` gives the mean, small `delta` the median (Huber, 1964). The loss
it leaves is `sum_i w_i h(y_i - b) / rows` (Keras's default reduction).

How it is computed (`memory_budget` bytes, default 256 MiB):

- Small data (the in-memory solve, about 40 bytes per value and column plus
  about 250 bytes per row, fits the budget): one pass, then the exact solve above.
- Otherwise, over a re-iterable input, typically three passes (see
  `keras_biasinit.stats._passes`): (1) count, weight, min and max per column;
  (2) two histograms per column (even in float keys and in value, as for the
  median) with per-bin weight, weighted sum, min and max.
  For a bracket `[L, U]` only the values in `[L - delta, U - delta]` and
  `[L + delta, U + delta]` change regime; every other value adds `+delta`,
  `-delta` or `b - y` to `psi` whatever `b` in the bracket, so it is needed
  only through sums. The histogram gives bounds on `psi` at the bin edges
  (+- delta), hence a bracket a bin or two wide; (3) the values of those two
  narrow windows are collected exactly, the rest enter through exact
  per-region sums (weight, first and second moments), and `psi` is solved
  exactly on the bracket as above. Windows too large for the budget are binned
  again first (one more pass each), and a bracket the bins cannot narrow is
  narrowed by evaluating `psi` exactly at 32 points in one pass; never
  approximated.
- A one-shot iterator (a generator) whose data exceed the budget cannot be read
  again: ValueError, asking for a re-iterable dataset or a larger budget.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from typing import Iterable, Optional, Tuple

import numpy as np

from keras_biasinit.stats import _passes
from keras_biasinit.stats._passes import BIN
from keras_biasinit.stats._passes import COLLECT
from keras_biasinit.stats._passes import DEFAULT_MEMORY_BUDGET
from keras_biasinit.stats._passes import PROBE

Batch = Tuple[np.ndarray, Optional[np.ndarray]]

_MAX_PASSES = 40
_BIG = np.finfo(np.float64).max


@dataclasses.dataclass
class HuberResult:
    """Per column: the location and `sum_i w_i h(y_i - location) / rows`.

    `passes` is the number of passes read over the data; `peak_bytes` the peak
    of the memory this computation held for its own buffers, never more than
    the budget.
    """

    location: np.ndarray
    mean_loss: np.ndarray
    rows: int
    weight: float
    passes: int = 1
    peak_bytes: int = 0


def huber_loss(residual: np.ndarray, delta: float) -> np.ndarray:
    """Elementwise Huber loss, as `keras.losses.Huber` computes it."""
    r = np.abs(residual)
    return np.where(r <= delta, 0.5 * r * r, delta * r - 0.5 * delta * delta)


def huber_location_1d(y: np.ndarray, w: np.ndarray, delta: float) -> float:
    """Exact minimiser of `sum w h(y - b)` for one column (weights > 0).

    Where psi is 0 on an interval (a split of the sorted rows with equal weight
    on both sides and a gap of at least `2 delta`), the midpoint of that
    interval is returned: `(y_k + y_{k+1}) / 2`, whatever `delta`. Otherwise the
    root is unique: an approximate bisection over the breakpoints `y +- delta`
    gives a start, and a safeguarded Newton iteration on psi evaluated exactly
    (`_exact_psi`) ends between two adjacent floats; the nearer is returned.
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
    psi = functools.partial(_exact_psi, values, weights,
                            cum_w if exact_cum else None, delta)
    return _exact_root(psi, values[0], values[-1],
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


def _exact_root(psi, low: float, high: float, t: float) -> float:
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
            keys = _passes.to_keys(np.array([low, high]))
            t = float(_passes.from_keys(keys[0] + (keys[1] - keys[0]) // 2))
    psi_low = psi(low)[0] if psi_low is None else psi_low
    psi_high = psi(high)[0] if psi_high is None else psi_high
    return float(low if -psi_low <= psi_high else high)


def _exact_psi(values, weights, cum_w, delta: float, t: float):
    """psi(t) = sum w clip(t - y, -delta, delta), correctly rounded, and its
    slope (the weight within delta of t).

    Which rows lie within delta of t is decided exactly (`_count`); `t - y` is
    split into two floats that sum to it exactly (`_two_sum`), each product
    with a weight likewise (`_two_prod`), and `math.fsum` rounds the whole sum
    once. `cum_w`: the prefix weights if they are exact (integer weights),
    else None (the saturated rows then enter one by one).
    """
    lo = _count(values, delta, t, strict=True)  # rows with y < t - delta
    hi = _count(values, -delta, t, strict=False)  # rows with y <= t + delta
    diff = _two_sum(t, -values[lo:hi])
    if cum_w is not None:
        saturated = cum_w[lo] - (cum_w[-1] - cum_w[hi])  # exact: integer weights
        parts = [*_two_prod(np.array([delta]), np.array([saturated])),
                 *_two_prod(weights[lo:hi], diff[0]),
                 *_two_prod(weights[lo:hi], diff[1])]
        slope = cum_w[hi] - cum_w[lo]
    else:
        parts = [*_two_prod(weights[:lo], delta),
                 *(-p for p in _two_prod(weights[hi:], delta)),
                 *_two_prod(weights[lo:hi], diff[0]),
                 *_two_prod(weights[lo:hi], diff[1])]
        slope = _fsum([weights[lo:hi]])
    return _fsum(parts), slope


def _count(values, shift: float, t: float, *, strict: bool) -> int:
    """The number of (sorted) rows with `y + shift < t` (or `<= t`), exactly.

    Rows more than two ulps from the rounded `t - shift` are certain; the few
    near it are decided on `fl(y + shift)` and its rounding error.
    """
    edge = t - shift
    lo = np.searchsorted(values, np.nextafter(np.nextafter(edge, -np.inf), -np.inf))
    hi = np.searchsorted(values, np.nextafter(np.nextafter(edge, np.inf), np.inf),
                         side="right")
    s, e = _two_sum(values[lo:hi], shift)
    at = (s == t) & ((e < 0) if strict else (e <= 0))
    return int(lo + np.count_nonzero((s < t) | at))


_SPLIT = 2.0**27 + 1  # Veltkamp's splitter for float64
_MAX_STEPS = 200
_CHUNK = 2**14


def _two_sum(a, b):
    """`a + b` as `(s, e)` with `s + e == a + b` exactly (Knuth's TwoSum)."""
    s = a + b
    b_virtual = s - a
    return s, (a - (s - b_virtual)) + (b - b_virtual)


def _two_prod(a, b):
    """`a * b` as `(p, e)` with `p + e == a * b` exactly (Dekker), for arrays;
    inexact only on overflow or underflow, which `_fsum` falls back on."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    p = a * b
    a_hi = _SPLIT * a
    a_hi = a_hi - (a_hi - a)
    b_hi = _SPLIT * b
    b_hi = b_hi - (b_hi - b)
    a_lo, b_lo = a - a_hi, b - b_hi
    return p, ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo


def _fsum(arrays) -> float:
    """The correctly rounded sum of all the arrays' elements (`math.fsum`), in
    bounded memory; a plain float sum if an exact split overflowed."""
    arrays = [np.ravel(a) for a in arrays]
    if not all(np.isfinite(a).all() for a in arrays):
        return float(sum(np.nansum(a) for a in arrays))
    return math.fsum(itertools.chain.from_iterable(
        a[i : i + _CHUNK].tolist() for a in arrays for i in range(0, a.size, _CHUNK)))


def _solve_segments(values, weights, delta, low, high, *, w_below=0.0,
                    w_above=0.0, w_between=0.0, s_between=0.0, a_between=0.0,
                    at_min, at_max):
    """The root of psi on [low, high] (midpoint of its zero interval), or
    "low" / "high" if psi shows the bracket does not hold every root there.

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
        if abs(psi) <= tol:
            return float(centre + points[0])
        return "low" if psi > 0 else "high"
    mids = (points[:-1] + points[1:]) / 2
    intercept, slope = line(mids)
    flat = np.flatnonzero((slope == 0) & (np.abs(intercept) <= tol))
    if flat.size:  # psi == 0 on [points[first], points[last + 1]]
        if flat[0] == 0 and not at_min:
            return "low"
        if flat[-1] == mids.size - 1 and not at_max:
            return "high"
        return float(centre + (points[flat[0]] + points[flat[-1] + 1]) / 2)
    if not at_min and intercept[0] + slope[0] * points[0] >= 0:
        return "low"
    if not at_max and intercept[-1] + slope[-1] * points[-1] <= 0:
        return "high"
    psi_mid = intercept + slope * mids
    k = min(int(np.searchsorted(psi_mid, 0.0, side="left")), mids.size - 1)
    # The root is in segment k (left of its midpoint) or in segment k - 1.
    root = -intercept[k] / slope[k] if slope[k] > 0 else -np.inf
    if root < points[k]:
        previous = (-intercept[k - 1] / slope[k - 1]
                    if k > 0 and slope[k - 1] > 0 else np.inf)
        root = min(max(previous, points[max(k - 1, 0)]), points[k])
    return float(centre + min(root, points[k + 1]))


def in_memory_bytes(rows: int, columns: int, weighted: bool) -> int:
    """Peak bytes of the in-memory solve, the buffered float64 data included."""
    data = 8 * rows * (columns + 1)
    return data + max(256 * rows, 48 * rows * columns) + 2**16


def check_delta(delta) -> float:
    """`delta` as a float, checked: a positive, finite number (not a bool)."""
    if isinstance(delta, bool) or not isinstance(delta, (int, float, np.number)):
        raise ValueError(
            f"`delta` must be a positive number. Received: delta={delta!r}"
        )
    delta = float(delta)
    if not np.isfinite(delta) or delta <= 0:
        raise ValueError(
            f"`delta` must be a positive, finite number. Received: delta={delta}"
        )
    return delta


def huber_location(
    batches: Iterable[Batch],
    *,
    delta: float = 1.0,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> HuberResult:
    """Exact Huber location per column, in at most `memory_budget` bytes.

    Args:
        batches: an iterable of `(values, weights)` NumPy pairs (values `(n,)`
            or `(n, ...)`, weights `(n,)` or None), e.g. a
            `keras_biasinit.data.Batches`. Data larger than the budget are read
            a few times, so they must be re-iterable.
        delta: the Huber loss's `delta`. Defaults to 1.0.
        memory_budget: bytes this computation may hold. Defaults to 256 MiB.

    Returns:
        A `HuberResult`.
    """
    delta = check_delta(delta)
    budget = _passes.check_budget(memory_budget)
    meter = _passes.MemoryMeter(budget)
    first = _passes.first_pass(
        batches, name="Huber location", meter=meter, in_memory_bytes=in_memory_bytes
    )
    if isinstance(first, _passes.InMemory):
        return _in_memory(first, delta, meter)
    return _multi_pass(batches, first, delta, meter)


def _in_memory(data: "_passes.InMemory", delta: float, meter) -> HuberResult:
    columns = data.ys[0].shape[1]
    meter.hold(in_memory_bytes(data.rows, columns, data.weighted) - data.held_bytes)
    y, w = data.arrays()
    data.ys = data.ws = None
    if w is None:
        w = np.ones(y.shape[0])
    total = float(w.sum())
    if total <= 0:
        raise ValueError("All sample weights are 0: there is nothing to fit.")
    keep = w > 0
    if keep.all():
        location = np.array(
            [huber_location_1d(y[:, j], w, delta) for j in range(y.shape[1])]
        )
    else:
        location = np.array(
            [huber_location_1d(y[keep, j], w[keep], delta) for j in range(y.shape[1])]
        )
    loss = w @ huber_loss(y - location, delta) / y.shape[0]
    return HuberResult(location, loss, int(y.shape[0]), total, 1, meter.peak)


def _windows(low: float, high: float, delta: float):
    """Key windows [low - delta, high - delta] and [low + delta, high + delta]
    (one merged window where they overlap)."""
    edges = np.clip([low - delta, high - delta, low + delta, high + delta], -_BIG, _BIG)
    k = [int(x) for x in _passes.to_keys(edges)]
    if k[1] >= k[2]:
        return [(k[0], k[3])]
    return [(k[0], k[1]), (k[2], k[3])]


def _multi_pass(batches, first: "_passes.Summary", delta: float, meter) -> HuberResult:
    d = first.kmin.shape[0]
    plan = _passes.Plan(d, _passes.bins_per_window(meter.budget, d))
    data_min, data_max = _passes.from_keys(first.kmin), _passes.from_keys(first.kmax)
    low, high = data_min.copy(), data_max.copy()  # brackets: every root in [low, high]
    location = data_min.copy()
    loss_sum = np.zeros(d)
    done = first.kmin == first.kmax  # constant columns: location = the value
    for j in np.flatnonzero(~done):
        plan.set(j, BIN, [(int(first.kmin[j]), int(first.kmax[j]))])
    passes = 1
    while not done.all():
        passes += 1
        if passes > _MAX_PASSES:
            raise RuntimeError(
                "Internal error: the Huber location did not converge in "
                f"{_MAX_PASSES} passes. Please report it."
            )
        result = _passes.run_pass(batches, plan, meter=meter, first=first,
                                  name="Huber location")
        meter.hold(_passes.analysis_bytes(meter.budget, plan))
        wanted = []  # (cost, column, windows, spans, probe next?)
        for j in np.flatnonzero(~done):
            mode = plan.mode[j]
            if mode == COLLECT:
                solved = _solve(result, j, delta, low[j], high[j],
                                data_min[j], data_max[j])
                if isinstance(solved, str):  # rounding disagreed: widen that side
                    if solved == "low":
                        low[j] = data_min[j]
                    else:
                        high[j] = data_max[j]
                else:
                    location[j], loss_sum[j] = solved
                    done[j] = True
                    continue
                cost, spans, stuck = np.inf, None, False
            elif mode == PROBE:
                low[j], high[j] = _probed(result, j, delta, low[j], high[j])
                cost, spans, stuck = np.inf, None, False
                if low[j] == high[j]:  # two one-key windows: <= 2 distinct values
                    cost = 2.0
            else:
                width = high[j] - low[j]
                low[j], high[j], cost, spans = _bracket(
                    result, j, delta, low[j], high[j],
                    _passes.analysis_block(meter.budget))
                stuck = high[j] - low[j] > 0.5 * width
            windows = _windows(low[j], high[j], delta)
            if spans is None:  # bin where data can be: within [min, max]
                spans = [(max(lo, int(first.kmin[j])), min(hi, int(first.kmax[j])))
                         for lo, hi in windows]
            wanted.append((cost, j, windows, spans, stuck))
        plan = _passes.Plan(d, plan.bins)
        room = _passes.collect_capacity(meter.budget)
        for cost, j, windows, spans, stuck in sorted(wanted, key=lambda t: t[0]):
            if cost <= room:
                room -= cost
                plan.set(j, COLLECT, windows, spans)
            elif stuck:  # the histogram could not narrow it: evaluate psi exactly
                plan.set_probes(j, _probe_points(low[j], high[j]), delta)
            else:
                plan.set(j, BIN, windows, spans)
        del result
        meter.release(meter.current)
    return HuberResult(location, loss_sum / first.rows, first.rows, first.weight,
                       passes, meter.peak)


def _probe_points(low: float, high: float) -> np.ndarray:
    """`PROBES` points in (low, high): half evenly spaced in value, half in
    float keys (geometric for a bracket spanning orders of magnitude, where
    even value spacing would narrow it only ~PROBES-fold a pass)."""
    half = _passes.PROBES // 2
    in_value = low + (high - low) / (half + 1) * np.arange(1, half + 1)
    keys = _passes.to_keys(np.array([low, high])).astype(np.float64)
    in_keys = np.linspace(keys[0], keys[1], _passes.PROBES - half + 2)[1:-1]
    in_keys = _passes.from_keys(in_keys.astype(np.uint64))
    return np.clip(np.sort(np.concatenate([in_value, in_keys])), low, high)


def _constant_part(result, j: int, delta: float, b):
    """psi's part from the rows outside the windows (exact for b in the bracket)."""
    w_below, w_between, w_above = result.region_weight[:, j]
    return (delta * (w_below - w_above) + w_between * (b - result.anchors[1, j])
            - result.region_sum[1, j])


def _probed(result, j: int, delta: float, low: float, high: float):
    """From a probe pass: the bracket narrowed by psi's exact signs.

    A probe `p` with psi(p) = 0 and no value within delta of it lies in a flat
    stretch of psi: no data in (lo, hi), the largest value at or below
    `p - delta` and the smallest at or above `p + delta`, so psi is 0 exactly on
    [lo + delta, hi - delta] and the location is its midpoint, (lo + hi) / 2.
    """
    psi, near, lo, hi = result.psi[:, j]
    points = result.psi_points[j]
    scale = delta * result.summary.weight
    flat = np.flatnonzero((np.abs(psi) <= 1e-12 * scale) & (near == 0))
    if flat.size and np.isfinite(lo[flat[0]]) and np.isfinite(hi[flat[0]]):
        b = float((lo[flat[0]] + hi[flat[0]]) / 2)
        return b, b
    below, above = points[psi < -1e-10 * scale], points[psi > 1e-10 * scale]
    if below.size:
        low = max(low, float(below.max()))
    if above.size:
        high = min(high, float(above.min()))
    return low, high


def _bracket(result, j: int, delta: float, low: float, high: float, block: int):
    """From a histogram pass: a narrower bracket, the cost of collecting its
    windows, and the spans to bin them over if they are binned again."""
    new_low, new_high = low, high
    for kind in (0, 1):
        a, b = _bracket_of(result, j, kind, delta, low, high, block)
        new_low, new_high = max(new_low, a), min(new_high, b)
    windows = _windows(new_low, new_high, delta)
    costs, spans = [], []
    for kind in (0, 1):
        count, _, _, vmin, vmax, _, _ = result.column_bins(j, kind)
        cost = 0.0
        for lo_key, hi_key in windows:
            lo_v, hi_v = _passes.from_keys(np.array([lo_key, hi_key], np.uint64))
            overlap = (vmax >= lo_v) & (vmin <= hi_v)
            # a bin with min == max holds one distinct value
            cost += float(np.where(vmin == vmax, 1, count)[overlap].sum())
            if kind == 0:  # the data seen in the window, to bin it again
                if overlap.any():
                    seen = _passes.to_keys(
                        np.array([vmin[overlap][0], vmax[overlap][-1]]))
                    spans.append((max(lo_key, int(seen[0])),
                                  min(hi_key, int(seen[1]))))
                else:
                    spans.append((lo_key, hi_key))
        costs.append(cost)
    return new_low, new_high, min(costs), spans


def _bracket_of(result, j: int, kind: int, delta: float, low: float, high: float,
                block: int = 4096):
    """Bounds on psi at bin edges +- delta from one histogram -> a bracket."""
    count, weight, wsum, vmin, vmax, anchor, window = result.column_bins(j, kind)
    if not weight.size:
        return low, high
    total = result.region_weight[:, j].sum() + weight.sum()
    margin = 1e-9 * total * (3 * delta + (high - low))
    n0 = int(np.count_nonzero(window == 0))
    cum_w = np.concatenate([[0.0], np.cumsum(weight)])
    cum_s = np.concatenate([[0.0], np.cumsum(wsum)])
    candidates = np.concatenate([vmin - delta, vmin + delta, vmax - delta,
                                 vmax + delta])
    candidates = np.unique(candidates[(candidates > low) & (candidates < high)])
    new_low, new_high = low, high
    for start in range(0, candidates.size, block):  # bounded temporaries
        points = candidates[start : start + block]
        # Bins wholly at or below b - delta add +delta W; at or above b + delta,
        # -delta W; in between, W (b - anchor) - sum, exactly, except the (at
        # most two) bins straddling b - delta or b + delta, which are bounded.
        i_a = np.searchsorted(vmax, points - delta, side="right")
        i_c = np.searchsorted(vmin, points + delta, side="left")
        part = delta * (cum_w[i_a] - (cum_w[-1] - cum_w[i_c]))
        for first_bin, stop in ((0, n0), (n0, weight.size)):
            if first_bin == stop:
                continue
            ra, rc = np.clip(i_a, first_bin, stop), np.clip(i_c, first_bin, stop)
            part += ((cum_w[rc] - cum_w[ra]) * (points - anchor[first_bin])
                     - (cum_s[rc] - cum_s[ra]))
        lower, upper = part, part.copy()
        has = i_a < i_c
        first = np.minimum(i_a, weight.size - 1)
        last = np.maximum(i_c - 1, 0)
        s1 = has & (vmin[first] < points - delta)
        s2 = has & (vmax[last] > points + delta) & ~(s1 & (last == first))
        for flag, idx in ((s1, first), (s2, last)):
            lin = weight[idx] * (points - anchor[idx]) - wsum[idx]
            lo_b = weight[idx] * np.clip(points - vmax[idx], -delta, delta)
            hi_b = weight[idx] * np.clip(points - vmin[idx], -delta, delta)
            lower += np.where(flag, lo_b - lin, 0.0)
            upper += np.where(flag, hi_b - lin, 0.0)
        const = _constant_part(result, j, delta, points)
        lower += const
        upper += const
        below = points[upper < -margin]
        above = points[lower > margin]
        if below.size:
            new_low = max(new_low, float(below.max()))
        if above.size:
            new_high = min(new_high, float(above.min()))
    return new_low, new_high


def _solve(result, j: int, delta: float, low: float, high: float,
           data_min: float, data_max: float):
    """From a collect pass: (location, sum w h(y - location)); or "low"/"high"
    if the bracket turned out not to hold the root on that side."""
    values, weights = result.column_values(j)
    w_below, w_between, w_above = result.region_weight[:, j]
    a_below, a_between, a_above = result.anchors[:, j]
    s_below, s_between, s_above = result.region_sum[:, j]
    b = _solve_segments(
        values, weights, delta, low, high, w_below=w_below, w_above=w_above,
        w_between=w_between, s_between=s_between, a_between=a_between,
        at_min=low <= data_min, at_max=high >= data_max,
    )
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
