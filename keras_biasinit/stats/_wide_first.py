"""Pass 1 of an exact quantile of wide targets: a summary and a row sample.

A radix histogram of 2^16 bins per column does not fit `memory_budget` for
many columns (1000 columns in 256 MiB get 9-bit digits: 4 passes). For those,
pass 1 keeps per column the rows, weight, min, max and `sum w y`, plus a
random sample of whole rows (`_row_sample`, a quarter of the budget); the
sample's quantiles give each column a bracket that holds the wanted rank with
near certainty, and pass 2 (`_bracket`) counts the rows below and above it and
collects the values inside: exact in 2 passes (a column whose rank escapes
its bracket takes one more). The per-value work is a min, a max and a sum
along the batch axis, in the batch's own float type.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from keras_biasinit.stats._budget import MemoryMeter
from keras_biasinit.stats._checks import check_finite
from keras_biasinit.stats._checks import check_weights
from keras_biasinit.stats._keys import from_keys
from keras_biasinit.stats._keys import to_keys
from keras_biasinit.stats._radix import radix_bits
from keras_biasinit.stats._radix_state import new_histogram
from keras_biasinit.stats._row_sample import RowSample
from keras_biasinit.stats._summary import Summary
from keras_biasinit.stats._summary import check_width
from keras_biasinit.stats.state import Arrays

#: Rows sampled at most, and the fewest for which the sample is used.
MAX_SAMPLE, MIN_SAMPLE = 16384, 1024
#: Fewer radix bits than this take 4 passes or more: the sample takes 2.
MIN_RADIX_BITS = 11


def sample_rows(columns: int, budget: int) -> int:
    """Rows the sample keeps: a quarter of the budget, float64 rows and keys."""
    return int(min(MAX_SAMPLE, budget // 4 // (8 * (columns + 1))))


def new_first_state(columns: int, meter: MemoryMeter, name: str,
                    hold: bool = True):
    """The pass-1 state of a quantile: a radix histogram where its digits
    fit the budget with at least 11 bits (float32 in 2 or 3 passes), else a
    `WideFirst` where the sample is large enough (budgets of 1 MiB or more),
    else the radix histogram of fewer bits (or None: the general passes)."""
    bits = radix_bits(columns, meter.budget)
    if (bits is None or bits < MIN_RADIX_BITS) and meter.budget >= 2**20 and (
            sample_rows(columns, meter.budget) >= MIN_SAMPLE):
        return WideFirst(columns, meter, name, hold=hold)
    return new_histogram(columns, meter, name, hold=hold)


class WideFirst:
    """The summary and row sample of pass 1 (see the module docstring)."""

    def __init__(self, columns: int, meter: MemoryMeter, name: str, *,
                 hold: bool = True) -> None:
        self.columns, self.meter, self.name = columns, meter, name
        self.sample = RowSample(sample_rows(columns, meter.budget), columns)
        self.rows, self.weighted, self.weight_sum = 0, False, 0.0
        self.positive = 0  # rows of positive weight: those the sample draws from
        self.low: Optional[np.ndarray] = None
        self.high: Optional[np.ndarray] = None
        # sum w (y - anchor), the anchor a row of the data: sums of small
        # deviations, so that the sums of the passes after cancel exactly.
        self.anchor: Optional[np.ndarray] = None
        self.centred = np.zeros(columns)
        self.held = self.sample.nbytes
        # Chunks of rows whose float64 copy fits the eighth of the budget that
        # `FirstPass` holds for chunks.
        self.rows_per_chunk = max(1, meter.budget // 8 // 16 // columns)
        self._centred = np.empty(0)
        if hold:
            meter.hold(self.held)

    def update(self, values, weights=None) -> "WideFirst":
        check_width(self.columns, values)
        y = np.asarray(values)
        y = y.reshape(y.shape[0] if y.ndim else 1, -1)
        if y.dtype not in (np.float32, np.float64):
            y = y.astype(np.float64)
        w = check_weights(weights, y.shape[0])
        self.rows += y.shape[0]
        self.weighted |= w is not None
        if w is not None and not (w > 0).all():
            y, w = y[w > 0], w[w > 0]
        if y.shape[0] == 0:
            return self
        self.positive += y.shape[0]
        low, high = y.min(axis=0), y.max(axis=0)
        if not (np.isfinite(low).all() and np.isfinite(high).all()):
            check_finite(y)
        if self.anchor is None:
            self.anchor = y[0].astype(np.float64)
        self.weight_sum += y.shape[0] if w is None else float(w.sum())
        if self._centred.size < y.size:
            self._centred = np.empty(y.size)
        centred = self._centred[: y.size].reshape(y.shape)
        np.subtract(y, self.anchor, out=centred)
        self.centred += centred.sum(axis=0) if w is None else w @ centred
        self._bounds(low.astype(np.float64), high.astype(np.float64))
        self.sample.offer(y, w)
        return self

    def _bounds(self, low, high) -> None:
        if self.low is None:
            self.low, self.high = low, high
        else:
            np.minimum(self.low, low, out=self.low)
            np.maximum(self.high, high, out=self.high)

    @property
    def summary(self) -> Summary:
        """Rows, weight, min, max and `sum w y`; `scale`, the bound of
        `sum w |y|` the checks compare with, is the weight times max |y|."""
        summary = Summary(rows=self.rows, weighted=self.weighted,
                          weight=float(self.weight_sum))
        if self.low is not None:
            summary.kmin, summary.kmax = to_keys(self.low), to_keys(self.high)
            summary.checksum = self.centred + self.weight_sum * self.anchor
            summary.scale = self.weight_sum * np.maximum(np.abs(self.low),
                                                         np.abs(self.high))
        return summary

    def merge(self, other: "WideFirst") -> "WideFirst":
        self.rows += other.rows
        self.positive += other.positive
        self.weighted |= other.weighted
        self.weight_sum += other.weight_sum
        if other.anchor is not None:
            if self.anchor is None:
                self.anchor = other.anchor.copy()
            self.centred += other.centred + other.weight_sum * (
                other.anchor - self.anchor)
        if other.low is not None:
            self._bounds(other.low.copy(), other.high.copy())
        self.sample.merge(other.sample)
        return self

    def to_arrays(self) -> Arrays:
        arrays = self.summary.to_arrays("seen_")
        arrays["positive"] = np.asarray([self.positive], np.int64)
        if self.anchor is not None:
            arrays.update(anchor=self.anchor, centred=self.centred)
        arrays.update(("sample_" + k, v) for k, v in self.sample.to_arrays().items())
        return arrays

    def from_arrays(self, arrays: Arrays) -> "WideFirst":
        state = WideFirst(self.columns, self.meter, self.name, hold=False)
        seen = Summary.from_arrays(arrays, "seen_")
        state.rows, state.weighted = seen.rows, seen.weighted
        state.weight_sum = seen.weight
        state.positive = int(np.asarray(arrays["positive"]).reshape(-1)[0])
        if "anchor" in arrays:
            state.anchor = np.array(arrays["anchor"], np.float64).reshape(-1)
            state.centred = np.array(arrays["centred"], np.float64).reshape(-1)
        if seen.kmin is not None:
            state.low, state.high = from_keys(seen.kmin), from_keys(seen.kmax)
        sample = {k[7:]: v for k, v in arrays.items() if k[:7] == "sample_"}
        state.sample = RowSample.from_arrays(sample, self.columns)
        return state

    def result(self) -> "WideFirst":
        return self

    def take_sample(self) -> np.ndarray:
        """The sampled rows, `(m, columns)`; this state (and its meter) then
        no longer holds them."""
        rows, self.sample = self.sample.rows, RowSample(1, self.columns)
        self.meter.release(self.held)
        self.held = 0
        return rows
