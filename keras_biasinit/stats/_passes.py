"""Streaming passes in bounded memory: the engine behind the median and Huber.

Order statistics (the median, the Huber location) need the values near the
answer individually, not just sums. When the data fit in `memory_budget` they
are solved in memory after one pass. Otherwise each column is narrowed down by
streaming passes, of which a typical dataset needs three:

1. `first_pass`: rows, total weight, min and max per column (and buffers the
   batches while the in-memory solve would fit the budget).
2. A histogram pass (`run_pass` with mode `BIN`): each column's values fall
   into two histograms over the same range, one of equal width in an
   order-preserving integer key (below), one of equal width in value; per bin
   they keep the row count, the weight, the weighted sum of `y - anchor` and
   the smallest and largest value seen (`np.add.at` / `np.minimum.at` over
   column-and-bin ids). The statistic reads from them a narrow bracket around
   its answer and the "windows" of values it must know one by one.
3. A collect pass (mode `COLLECT`): the values inside the windows are gathered
   (duplicates merged with their weights), everything outside enters only
   through exact per-region sums (weight, and weighted first and second
   moments about an anchor), and the statistic is solved exactly.

If the windows would hold more distinct values than the budget allows (heavy
ties spread over a bin, adversarial data), they are binned again instead, and
so on: a refinement shrinks a window to a bin or two of the previous pass. For
the Huber location, a bracket that a histogram cannot narrow (psi flat or
steep where the bins are coarse) is narrowed by evaluating psi exactly at
`PROBES` points (mode `PROBE`). It ends after a few passes, and it never
returns an approximate number.

Keys: a float64 `y` maps to an unsigned 64-bit key with the same order (its
IEEE 754 bits with the sign folded), so equal-width key bins are even within a
binade and logarithmic across binades: 1e9 + tiny noise, values spanning many
orders of magnitude and outliers all get bins where the data are. The
equal-value histogram covers what keys do badly: data crossing 0 or spread
over many tiny binades.

Memory: `memory_budget` bytes cover what this module holds: the buffered
batches of the in-memory path and its solve's temporaries, the histograms
(a quarter of the budget) and reading them, the collected values (a quarter)
and the temporaries of one chunk of rows (an eighth; batches are processed in
chunks of rows so that a wide batch does not exceed it). It does not cover the
batch the input pipeline hands over. `tests/stats/test_memory_budget.py`
checks the whole computation's traced peak against the budget.
"""

from __future__ import annotations

import collections.abc
import dataclasses
from typing import Any, Callable, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from keras_biasinit.stats._checks import as_columns, check_weights

DEFAULT_MEMORY_BUDGET = 256 * 2**20

#: Most bins per window, histogram and column (more buys little: a bin then
#: holds about rows / 32768 values).
MAX_BINS = 2**15
#: Points at which a `PROBE` pass evaluates the Huber psi exactly.
PROBES = 32

# Bytes held per bin, window and column (count, weight, sum, min key, max key)
# for the two histograms; per collected value (column, key, weight) including
# the temporaries of merging duplicates; per element of a chunk of rows.
_BIN_BYTES = 2 * 40
_ENTRY_BYTES = 160
_CHUNK_BYTES_PER_ELEMENT = 256

_SIGN = np.uint64(1 << 63)
_MAX_KEY = np.uint64(2**64 - 1)

IDLE, BIN, COLLECT, PROBE = 0, 1, 2, 3

Batch = Tuple[np.ndarray, Optional[np.ndarray]]


# --------------------------------------------------------------------------
# Order-preserving float64 <-> uint64 keys
# --------------------------------------------------------------------------


def to_keys(y: np.ndarray) -> np.ndarray:
    """Maps float64 values to uint64 keys with the same order (-0.0 == 0.0)."""
    keys = np.add(y, 0.0).view(np.uint64)  # a new array; -0.0 becomes +0.0
    flip = (keys.view(np.int64) >> 63).view(np.uint64)  # all ones if negative
    flip |= _SIGN
    keys ^= flip
    return keys


def from_keys(keys: np.ndarray) -> np.ndarray:
    """The inverse of `to_keys`."""
    keys = np.asarray(keys, dtype=np.uint64)
    bits = np.where(keys & _SIGN, keys ^ _SIGN, ~keys)
    return bits.view(np.float64)


# --------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------


def is_reiterable(batches: Iterable[Batch]) -> bool:
    """`batches.reiterable` for `keras_biasinit.data.Batches`, else iter(x) is not x."""
    flag = getattr(batches, "reiterable", None)
    if flag is not None:
        return bool(flag)
    return not isinstance(batches, collections.abc.Iterator)


def check_budget(memory_budget: Any) -> int:
    if (
        isinstance(memory_budget, bool)
        or not isinstance(memory_budget, (int, np.integer))
        or memory_budget <= 0
    ):
        raise ValueError(
            "`memory_budget` must be a positive integer number of bytes, e.g. "
            f"`256 * 2**20`. Received: memory_budget={memory_budget!r}"
        )
    return int(memory_budget)


def minimum_budget(columns: int) -> int:
    """The smallest `memory_budget` the multi-pass path can honour."""
    return max(32 * 2**10, 4096 * columns)


def _chunks(values: np.ndarray, weights, rows_per_chunk: int) -> Iterator[Batch]:
    n = values.shape[0] if np.ndim(values) else 1
    if n <= rows_per_chunk:
        yield values, weights
        return
    for start in range(0, n, rows_per_chunk):
        stop = start + rows_per_chunk
        yield values[start:stop], None if weights is None else weights[start:stop]


def _width(values: Any) -> int:
    shape = np.shape(values)
    return int(np.prod(shape[1:])) if len(shape) > 1 else 1


class MemoryMeter:
    """Bytes held by this module's own buffers: current and peak (for tests)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.current = 0
        self.peak = 0

    def hold(self, nbytes: int) -> None:
        self.current += int(nbytes)
        self.peak = max(self.peak, self.current)

    def release(self, nbytes: int) -> None:
        self.current -= int(nbytes)


# --------------------------------------------------------------------------
# Pass 1
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Summary:
    """Per column, over rows of positive weight: what pass 1 learned."""

    rows: int = 0
    weighted: bool = False
    weight: float = 0.0
    kmin: Optional[np.ndarray] = None  # uint64 keys
    kmax: Optional[np.ndarray] = None
    checksum: Optional[np.ndarray] = None  # sum w * y
    scale: Optional[np.ndarray] = None  # sum w * |y|

    def update(self, y: np.ndarray, w: Optional[np.ndarray]) -> None:
        """Adds rows `y` (float64, (n, d), finite) with weights `w` or None."""
        self.rows += y.shape[0]
        if w is not None:
            positive = w > 0
            if not positive.all():
                y, w = y[positive], w[positive]
        if y.shape[0] == 0:
            return
        keys_lo, keys_hi = to_keys(y.min(axis=0)), to_keys(y.max(axis=0))
        if w is None:
            weight, checksum, scale = y.shape[0], y.sum(axis=0), np.abs(y).sum(axis=0)
        else:
            weight, checksum, scale = w.sum(), w @ y, w @ np.abs(y)
        if self.kmin is None:
            self.kmin, self.kmax = keys_lo, keys_hi
            self.checksum, self.scale = checksum, scale
        else:
            self.kmin = np.minimum(self.kmin, keys_lo)
            self.kmax = np.maximum(self.kmax, keys_hi)
            self.checksum = self.checksum + checksum
            self.scale = self.scale + scale
        self.weight += float(weight)

    def check_same_data(self, other: "Summary", name: str) -> None:
        """Raises if a later pass read different data than pass 1."""
        same = (
            other.rows == self.rows
            and abs(other.weight - self.weight) <= 1e-9 * self.weight
            and np.array_equal(other.kmin, self.kmin)
            and np.array_equal(other.kmax, self.kmax)
            and np.all(
                np.abs(other.checksum - self.checksum) <= 1e-9 * self.scale + 1e-300
            )
        )
        if not same:
            raise ValueError(
                f"The data changed between passes: the exact {name} of data larger "
                "than `memory_budget` needs a few passes over it, and a later pass "
                "read different values (or a different number of rows) than the "
                "first. Make the target deterministic (no random augmentation of "
                "it in the pipeline; a shuffled order is fine), or raise "
                "`memory_budget` so the data fits in one pass."
            )


@dataclasses.dataclass
class InMemory:
    """Pass 1 kept every batch: `ys` (float64 (n_i, d)) and `ws` (or None)."""

    ys: List[np.ndarray]
    ws: List[Optional[np.ndarray]]
    rows: int
    weighted: bool
    held_bytes: int

    def arrays(self) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """All rows as one `(y, w)`; w is None when no batch had weights."""
        y = self.ys[0] if len(self.ys) == 1 else np.concatenate(self.ys)
        if not self.weighted:
            return y, None
        ws = [np.ones(a.shape[0]) if b is None else b for a, b in zip(self.ys, self.ws)]
        return y, ws[0] if len(ws) == 1 else np.concatenate(ws)


def _empty_error(name: str) -> ValueError:
    return ValueError(f"The data is empty: there is no row to take the {name} of.")


def chunk_rows(budget: int, columns: int) -> int:
    """Rows per chunk so that a chunk's temporaries fit an eighth of the budget."""
    return max(1, budget // 8 // _CHUNK_BYTES_PER_ELEMENT // columns)


def _rows(values: Any) -> int:
    shape = np.shape(values)
    return int(shape[0]) if shape else 1


def first_pass(
    batches: Iterable[Batch],
    *,
    name: str,
    meter: MemoryMeter,
    in_memory_bytes: Callable[[int, int, bool], int],
):
    """Reads all batches once; returns `InMemory` if the solve fits, else `Summary`.

    `in_memory_bytes(rows, columns, weighted)` is the memory the in-memory solve
    needs (the buffered data included). Batches are buffered while that fits
    the budget; the first batch that would not fit switches to streaming (in
    chunks of rows). A one-shot iterator whose data exceed the budget is a
    ValueError: it cannot be read again.
    """
    reiterable = is_reiterable(batches)
    ys: Optional[List[np.ndarray]] = []
    ws: List[Optional[np.ndarray]] = []
    summary = Summary()
    columns = None
    held = 0
    for values, weights in batches:
        width = _width(values)
        if columns is None:
            columns = width
        elif width != columns:
            raise ValueError(
                f"Batches have different widths: {columns} columns, then "
                f"{width}. Every batch must have the same target shape."
            )
        summary.weighted |= weights is not None
        if ys is not None and in_memory_bytes(
            summary.rows + _rows(values), columns, summary.weighted
        ) > meter.budget:
            if not reiterable:
                raise ValueError(
                    f"The data do not fit in `memory_budget={meter.budget}` bytes "
                    f"for an exact {name}, which then needs a few passes, but they "
                    "come from a one-shot iterator (e.g. a generator) that cannot "
                    "be read again. Pass a re-iterable dataset (a tf.data.Dataset, "
                    "an array, a list of batches), or raise `memory_budget`."
                )
            if meter.budget < minimum_budget(columns):
                raise ValueError(
                    f"`memory_budget` is too small for {columns} target column(s): "
                    f"the multi-pass {name} needs at least "
                    f"{minimum_budget(columns)} bytes. "
                    f"Received: memory_budget={meter.budget}"
                )
            rows = summary.rows
            summary = Summary(weighted=summary.weighted)
            step = chunk_rows(meter.budget, columns)
            meter.hold(step * columns * _CHUNK_BYTES_PER_ELEMENT)
            for yb, wb in zip(ys, ws):
                for y, w in _chunks(yb, wb, step):
                    summary.update(y, w)
            assert summary.rows == rows
            ys, ws = None, []
            meter.release(held)
            held = 0
        if ys is None:
            for chunk, chunk_w in _chunks(values, weights, step):
                y = as_columns(chunk)
                summary.update(y, check_weights(chunk_w, y.shape[0]))
            continue
        y = as_columns(values)
        w = check_weights(weights, y.shape[0])
        ys.append(y)
        ws.append(w)
        summary.rows += y.shape[0]
        nbytes = y.nbytes + (0 if w is None else w.nbytes)
        held += nbytes
        meter.hold(nbytes)
    if summary.rows == 0:
        raise _empty_error(name)
    if ys is not None:
        return InMemory(ys, ws, summary.rows, summary.weighted, held)
    if summary.weight <= 0:
        raise ValueError("All sample weights are 0: there is nothing to fit.")
    return summary


# --------------------------------------------------------------------------
# Later passes
# --------------------------------------------------------------------------


class Plan:
    """What one pass does per column: up to two key windows, and a mode.

    Values inside a window are binned (`BIN`), collected (`COLLECT`), or, for
    `PROBE`, summed as `sum w clip(p - y, -delta, delta)` at given points `p`
    (the Huber psi, exactly). Values outside the windows enter per region
    (below window 0, between the windows, above the last window) through their
    weight and weighted first and second moments about the region's anchor.
    An empty window has `lo > hi`; window 1 empty means one window.

    Binning makes two histograms per window over its span, `bins` bins each:
    one of equal key width (log-like: robust to outliers and wide ranges) and
    one of equal value width (even in value: right for values crossing 0 or
    spread over many tiny binades). Both are order-consistent partitions, and
    the statistic uses whichever brackets its answer tighter.
    """

    def __init__(self, columns: int, bins: int, windows: int = 2) -> None:
        self.columns = columns
        self.bins = bins
        self.windows = windows  # the most windows a column may have: 1 or 2
        self.lo = np.ones((columns, 2), np.uint64)
        self.hi = np.zeros((columns, 2), np.uint64)
        self.span_lo = np.ones((columns, 2), np.uint64)
        self.span_hi = np.zeros((columns, 2), np.uint64)
        self.mode = np.full(columns, IDLE, np.int8)
        self.probes: Optional[np.ndarray] = None  # (columns, PROBES) values
        self.delta = 0.0

    def set(
        self,
        column: int,
        mode: int,
        windows: List[Tuple[int, int]],
        spans: Optional[List[Tuple[int, int]]] = None,
    ) -> None:
        """`windows`: one or two sorted, disjoint, inclusive (lo, hi) key ranges.

        `spans` (default: the windows) are the key ranges the bins of each
        window cover: the part of the window where data were seen.
        """
        spans = windows if spans is None else spans
        (lo0, hi0), rest = windows[0], windows[1:]
        self.lo[column, 0], self.hi[column, 0] = lo0, hi0
        self.span_lo[column, 0], self.span_hi[column, 0] = spans[0]
        if rest:
            self.lo[column, 1], self.hi[column, 1] = rest[0]
            self.span_lo[column, 1], self.span_hi[column, 1] = spans[1]
        else:  # an empty window just above window 0: no "between" region
            self.lo[column, 1], self.hi[column, 1] = hi0 + 1, hi0
        self.mode[column] = mode

    def set_probes(self, column: int, points: np.ndarray, delta: float) -> None:
        """Mode `PROBE`: psi at `points` (PROBES values), exactly, in one pass."""
        if self.probes is None:
            self.probes = np.zeros((self.columns, PROBES))
        self.probes[column] = points
        self.delta = delta
        self.lo[column], self.hi[column] = 1, 0  # no windows: all rows "above"
        self.mode[column] = PROBE

    def anchors(self) -> np.ndarray:
        """(3, columns) values: below -> window 0's low end, between -> the
        middle of the gap, above -> the last window's high end."""
        active = (self.mode == BIN) | (self.mode == COLLECT)
        two = self.lo[:, 1] <= self.hi[:, 1]
        with np.errstate(invalid="ignore"):
            low = from_keys(self.lo[:, 0])
            high0 = from_keys(self.hi[:, 0])
            high = np.where(two, from_keys(self.hi[:, 1]), high0)
            gap = np.where(two, (high0 + from_keys(self.lo[:, 1])) / 2, 0.0)
        return np.where(active, np.stack([low, gap, high]), 0.0)


@dataclasses.dataclass
class PassResult:
    """What one pass measured (arrays per column; see `Plan`)."""

    summary: Summary
    region_weight: np.ndarray  # (3, d): below, between, above
    region_sum: np.ndarray  # (3, d): sum w (y - anchor)
    region_sum2: np.ndarray  # (3, d): sum w (y - anchor)^2
    anchors: np.ndarray  # (3, d)
    bins: Optional[List[np.ndarray]]  # count, weight, sum, min key, max key
    window_anchor: np.ndarray  # (d, 2) values: each window's low end
    collected: Tuple[np.ndarray, np.ndarray, np.ndarray]  # column, key, weight
    psi: Optional[np.ndarray]  # (4, d, PROBES) for PROBE columns (see run_pass)
    psi_points: Optional[np.ndarray]  # (d, PROBES): where psi was evaluated

    def column_values(self, column: int) -> Tuple[np.ndarray, np.ndarray]:
        """The collected (sorted, distinct) values of one column and weights."""
        cols, keys, weights = self.collected
        start, stop = np.searchsorted(cols, [column, column + 1])
        return from_keys(keys[start:stop]), weights[start:stop]

    def column_bins(self, column: int, kind: int):
        """Non-empty bins of one column and histogram `kind` (0: equal key
        width, 1: equal value width), both windows, in value order.

        Returns (count, weight, weighted sum of `y - window anchor`, min value,
        max value, window anchor, window id) arrays.
        """
        count = self.bins[0][column, :, kind].reshape(-1)
        keep = np.flatnonzero(count)
        window = keep // self.bins[0].shape[3]
        pick = [a[column, :, kind].reshape(-1)[keep] for a in self.bins[1:]]
        return (count[keep], pick[0], pick[1], from_keys(pick[2]),
                from_keys(pick[3]), self.window_anchor[column][window], window)


def _merge_duplicates(cols, keys, weights):
    order = np.lexsort((keys, cols))
    cols, keys, weights = cols[order], keys[order], weights[order]
    new = np.ones(cols.shape[0], bool)
    new[1:] = (cols[1:] != cols[:-1]) | (keys[1:] != keys[:-1])
    starts = np.flatnonzero(new)
    return cols[starts], keys[starts], np.add.reduceat(weights, starts)


class _Collector:
    """Fixed buffers for (column, key, weight) triples; duplicates are merged
    whenever the buffers fill, so they hold at most `capacity` distinct values
    plus what arrived since the last merge."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        size = 2 * capacity
        self.cols = np.empty(size, np.intp)
        self.keys = np.empty(size, np.uint64)
        self.weights = np.empty(size)
        self.size = 0

    def add(self, cols, keys, weights) -> None:
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
            self.size, start = end, start + take

    def _merge(self) -> None:
        merged = _merge_duplicates(self.cols[: self.size], self.keys[: self.size],
                                   self.weights[: self.size])
        self.size = merged[0].size
        if self.size > self.capacity:
            raise _Overflow()
        self.cols[: self.size], self.keys[: self.size] = merged[0], merged[1]
        self.weights[: self.size] = merged[2]

    def result(self):
        self._merge()
        n = self.size
        return self.cols[:n].copy(), self.keys[:n].copy(), self.weights[:n].copy()


class _Overflow(Exception):
    pass


class _Binner:
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


def run_pass(
    batches: Iterable[Batch], plan: Plan, *, meter: MemoryMeter, first: Summary,
    name: str,
) -> PassResult:
    """Streams all batches once, doing what `plan` says for each column."""
    d, nbins = plan.columns, plan.bins
    budget = meter.budget
    rows_per_chunk = chunk_rows(budget, d)
    meter.hold(rows_per_chunk * d * _CHUNK_BYTES_PER_ELEMENT)
    anchors = plan.anchors()
    lo0, hi0 = plan.lo[:, 0], plan.hi[:, 0]
    lo1, hi1 = plan.lo[:, 1], plan.hi[:, 1]
    binning = plan.mode == BIN
    collecting = plan.mode == COLLECT
    probe_cols = np.flatnonzero(plan.mode == PROBE)
    # Rows can fall outside the windows unless every column is binned over
    # one window that spans its data: then the region sums are skipped.
    regions = not (
        binning.all()
        and np.all(lo1 > hi1)
        and np.all(lo0 <= first.kmin)
        and np.all(hi0 >= first.kmax)
    )
    with np.errstate(invalid="ignore"):
        window_anchor = np.where(
            (plan.lo <= plan.hi) & (binning | collecting)[:, None],
            from_keys(plan.lo), 0.0,
        )

    region_weight = np.zeros((3, d))
    region_sum = np.zeros((3, d))
    region_sum2 = np.zeros((3, d))
    bins = None
    if binning.any():
        binner = _Binner(plan)
        shape = (d, plan.windows, 2, nbins)  # column, window, kind, bin
        bins = [np.zeros(shape, np.int64), np.zeros(shape), np.zeros(shape),
                np.full(shape, _MAX_KEY), np.zeros(shape, np.uint64)]
        meter.hold(d * plan.windows * nbins * _BIN_BYTES)
    flat = None if bins is None else [a.reshape(-1) for a in bins]
    collector = None
    if collecting.any():
        collector = _Collector(collect_capacity(budget))
        meter.hold(collect_capacity(budget) * _ENTRY_BYTES)
    psi = None
    if probe_cols.size:
        # psi, the weight within delta, the largest value <= p - delta and the
        # smallest >= p + delta, at each probe point p.
        psi = np.zeros((4, d, PROBES))
        psi[2], psi[3] = -np.inf, np.inf
        probes = plan.probes[probe_cols]
    seen = Summary(weighted=first.weighted)

    for values, weights in batches:
        if _width(values) != d:
            raise ValueError(
                f"Batches have different widths: {d} columns, then "
                f"{_width(values)}. Every batch must have the same target shape."
            )
        for chunk, chunk_w in _chunks(values, weights, rows_per_chunk):
            y = as_columns(chunk)
            w = check_weights(chunk_w, y.shape[0])
            seen.update(y, w)
            if w is not None:
                positive = w > 0
                if not positive.all():
                    y, w = y[positive], w[positive]
            if y.shape[0] == 0:
                continue
            keys = to_keys(y)
            if not regions:  # every window spans all the data (pass 2)
                inside = True
            else:
                below = keys < lo0
                above = keys > hi1
                between = (keys > hi0) & (keys < lo1)
                for r, mask in enumerate((below, between, above)):
                    dev = (y - anchors[r]) * mask
                    if w is None:
                        region_weight[r] += mask.sum(axis=0)
                        region_sum[r] += dev.sum(axis=0)
                        if r == 1:
                            region_sum2[r] += np.einsum("ij,ij->j", dev, dev)
                    else:
                        region_weight[r] += w @ mask
                        region_sum[r] += w @ dev
                        if r == 1:
                            region_sum2[r] += w @ (dev * dev)
                inside = ~(below | above | between)
            if flat is not None:
                rows, cols = np.nonzero(np.broadcast_to(inside & binning, y.shape))
                if rows.size:
                    k, v = keys[rows, cols], y[rows, cols]
                    # (min(): only data that changed since pass 1 fall past
                    # the last window; the check at the end reports them.)
                    win = np.minimum(k >= lo1[cols], plan.windows - 1).astype(np.intp)
                    ww = 1.0 if w is None else w[rows]
                    dev = v - window_anchor[cols, win]
                    for idx in binner(k, v, cols, win):
                        np.add.at(flat[0], idx, 1)
                        np.add.at(flat[1], idx, ww)
                        np.add.at(flat[2], idx, ww * dev)
                        np.minimum.at(flat[3], idx, k)
                        np.maximum.at(flat[4], idx, k)
            if collector is not None:
                rows, cols = np.nonzero(np.broadcast_to(inside & collecting, y.shape))
                if rows.size:
                    try:
                        collector.add(cols, keys[rows, cols],
                                      np.ones(rows.size) if w is None else w[rows])
                    except _Overflow:
                        first.check_same_data(seen, name)  # raises if data changed
                        raise RuntimeError(
                            "Internal error: more distinct values in the windows "
                            "than planned. Please report it."
                        ) from None
            if psi is not None:
                yy = y[:, probe_cols]
                for k in range(PROBES):
                    diff = probes[:, k] - yy
                    clipped = np.clip(diff, -plan.delta, plan.delta)
                    near = np.abs(diff) < plan.delta
                    psi[0, probe_cols, k] += (
                        clipped.sum(axis=0) if w is None else w @ clipped
                    )
                    psi[1, probe_cols, k] += near.sum(axis=0) if w is None else w @ near
                    lower = np.where(diff >= plan.delta, yy, -np.inf).max(axis=0)
                    upper = np.where(diff <= -plan.delta, yy, np.inf).min(axis=0)
                    psi[2, probe_cols, k] = np.maximum(psi[2, probe_cols, k], lower)
                    psi[3, probe_cols, k] = np.minimum(psi[3, probe_cols, k], upper)
    first.check_same_data(seen, name)
    merged = (np.zeros(0, np.intp), np.zeros(0, np.uint64), np.zeros(0))
    if collector is not None:
        try:
            merged = collector.result()
        except _Overflow:
            raise RuntimeError(
                "Internal error: more distinct values in the windows than "
                "planned. Please report it."
            ) from None
    return PassResult(
        summary=seen,
        region_weight=region_weight,
        region_sum=region_sum,
        region_sum2=region_sum2,
        anchors=anchors,
        bins=bins,
        window_anchor=window_anchor,
        collected=merged,
        psi=psi,
        psi_points=plan.probes,
    )


def bins_per_window(budget: int, columns: int, windows: int = 2) -> int:
    """Bins per window, histogram kind and column that fit a quarter of the
    budget (reading them afterwards, one column at a time, takes about as much
    again)."""
    per_bin = _BIN_BYTES * windows * columns
    return int(min(MAX_BINS, max(4, budget // 4 // per_bin)))


def analysis_bytes(budget: int, plan: Plan) -> int:
    """Memory for reading one column's histograms after a pass (its bins,
    prefix sums and candidate points, these in blocks of `analysis_block`)."""
    return plan.windows * plan.bins * 100 + analysis_block(budget) * 160


def analysis_block(budget: int) -> int:
    """Candidate points evaluated at once when reading a histogram."""
    return max(16, budget // 16 // 160)


def collect_capacity(budget: int) -> int:
    """Distinct values a collect pass may hold, over all columns: a quarter of
    the budget (buffers for twice as many, and the merging temporaries)."""
    return max(64, budget // 4 // _ENTRY_BYTES)
