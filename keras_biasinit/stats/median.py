"""Exact weighted median per column, in bounded memory.

The weighted median minimises `sum_i w_i |y_i - b|`: the optimal constant under
absolute error. Where the minimiser is an interval (the cumulative weight
reaches exactly half of the total at a data point), the midpoint of that
interval is returned; with unit weights this is exactly `np.median` (the mean of
the two middle values of an even count). The loss it leaves is the mean
absolute deviation `sum_i w_i |y_i - median| / rows` (rows, not weights: Keras's
default reduction).

How it is computed (`memory_budget` bytes, default 256 MiB):

- Data whose in-memory solve fits the budget (about twice the float64 data, a
  little more with weights): one pass, buffered, then `np.median` (or the sorted
  cumulative weights with the midpoint rule).
- Otherwise, over a re-iterable input, typically three passes (see
  `keras_biasinit.stats._passes`): (1) count, weight, min and max per column;
  (2) two histograms per column (up to 32,768 bins each, one even in the
  order-preserving float keys, one even in value; per bin the count, weight,
  min and max; the bins share a quarter of the budget) that show which bin the
  half-weight point falls in (and the next bin, if it may fall exactly on a
  boundary); (3) the values of that bracket are collected exactly (duplicates
  merged) while the rows below and above enter through their weight and their
  summed distance to the bracket; the median and the mean absolute deviation
  are then exact. A bracket too large for the budget (heavily tied or
  adversarial data) is binned again first: one more pass per refinement, never
  an approximate answer.
- A one-shot iterator (a generator) whose data exceed the budget cannot be read
  again: ValueError, asking for a re-iterable dataset or a larger budget.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Optional, Tuple

import numpy as np

from keras_biasinit.stats import _passes
from keras_biasinit.stats._passes import BIN
from keras_biasinit.stats._passes import COLLECT
from keras_biasinit.stats._passes import DEFAULT_MEMORY_BUDGET

Batch = Tuple[np.ndarray, Optional[np.ndarray]]

_MAX_PASSES = 40


@dataclasses.dataclass
class MedianResult:
    """Per column: the median and `sum_i w_i |y_i - median| / rows`.

    `passes` is the number of passes read over the data; `peak_bytes` the peak
    of the memory this computation held for its own buffers (see
    `keras_biasinit.stats._passes`), never more than the budget.
    """

    median: np.ndarray
    mean_absolute_deviation: np.ndarray
    rows: int
    weight: float
    passes: int = 1
    peak_bytes: int = 0


def weighted_median_of_arrays(
    y: np.ndarray, w: Optional[np.ndarray] = None
) -> np.ndarray:
    """Exact weighted median of each column of `y` (rows on axis 0)."""
    y = np.asarray(y, dtype=np.float64)
    if w is None:
        return np.median(y, axis=0)
    keep = w > 0
    y, w = y[keep], w[keep]
    result = np.empty(y.shape[1])
    for j in range(y.shape[1]):
        order = np.argsort(y[:, j], kind="stable")
        values, cum = y[order, j], np.cumsum(w[order])
        i, tie = half_point(cum, cum[-1] / 2, weighted=True)
        if tie and i + 1 < values.shape[0]:
            result[j] = (values[i] + values[i + 1]) / 2
        else:
            result[j] = values[i]
    return result


def half_point(cum: np.ndarray, half: float, *, weighted: bool) -> Tuple[int, bool]:
    """Index of the first cumulative weight that reaches `half`, and whether it
    reaches it exactly (a tie: the minimiser is the interval up to the next
    value). With weights, "exactly" allows the rounding of the cumulative sums
    (1e-9 relative), so that scaling every weight by one constant, which does
    not change the minimisers, does not move the median off the midpoint."""
    tol = 1e-9 * half if weighted else 0.0
    i = int(np.searchsorted(cum, half - tol, side="left"))
    return i, i < cum.shape[0] and bool(cum[i] <= half + tol)


def in_memory_bytes(rows: int, columns: int, weighted: bool) -> int:
    """Peak bytes of the in-memory solve, the buffered float64 data included."""
    data = 8 * rows * columns
    if not weighted:
        return 2 * data + data // 16 + 2**16  # data + np.median's partitioned copy
    # data and weights, their positive-weight copies, per column sort buffers
    return 2 * (data + 8 * rows) + 40 * rows + 2**16


def weighted_median(
    batches: Iterable[Batch], *, memory_budget: int = DEFAULT_MEMORY_BUDGET
) -> MedianResult:
    """Exact weighted median per column, in at most `memory_budget` bytes.

    Args:
        batches: an iterable of `(values, weights)` NumPy pairs (values `(n,)`
            or `(n, ...)`, weights `(n,)` or None), e.g. a
            `keras_biasinit.data.Batches`. Data larger than the budget are read
            a few times, so they must be re-iterable.
        memory_budget: bytes this computation may hold. Defaults to 256 MiB.

    Returns:
        A `MedianResult`.
    """
    budget = _passes.check_budget(memory_budget)
    meter = _passes.MemoryMeter(budget)
    first = _passes.first_pass(
        batches, name="median", meter=meter, in_memory_bytes=in_memory_bytes
    )
    if isinstance(first, _passes.InMemory):
        return _in_memory(first, meter)
    return _multi_pass(batches, first, meter)


def _in_memory(data: "_passes.InMemory", meter) -> MedianResult:
    columns = data.ys[0].shape[1]
    meter.hold(in_memory_bytes(data.rows, columns, data.weighted) - data.held_bytes)
    y, w = data.arrays()
    data.ys = data.ws = None
    total = float(y.shape[0] if w is None else w.sum())
    if total <= 0:
        raise ValueError("All sample weights are 0: there is nothing to fit.")
    median = weighted_median_of_arrays(y, w)
    deviation = y - median
    np.abs(deviation, out=deviation)
    mad = (deviation.sum(axis=0) if w is None else w @ deviation) / y.shape[0]
    return MedianResult(median, mad, int(y.shape[0]), total, 1, meter.peak)


def _multi_pass(batches, first: "_passes.Summary", meter) -> MedianResult:
    d = first.kmin.shape[0]
    plan = _passes.Plan(d, _passes.bins_per_window(meter.budget, d, 1), windows=1)
    median = _passes.from_keys(first.kmin).copy()
    loss_sum = np.zeros(d)
    done = first.kmin == first.kmax  # constant columns: median = the value
    full = [(int(first.kmin[j]), int(first.kmax[j])) for j in range(d)]
    for j in np.flatnonzero(~done):
        plan.set(j, BIN, [full[j]])
    passes = 1
    while not done.all():
        passes += 1
        if passes > _MAX_PASSES:
            raise RuntimeError(
                "Internal error: the median did not converge in "
                f"{_MAX_PASSES} passes. Please report it."
            )
        result = _passes.run_pass(batches, plan, meter=meter, first=first,
                                  name="median")
        meter.hold(_passes.analysis_bytes(meter.budget, plan))
        wanted = []  # (cost, column, window)
        for j in np.flatnonzero(~done):
            if plan.mode[j] == COLLECT:
                solved = _solve(result, j, first.weighted)
                if solved is None:  # rounding disagreed: start over on the column
                    wanted.append((np.inf, j, full[j]))
                else:
                    median[j], loss_sum[j] = solved
                    done[j] = True
            else:
                cost, window = _bracket(result, j, first.weighted, full[j])
                wanted.append((cost, j, window))
        plan = _passes.Plan(d, plan.bins, windows=1)
        room = _passes.collect_capacity(meter.budget)
        for cost, j, window in sorted(wanted, key=lambda item: item[0]):
            mode = COLLECT if cost <= room else BIN
            room -= cost if mode == COLLECT else 0
            plan.set(j, mode, [window])
        del result
        meter.release(meter.current)
    return MedianResult(median, loss_sum / first.rows, first.rows, first.weight,
                        passes, meter.peak)


def _bracket(result, j: int, weighted: bool, full: Tuple[int, int]):
    """From a histogram pass: (collect cost, key window) holding the median,
    from whichever of the two histograms gives the smaller window."""
    return min(
        (_bracket_of(result, j, kind, weighted, full) for kind in (0, 1)),
        key=lambda item: item[0],
    )


def _bracket_of(result, j: int, kind: int, weighted: bool, full: Tuple[int, int]):
    count, weight, _, low, high, _, _ = result.column_bins(j, kind)
    w_below, w_above = result.region_weight[0, j], result.region_weight[2, j]
    cum = w_below + np.cumsum(weight)
    if cum.shape[0] == 0:
        return np.inf, full
    half = (cum[-1] + w_above) / 2
    tol = 1e-9 * half if weighted else 0.0
    k = int(np.searchsorted(cum, half - tol, side="left"))
    if w_below >= half - tol or k == cum.shape[0]:
        return np.inf, full  # the bracket missed (rounding): bin everything again
    k2 = k
    if cum[k] <= half + tol:  # the half point may sit on the bin's upper edge
        if k + 1 < cum.shape[0]:
            k2 = k + 1
        elif w_above > 0:
            return np.inf, full
    cost = float(np.where(low == high, 1, count)[k : k2 + 1].sum())
    keys = _passes.to_keys(np.array([low[k], high[k2]]))
    return cost, (int(keys[0]), int(keys[1]))


def _solve(result, j: int, weighted: bool):
    """From a collect pass: (median, sum w |y - median|), or None if missed."""
    values, weights = result.column_values(j)
    w_below, w_above = result.region_weight[0, j], result.region_weight[2, j]
    cum = w_below + np.cumsum(weights)
    if cum.shape[0] == 0:
        return None
    half = (cum[-1] + w_above) / 2
    i, tie = half_point(cum, half, weighted=weighted)
    if w_below >= half or i == cum.shape[0]:
        return None
    if tie:
        if i + 1 < cum.shape[0]:
            median = (values[i] + values[i + 1]) / 2
        elif w_above > 0:
            return None
        else:
            median = values[i]
    else:
        median = values[i]
    low_anchor, high_anchor = result.anchors[0, j], result.anchors[2, j]
    # Rows below the window: sum w (median - y) = W (median - a) + sum w (a - y),
    # both terms >= 0 (a = the window's low end); likewise above.
    loss = (
        w_below * (median - low_anchor) - result.region_sum[0, j]
        + w_above * (high_anchor - median) + result.region_sum[2, j]
        + weights @ np.abs(values - median)
    )
    return float(median), float(loss)
