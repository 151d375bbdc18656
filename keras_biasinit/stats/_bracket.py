"""Pass 2 of an exact quantile of wide targets: count below, collect inside.

A `BracketPlan` gives each column a value bracket `[lo, hi]` (from pass 1's
row sample, `_wide_select`) and room for the values the sample predicts
inside. Per chunk of rows the pass compares the values with both ends,
counts (weighs) the rows at or above `lo`, sums `w (min(y, lo) - lo)` (over
the rows below `lo`: small numbers, summed without the loss a sum of the
values themselves would have) and writes the values inside into their
column's segment (`np.flatnonzero` of the transposed mask yields them grouped
by column). What lies above `hi` follows from pass 1's rows, weight and
`sum w (y - anchor)`. Columns not in this pass have `lo = hi = +inf`.
Counts and sums add and segments interleave, so shards merge exactly.
"""

from __future__ import annotations

import numpy as np

from keras_biasinit.stats._bracket_plan import CHUNK_BYTES
from keras_biasinit.stats._bracket_plan import ROOM_BYTES
from keras_biasinit.stats._bracket_plan import ROOM_BYTES_WEIGHTED
from keras_biasinit.stats._bracket_plan import BracketPlan
from keras_biasinit.stats._bracket_plan import BracketResult
from keras_biasinit.stats._bracket_plan import check_bracket_pass
from keras_biasinit.stats._bracket_plan import place
from keras_biasinit.stats._checks import check_weights
from keras_biasinit.stats._summary import check_width
from keras_biasinit.stats._summary import chunks
from keras_biasinit.stats.state import Arrays


class BracketState:
    """The state of a bracket pass (see the module docstring)."""

    def __init__(self, plan: BracketPlan, first, meter, name, *, hold=True):
        self.plan, self.first, self.meter, self.name = plan, first, meter, name
        d = plan.columns
        self.rows_per_chunk = max(1, meter.budget // 8 // CHUNK_BYTES // d)
        self.at_or_above = np.zeros(d, np.int64)
        self.above_weight = np.zeros(d)  # weight at or above lo
        self.below_deviation = np.zeros(d)  # sum w (min(y, lo) - lo), per chunk
        self.inside = np.zeros(d, np.int64)
        self.inside_weight = np.zeros(d)
        self.inside_centred = np.zeros(d)  # sum w (y - anchor) inside
        self.low = np.full(d, np.inf)  # min(y, lo): pass 1's min if any below
        self.rows, self.positive, self.weight_sum = 0, 0, 0.0
        self.fill = np.zeros(d, np.int64)
        self.lost = np.zeros(d, bool)
        self.values = np.empty(plan.starts[-1])
        self.weights = np.empty(plan.starts[-1]) if first.weighted else None
        self._buffer_key, self._buffer = None, None
        per = ROOM_BYTES_WEIGHTED if first.weighted else ROOM_BYTES
        self.held = int(plan.starts[-1]) * per + self.rows_per_chunk * d * CHUNK_BYTES
        if hold:
            meter.hold(self.held)

    def update(self, values, weights=None) -> "BracketState":
        check_width(self.plan.columns, values)
        for chunk, chunk_w in chunks(values, weights, self.rows_per_chunk):
            self._update(chunk, chunk_w)
        return self

    def _buffers(self, y):
        """Three masks, a copy of `y` and a float64 one, reused."""
        key = (y.shape, y.dtype)
        if self._buffer_key != key:
            self._buffer_key = key
            masks = [np.empty(y.shape, bool) for _ in range(3)]
            self._buffer = (*masks, np.empty_like(y), np.empty(y.shape))
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
        self.positive += y.shape[0]
        y, lo, hi = self._ends(y)
        up, down, inside, clipped, deviation = self._buffers(y)
        np.greater_equal(y, lo, out=up)
        np.less_equal(y, hi, out=down)
        np.logical_and(up, down, out=inside)
        np.minimum(y, lo, out=clipped)
        np.minimum(self.low, clipped.min(axis=0), out=self.low)
        # min(y, lo) - lo: small numbers, exact for float32 values, whose
        # sums do not lose what a sum of the values themselves would
        np.subtract(clipped, self.plan.lo, out=deviation)
        if w is None:
            self.weight_sum += y.shape[0]
            self.at_or_above += np.add.reduce(up.view(np.uint8), axis=0,
                                              dtype=np.int32)
            self.below_deviation += deviation.sum(axis=0)
        else:
            self.weight_sum += float(w.sum())
            self.at_or_above += up.sum(axis=0)
            self.above_weight += w @ up
            self.below_deviation += w @ deviation
        self._collect(y, w, np.flatnonzero(inside.T))

    def _collect(self, y, w, found) -> None:
        """Writes the values at `found` (indices into `y.T`) to the segments."""
        if found.size == 0:
            return
        n, d = y.shape
        cols = found // n
        rows = found - cols * n
        values = y.reshape(-1)[rows * d + cols]
        # `found` is sorted: each column's values are one run
        counts = np.diff(np.searchsorted(found, np.arange(d + 1) * n))
        weights = None if w is None else w[rows]
        self.inside += counts
        if weights is not None:
            self.inside_weight += np.bincount(cols, weights, d)
            centred = weights * (values - self.plan.anchor[cols])
            self.inside_centred += np.bincount(cols, centred, d)
        over = (self.fill + counts > self.plan.room) | self.lost
        if over.any():  # the sample misled: this column takes another pass
            self.lost |= over
            keep = ~over[cols]
            values, cols = values[keep], cols[keep]
            weights = None if weights is None else weights[keep]
            counts = np.where(over, 0, counts)
        place(values, weights, counts, self.plan.starts, self.fill, self.values,
              self.weights)
        self.fill += counts

    def merge(self, other: "BracketState") -> "BracketState":
        for name in ("at_or_above", "above_weight", "below_deviation",
                     "inside", "inside_weight", "inside_centred"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        np.minimum(self.low, other.low, out=self.low)
        self.rows += other.rows
        self.positive += other.positive
        self.weight_sum += other.weight_sum
        self.lost |= other.lost
        counts = np.where(self.lost, 0, other.fill)
        self.lost |= self.fill + counts > self.plan.room
        counts = np.where(self.lost, 0, counts)
        keep = np.repeat(counts > 0, other.fill)
        values, weights = other._segments()
        place(values[keep], None if weights is None else weights[keep], counts,
              self.plan.starts, self.fill, self.values, self.weights)
        self.fill = np.where(self.lost, 0, self.fill + counts)
        return self

    def _segment_sums(self) -> np.ndarray:
        """`sum (y - anchor)` of each column's values inside (unweighted)."""
        sums = np.zeros(self.plan.columns)
        for j in np.flatnonzero(self.fill):
            start = self.plan.starts[j]
            segment = self.values[start : start + self.fill[j]]
            sums[j] = (segment - self.plan.anchor[j]).sum()
        return sums

    def _segments(self):
        """The values (and weights) of every segment, packed."""
        keep = np.repeat(np.arange(self.plan.columns), self.plan.room)
        keep = np.arange(keep.shape[0]) - self.plan.starts[keep] < self.fill[keep]
        weights = None if self.weights is None else self.weights[keep]
        return self.values[keep], weights

    def to_arrays(self) -> Arrays:
        values, weights = self._segments()
        arrays = {"counts": np.stack([self.at_or_above, self.inside, self.fill,
                                      self.lost.astype(np.int64)]),
                  "sums": np.stack([self.above_weight, self.below_deviation,
                                    self.inside_weight, self.inside_centred]),
                  "seen": np.array([self.rows, self.positive, self.weight_sum]),
                  "low": self.low,
                  "values": values}
        if weights is not None:
            arrays["weights"] = weights
        return arrays

    def from_arrays(self, arrays: Arrays) -> "BracketState":
        state = BracketState(self.plan, self.first, self.meter, self.name,
                             hold=False)
        counts = np.asarray(arrays["counts"]).astype(np.int64).reshape(4, -1)
        state.at_or_above, state.inside, fill, lost = counts
        state.lost = lost.astype(bool)
        sums = np.array(arrays["sums"], np.float64).reshape(4, -1)
        (state.above_weight, state.below_deviation, state.inside_weight,
         state.inside_centred) = sums
        rows, positive, state.weight_sum = np.asarray(arrays["seen"], np.float64)
        state.rows, state.positive = int(rows), int(positive)
        state.low = np.array(arrays["low"], np.float64).reshape(-1)
        weights = arrays.get("weights")
        place(np.asarray(arrays["values"], np.float64),
              None if weights is None else np.asarray(weights, np.float64),
              fill, self.plan.starts, state.fill, state.values, state.weights)
        state.fill = fill.copy()
        return state

    def result(self) -> BracketResult:
        """The merged pass; a ValueError if the data changed since pass 1."""
        below = self.positive - self.at_or_above
        below_weight = (self.weight_sum - self.above_weight if self.first.weighted
                        else below.astype(np.float64))
        inside_weight = (self.inside_weight if self.first.weighted
                         else self.inside.astype(np.float64))
        if not self.first.weighted:  # sum (y - anchor) inside, per segment
            self.inside_centred = self._segment_sums()
        deviation = np.where(below_weight > 0, self.below_deviation, 0.0)
        result = BracketResult(below, below_weight, deviation, self.inside,
                               inside_weight, self.inside_centred,
                               self.at_or_above - self.inside,
                               self.values, self.weights, self.plan.starts,
                               self.lost)
        check_bracket_pass(self, result)
        return result
