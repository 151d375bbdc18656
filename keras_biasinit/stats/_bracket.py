"""Pass 2 of an exact quantile of wide targets: count outside, collect inside.

A `BracketPlan` gives each column a value bracket `[lo, hi]` (from pass 1's
row sample, `_wide_select`). Per chunk of rows the pass compares the values
with both ends, counts (and weighs) the rows below `lo` and above `hi`, sums
`min(y, lo)` and `max(y, hi)` (hence `sum w (y - lo)` below and
`sum w (y - hi)` above, for the mean absolute deviation), and collects the
values inside with their column (`np.flatnonzero` of the mask, in the batch's
own float type). Columns not in this pass have `lo = hi = +inf`: every row is
"below" and none is collected. Counts and sums add and collected values
concatenate, so shards merge exactly; `result()` groups the values by column.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from keras_biasinit.stats._checks import check_weights
from keras_biasinit.stats._summary import check_width
from keras_biasinit.stats._summary import chunks
from keras_biasinit.stats.state import Arrays

#: Bytes per collected value while collecting (value, column, weight) and
#: grouping them by column afterwards (the order and the grouped copies).
COLLECTED_BYTES = 24
COLLECTED_BYTES_WEIGHTED = 48
#: Bytes per element of a chunk of rows: three masks, a clipped copy, a cast.
CHUNK_BYTES = 32


class BracketPlan:
    """Per column `lo <= hi` (float64; `+inf` both: not in this pass) and the
    most values the pass may collect (`capacity`)."""

    windows, bins = 1, 1  # for the driver's accounting of reading the result

    def __init__(self, lo: np.ndarray, hi: np.ndarray, capacity: int) -> None:
        self.lo, self.hi, self.capacity = lo, hi, int(capacity)
        self.columns = lo.shape[0]
        self.active = np.isfinite(lo) | np.isfinite(hi) | (lo < hi)
        # float32 ends where they are float32 values: float32 batches then
        # compare without a cast.
        lo32, hi32 = lo.astype(np.float32), hi.astype(np.float32)
        exact = np.array_equal(lo32, lo) and np.array_equal(hi32, hi)
        self.lo32, self.hi32 = (lo32, hi32) if exact else (None, None)

    def new_state(self, first, meter, name, hold=True) -> "BracketState":
        return BracketState(self, first, meter, name, hold=hold)


class BracketResult(NamedTuple):
    """The merged pass: per column counts, weights and sums outside the
    bracket, and the values inside grouped by column (`values[starts[j]:
    starts[j + 1]]`, unsorted, with `weights` alike or None)."""

    count: np.ndarray  # (2, d) int64: below lo, above hi
    weight: np.ndarray  # (2, d): the same weighed
    deviation: np.ndarray  # (2, d): sum w (y - lo) below, sum w (y - hi) above
    values: np.ndarray
    weights: object
    starts: np.ndarray
    overflow: bool  # more values than `capacity`: none kept


class BracketState:
    """The state of a bracket pass (see the module docstring)."""

    def __init__(self, plan: BracketPlan, first, meter, name, *, hold=True):
        self.plan, self.first, self.meter, self.name = plan, first, meter, name
        d = plan.columns
        # chunk temporaries: three masks, a clipped copy, a float64 cast
        self.rows_per_chunk = max(1, meter.budget // 8 // CHUNK_BYTES // d)
        self._buffer_key, self._buffer = None, None
        self.count = np.zeros((2, d), np.int64)
        self.weight = np.zeros((2, d))
        self.total = np.zeros((2, d))  # sum w min(y, lo), sum w max(y, hi)
        self.rows, self.weight_sum = 0, 0.0
        self.parts = []  # (values, columns, weights or None) per chunk
        self.collected, self.overflow = 0, False
        per = COLLECTED_BYTES_WEIGHTED if first.weighted else COLLECTED_BYTES
        self.held = (plan.capacity * per
                     + self.rows_per_chunk * d * CHUNK_BYTES)
        if hold:
            meter.hold(self.held)

    def update(self, values, weights=None) -> "BracketState":
        check_width(self.plan.columns, values)
        for chunk, chunk_w in chunks(values, weights, self.rows_per_chunk):
            self._update(chunk, chunk_w)
        return self

    def _buffers(self, y):
        """Two masks, their union and a copy of `y`'s shape, reused."""
        key = (y.shape, y.dtype)
        if self._buffer_key != key:
            self._buffer_key = key
            masks = [np.empty(y.shape, bool) for _ in range(3)]
            self._buffer = (*masks, np.empty_like(y))
        return self._buffer

    def _ends(self, y):
        plan = self.plan
        if y.dtype == np.float32 and plan.lo32 is not None:
            return y, plan.lo32, plan.hi32
        return y.astype(np.float64, copy=False), plan.lo, plan.hi

    def _update(self, values, weights) -> None:
        y = np.asarray(values)
        y = y.reshape(y.shape[0] if y.ndim else 1, -1)
        w = check_weights(weights, y.shape[0])
        if w is None and self.first.weighted:  # another batch had weights
            w = np.ones(y.shape[0])
        self.rows += y.shape[0]
        if w is not None and not (w > 0).all():
            y, w = y[w > 0], w[w > 0]
        if y.shape[0] == 0:
            return
        y, lo, hi = self._ends(y)
        below, above, outside, bound = self._buffers(y)
        np.less(y, lo, out=below)
        np.greater(y, hi, out=above)
        np.logical_or(below, above, out=outside)
        inside = np.flatnonzero(np.logical_not(outside, out=outside))
        with np.errstate(invalid="ignore"):
            if w is None:
                self.weight_sum += y.shape[0]
                for side, mask in enumerate((below, above)):
                    self.count[side] += np.add.reduce(mask.view(np.uint8), axis=0,
                                                      dtype=np.int32)
            else:
                self.weight_sum += float(w.sum())
                for side, mask in enumerate((below, above)):
                    self.count[side] += mask.sum(axis=0)
                    self.weight[side] += w @ mask
            for side, (clip, end) in enumerate(((np.minimum, lo), (np.maximum, hi))):
                clip(y, end, out=bound)
                self.total[side] += (bound.sum(axis=0, dtype=np.float64)
                                     if w is None else w @ bound)
        self._collect(y, w, inside)

    def _collect(self, y, w, inside) -> None:
        if self.overflow or inside.size == 0:
            return
        self.collected += inside.size
        if self.collected > self.plan.capacity:
            self.overflow, self.parts = True, []
            return
        d = y.shape[1]
        cols = (inside % d).astype(np.int16 if d < 2**15 else np.int32)
        weights = None if w is None else w[inside // d]
        self.parts.append((y.reshape(-1)[inside], cols, weights))

    def merge(self, other: "BracketState") -> "BracketState":
        self.count += other.count
        self.weight += other.weight
        self.total += other.total
        self.rows += other.rows
        self.weight_sum += other.weight_sum
        self.parts += other.parts
        self.collected += other.collected
        self.overflow |= other.overflow or self.collected > self.plan.capacity
        if self.overflow:
            self.parts = []
        return self

    def _joined(self):
        if not self.parts:
            return np.zeros(0), np.zeros(0, np.int32), None
        values, cols, weights = zip(*self.parts)
        joined_w = None if weights[0] is None else np.concatenate(weights)
        return np.concatenate(values), np.concatenate(cols), joined_w

    def to_arrays(self) -> Arrays:
        values, cols, weights = self._joined()
        arrays = {"count": self.count, "weight": self.weight, "total": self.total,
                  "seen": np.array([self.rows, self.weight_sum, self.collected,
                                    int(self.overflow)], np.float64),
                  "values": values, "cols": cols}
        if weights is not None:
            arrays["weights"] = weights
        return arrays

    def from_arrays(self, arrays: Arrays) -> "BracketState":
        state = BracketState(self.plan, self.first, self.meter, self.name,
                             hold=False)
        shape = state.count.shape
        state.count = np.asarray(arrays["count"]).astype(np.int64).reshape(shape)
        state.weight = np.array(arrays["weight"], np.float64).reshape(shape)
        state.total = np.array(arrays["total"], np.float64).reshape(shape)
        rows, state.weight_sum, collected, overflow = arrays["seen"]
        state.rows, state.collected = int(rows), int(collected)
        state.overflow = bool(overflow)
        if not state.overflow and np.size(arrays["values"]):
            weights = arrays.get("weights")
            state.parts = [(np.asarray(arrays["values"]),
                            np.asarray(arrays["cols"]).reshape(-1),
                            None if weights is None else np.asarray(weights))]
        return state

    def result(self) -> BracketResult:
        """The merged pass, the values grouped by column; a ValueError if the
        data changed since pass 1."""
        from keras_biasinit.stats._wide_select import check_bracket_pass

        values, cols, weights = self._joined()
        self.parts = []
        order = np.argsort(cols, kind="stable")  # a radix sort of small ints
        starts = np.zeros(self.plan.columns + 1, np.int64)
        np.cumsum(np.bincount(cols, minlength=self.plan.columns), out=starts[1:])
        values = values[order]
        weights = None if weights is None else weights[order]
        result = BracketResult(self.count, self.weight, self._deviation(), values,
                               weights, starts, self.overflow)
        check_bracket_pass(self, result)
        return result

    def _deviation(self) -> np.ndarray:
        """`sum w (y - lo)` over rows below `lo`, `sum w (y - hi)` above `hi`:
        `sum w min(y, lo) - lo W` (rows at or above `lo` add 0)."""
        total = self.weight_sum
        ends = np.stack([self.plan.lo, self.plan.hi])
        with np.errstate(invalid="ignore"):
            deviation = self.total - ends * total
        return np.where(np.isfinite(ends) & self.plan.active, deviation, 0.0)
