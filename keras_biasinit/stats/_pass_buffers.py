"""The buffers a pass fills: collected distinct values, and bin ids.

`Collector` holds (column, key, weight) triples in fixed buffers and merges
duplicates whenever they fill, so a collect pass holds at most the planned
number of distinct values (more means the data changed: `Overflow`).
`Binner` maps in-window values to the flat bin ids of both histograms of
their window (equal width in key, equal width in value).
"""

from __future__ import annotations

import numpy as np

from keras_biasinit.stats._exact_sum import group_sums
from keras_biasinit.stats._keys import from_keys
from keras_biasinit.stats._plan import Collected
from keras_biasinit.stats._plan import Plan


def merge_duplicates(cols, keys, weights, lows=None):
    """Distinct (column, key) pairs with their summed weights; with `lows`
    (the weights' low parts), the new low parts: the rounding error of each
    sum (`group_sums`) plus the summed low parts, so weight + low stays exact
    to about `2^-104` of the weight however many duplicates are merged."""
    order = np.lexsort((keys, cols))
    cols, keys, weights = cols[order], keys[order], weights[order]
    new = np.ones(cols.shape[0], bool)
    new[1:] = (cols[1:] != cols[:-1]) | (keys[1:] != keys[:-1])
    starts = np.flatnonzero(new)
    if lows is None:
        return cols[starts], keys[starts], np.add.reduceat(weights, starts)
    total, error = group_sums(weights, starts)
    return (cols[starts], keys[starts], total,
            error + np.add.reduceat(lows[order], starts))


class Collector:
    """Fixed buffers for (column, key, weight) triples; duplicates are merged
    whenever the buffers fill, so they hold at most `capacity` distinct values
    plus what arrived since the last merge. With `exact`, each weight also has
    a low part (the rounding of merged weights, see `merge_duplicates`)."""

    def __init__(self, capacity: int, exact: bool = False) -> None:
        self.capacity = capacity
        size = 2 * capacity
        self.cols = np.empty(size, np.intp)
        self.keys = np.empty(size, np.uint64)
        self.weights = np.empty(size)
        self.lows = np.empty(size) if exact else None
        self.size = 0

    def add(self, cols, keys, weights, lows=None) -> None:
        start = 0
        while start < cols.size:
            room = self.cols.size - self.size
            if room == 0:
                self._merge()
                continue
            take = min(room, cols.size - start)
            end = self.size + take
            self.cols[self.size : end] = cols[start : start + take]
            self.keys[self.size : end] = keys[start : start + take]
            self.weights[self.size : end] = weights[start : start + take]
            if self.lows is not None:
                self.lows[self.size : end] = (0.0 if lows is None
                                              else lows[start : start + take])
            self.size, start = end, start + take

    def _merge(self) -> None:
        n = self.size
        merged = merge_duplicates(self.cols[:n], self.keys[:n], self.weights[:n],
                                  None if self.lows is None else self.lows[:n])
        self.size = merged[0].size
        if self.size > self.capacity:
            raise Overflow()
        self.cols[: self.size], self.keys[: self.size] = merged[0], merged[1]
        self.weights[: self.size] = merged[2]
        if self.lows is not None:
            self.lows[: self.size] = merged[3]

    def result(self):
        """(cols, keys, weights), and the weights' low parts if `exact`."""
        self._merge()
        n = self.size
        lows = None if self.lows is None else self.lows[:n].copy()
        return Collected(self.cols[:n].copy(), self.keys[:n].copy(),
                         self.weights[:n].copy(), lows)


class Overflow(Exception):
    pass


class Binner:
    """Maps in-window values to flat bin ids of both histograms."""

    def __init__(self, plan: Plan) -> None:
        nb = plan.bins
        self.nb = nb
        self.windows = plan.windows
        self.lo = plan.span_lo
        span = np.where(plan.span_lo <= plan.span_hi, plan.span_hi - plan.span_lo,
                        np.uint64(0))
        self.width = span // np.uint64(nb) + np.uint64(1)
        self.last = np.uint64(nb - 1)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            self.vlo = np.nan_to_num(from_keys(plan.span_lo))
            extent = np.nan_to_num(from_keys(plan.span_hi)) - self.vlo
            scale = nb / extent
        # Empty, one-value or overflowing spans: everything in value bin 0.
        self.scale = np.where(np.isfinite(scale) & (extent > 0), scale, 0.0)

    def __call__(self, keys, values, cols, win):
        key_bin = np.minimum((keys - self.lo[cols, win]) // self.width[cols, win],
                             self.last).astype(np.intp)
        value_bin = np.floor((values - self.vlo[cols, win]) * self.scale[cols, win])
        value_bin = np.clip(value_bin, 0, self.nb - 1).astype(np.intp)
        base = (cols * self.windows + win) * 2 * self.nb
        return base + key_bin, base + self.nb + value_bin
