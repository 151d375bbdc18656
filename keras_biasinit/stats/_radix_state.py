"""One radix pass as a mergeable state (see `_radix`).

Per batch the work is a shift of the float32 bit patterns, a comparison with
the window's prefix (not in pass 1) and `np.bincount` over bins numbered
`column * 2^bits + digit`: one call for every column. Bin ids are buffered
over batches and counted once a buffer as large as the histograms is full, so
that small batches do not each pay for touching every bin.
"""

from __future__ import annotations

from typing import List, Optional

import numpy as np

from keras_biasinit.stats._budget import CHUNK_BYTES_PER_ELEMENT
from keras_biasinit.stats._budget import MemoryMeter
from keras_biasinit.stats._budget import chunk_rows
from keras_biasinit.stats._checks import check_weights
from keras_biasinit.stats._summary import Summary
from keras_biasinit.stats._summary import check_width
from keras_biasinit.stats._summary import chunks
from keras_biasinit.stats._keys import from_keys
from keras_biasinit.stats._keys import to_keys
from keras_biasinit.stats._radix import RADIX_BIN_BYTES
from keras_biasinit.stats._radix import RadixPlan
from keras_biasinit.stats._radix import float32_rows
from keras_biasinit.stats._radix import flush_elements
from keras_biasinit.stats._radix import check_radix_pass
from keras_biasinit.stats._radix import radix_bits
from keras_biasinit.stats._radix import widen_bounds
from keras_biasinit.stats._radix import window_b
from keras_biasinit.stats._positions import nonzero_2d
from keras_biasinit.stats.state import Arrays

_FIELDS = ("count", "weight", "total", "bmin", "bcount")


class RadixState:
    """The state of one radix pass following `plan` (see `_radix.RadixPlan`).

    `summary` counts every row (rows, weight; in pass 1 also min and max),
    so later passes can tell that the data changed.
    """

    def __init__(self, plan: RadixPlan, meter: MemoryMeter, name: str, *,
                 first: Optional[Summary] = None, hold: bool = True) -> None:
        self.plan, self.meter, self.name, self.first = plan, meter, name, first
        d, nb = plan.columns, plan.bins
        self.count = np.zeros((d, nb), np.int64)
        self.weight: Optional[np.ndarray] = None  # None: no weighted row yet
        self.total = np.zeros((d, nb)) if plan.sums else None
        self.bmin = np.full(d, np.inf)
        self.bcount = np.zeros(d, np.int64)
        self.exact = np.ones(d, bool)  # every value a float32 (pass 1)
        self.rows, self.weighted, self.weight_sum = 0, False, 0.0
        self.low: Optional[np.ndarray] = None  # pass 1: per column min and max
        self.high: Optional[np.ndarray] = None
        self._ids: List[np.ndarray] = []
        self._ys: List[np.ndarray] = []
        self._ws: List[np.ndarray] = []
        self._buffered, self._buffer_weighted = 0, False
        self._flush_at = flush_elements(meter.budget)
        self.rows_per_chunk = chunk_rows(meter.budget, d)
        self._offsets = (np.arange(d, dtype=np.intp) * nb)[None, :]
        # Bins and buffer; a later pass also its chunks (pass 1's `FirstPass`
        # holds those).
        self.held = d * nb * RADIX_BIN_BYTES + self._flush_at * 24 + (
            0 if first is None else self.rows_per_chunk * d * CHUNK_BYTES_PER_ELEMENT)
        if hold:
            meter.hold(self.held)

    def update(self, values, weights=None) -> "RadixState":
        check_width(self.plan.columns, values)
        for chunk, chunk_w in chunks(values, weights, self.rows_per_chunk):
            self._update(chunk, chunk_w)
        return self

    def _update(self, values, weights) -> None:
        y32, y, exact = float32_rows(values)
        w = check_weights(weights, y32.shape[0])
        if exact is not None:
            self.exact &= exact
        self.rows += y32.shape[0]
        self.weighted |= w is not None
        if w is not None and not (w > 0).all():
            keep = w > 0
            y32, y, w = y32[keep], y[keep], w[keep]
        if y32.shape[0]:
            self.weight_sum += float(y32.shape[0] if w is None else w.sum())
            if self.plan.prefix is None:
                self.low, self.high = widen_bounds(self.low, self.high, y, values)
            self._add(y32, y, w)

    @property
    def summary(self) -> Summary:
        """What this pass read: rows, weight (pass 1: also min, max, and the
        checksums `sum w y`, `sum w |y|` from the bins)."""
        summary = Summary(rows=self.rows, weighted=self.weighted,
                          weight=self.weight_sum)
        if self.low is not None:
            summary.kmin, summary.kmax = to_keys(self.low), to_keys(self.high)
            self._flush()
            summary.checksum = self.total.sum(axis=1)
            summary.scale = np.abs(self.total).sum(axis=1)
        return summary

    def _add(self, y32, y, w) -> None:
        plan, bits = self.plan, y32.view(np.uint32)
        mask = np.uint32(plan.bins - 1)
        if plan.prefix is None:
            if plan.columns == 1:
                ids = (bits.reshape(-1) >> np.uint32(32 - plan.bits)).astype(np.intp)
                self._buffer(ids, y.reshape(-1), w)
                return
            # Column by column (transposed): each column's bins stay in cache.
            ids = (bits.T >> np.uint32(32 - plan.bits)).astype(np.intp, order="C")
            ids += self._offsets.T
            self._buffer(ids.reshape(-1), y.T.reshape(-1),
                         None if w is None else np.tile(w, plan.columns))
            return
        shift, step = np.uint32(plan.shift), np.uint32(plan.shift - plan.bits)
        if plan.columns == 1:  # 1-D: cheaper selections
            bits, y = bits.reshape(-1), y.reshape(-1)
            top = bits >> shift
            if plan.bprefix is not None:
                window_b(self, np.flatnonzero(top == plan.bprefix[0]), 0, y)
            rows = np.flatnonzero(top == plan.prefix[0])
            ids = ((bits[rows] >> step) & mask).astype(np.intp)
            values = y[rows]
        else:
            top = bits >> shift
            if plan.bprefix is not None:
                window_b(self, *nonzero_2d(top == plan.bprefix), y)
            cols, rows = nonzero_2d((top == plan.prefix).T)  # column by column
            ids = ((bits[rows, cols] >> step) & mask).astype(np.intp)
            ids += cols * plan.bins
            values = y[rows, cols]
        self._buffer(ids, values if self.total is not None else None,
                     None if w is None else w[rows])

    def _buffer(self, ids, y, w) -> None:
        """Bin ids (with their values and weights, one per id) to count."""
        weighted = w is not None
        if weighted != self._buffer_weighted and self._buffered:
            self._flush()
        self._buffer_weighted = weighted
        self._ids.append(ids)
        if y is not None:
            self._ys.append(y)
        if weighted:
            self._ws.append(w)
        self._buffered += ids.size
        if self._buffered >= self._flush_at:
            self._flush()

    def _flush(self) -> None:
        if not self._buffered:
            return
        size = self.count.size
        ids = np.concatenate(self._ids) if len(self._ids) > 1 else self._ids[0]
        counts = np.bincount(ids, minlength=size).reshape(self.count.shape)
        self.count += counts
        w = None
        if self._ws:
            w = np.concatenate(self._ws) if len(self._ws) > 1 else self._ws[0]
            if self.weight is None:
                self.weight = (self.count - counts).astype(np.float64)
            self.weight += np.bincount(ids, w, size).reshape(self.count.shape)
        elif self.weight is not None:
            self.weight += counts
        if self.total is not None and self._ys:
            y = np.concatenate(self._ys) if len(self._ys) > 1 else self._ys[0]
            wy = y.astype(np.float64) if w is None else w * y
            self.total += np.bincount(ids, wy, size).reshape(self.count.shape)
        self._ids, self._ys, self._ws, self._buffered = [], [], [], 0

    def weights(self) -> np.ndarray:
        """Per column and bin, the summed weight (the counts if unweighted)."""
        self._flush()
        return self.count.astype(np.float64) if self.weight is None else self.weight

    def merge(self, other: "RadixState") -> "RadixState":
        self._flush()
        other._flush()
        if self.weight is not None or other.weight is not None:
            self.weight = self.weights() + other.weights()
        self.count += other.count
        if self.total is not None:
            self.total += other.total
        np.minimum(self.bmin, other.bmin, out=self.bmin)
        self.bcount += other.bcount
        self.exact &= other.exact
        self.rows += other.rows
        self.weighted |= other.weighted
        self.weight_sum += other.weight_sum
        if self.low is None or other.low is None:
            self.low = self.low if other.low is None else other.low.copy()
            self.high = self.high if other.high is None else other.high.copy()
        else:
            np.minimum(self.low, other.low, out=self.low)
            np.maximum(self.high, other.high, out=self.high)
        return self

    def to_arrays(self) -> Arrays:
        self._flush()
        arrays = self.summary.to_arrays("seen_")
        arrays.update(count=self.count, bmin=self.bmin, bcount=self.bcount,
                      exact=self.exact.astype(np.int8))
        if self.weight is not None:
            arrays["weight"] = self.weight
        if self.total is not None:
            arrays["total"] = self.total
        return arrays

    def from_arrays(self, arrays: Arrays) -> "RadixState":
        state = RadixState(self.plan, self.meter, self.name, first=self.first,
                           hold=False)
        shape = state.count.shape
        seen = Summary.from_arrays(arrays, "seen_")
        state.rows, state.weighted, state.weight_sum = (seen.rows, seen.weighted,
                                                         seen.weight)
        if seen.kmin is not None:
            state.low, state.high = from_keys(seen.kmin), from_keys(seen.kmax)
        state.count = np.asarray(arrays["count"]).astype(np.int64).reshape(shape)
        if "weight" in arrays:
            state.weight = np.array(arrays["weight"], np.float64).reshape(shape)
        if state.total is not None:
            state.total = np.array(arrays["total"], np.float64).reshape(shape)
        state.bmin = np.array(arrays["bmin"], np.float64).reshape(-1)
        state.bcount = np.asarray(arrays["bcount"]).astype(np.int64).reshape(-1)
        state.exact = np.asarray(arrays["exact"]).astype(bool).reshape(-1)
        return state

    def result(self) -> "RadixState":
        """This state, flushed and checked against pass 1 (if a later pass)."""
        self._flush()
        if self.first is not None:
            check_radix_pass(self)
        return self


def new_histogram(columns: int, meter: MemoryMeter, name: str, hold: bool = True
                  ) -> Optional[RadixState]:
    """A pass-1 radix histogram (None: too many columns for the budget)."""
    bits = radix_bits(columns, meter.budget)
    if bits is None:
        return None
    return RadixState(RadixPlan(columns, bits), meter, name, hold=hold)
