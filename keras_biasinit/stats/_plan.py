"""What one pass of an exact order statistic does, and what it measured.

A `Plan` says, per column, which key windows a pass bins (mode `BIN`: two
histograms per window, one of equal key width, one of equal value width),
collects exactly (mode `COLLECT`: the distinct values with their weights), or
where it evaluates the Huber psi exactly (mode `PROBE`); rows outside the
windows enter through exact per-region sums. A `PassResult` is the merged
measurement a statistic plans its next pass from.
"""

from __future__ import annotations

import dataclasses
from typing import Any, List, NamedTuple, Optional, Tuple

import numpy as np

from keras_biasinit.stats._summary import Summary
from keras_biasinit.stats._keys import from_keys

IDLE, BIN, COLLECT, PROBE = 0, 1, 2, 3

#: Points at which a `PROBE` pass evaluates the Huber psi exactly.
PROBES = 32


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
        self.probe_points: Optional[np.ndarray] = None  # (columns, PROBES) values
        self.delta = 0.0
        #: COLLECT passes also sum the regions exactly (`PassResult.exact_region`).
        self.exact_sums = False

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
        if self.probe_points is None:
            self.probe_points = np.zeros((self.columns, PROBES))
        self.probe_points[column] = points
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


class Histograms(NamedTuple):
    """Per column, window, kind (0: equal key width, 1: equal value width) and
    bin, arrays of shape `(d, windows, 2, bins)`."""

    count: np.ndarray  # int64
    weight: np.ndarray
    sum: np.ndarray  # sum w (y - window anchor)
    kmin: np.ndarray  # uint64 keys of the smallest and largest value
    kmax: np.ndarray


class Collected(NamedTuple):
    """The distinct values of the collect windows, sorted by column, then key."""

    cols: np.ndarray  # intp
    keys: np.ndarray  # uint64
    weights: np.ndarray
    lows: Optional[np.ndarray] = None  # the weights' rounding, for exact sums


class Probes(NamedTuple):
    """Per column and probe point `p`, arrays of shape `(d, PROBES)`."""

    psi: np.ndarray  # sum w clip(p - y, -delta, delta)
    near: np.ndarray  # the weight within delta of p
    below: np.ndarray  # the largest value <= p - delta
    above: np.ndarray  # the smallest value >= p + delta


class ColumnBins(NamedTuple):
    """The non-empty bins of one column and histogram kind, in value order."""

    count: np.ndarray
    weight: np.ndarray
    sum: np.ndarray  # sum w (y - window anchor)
    low: np.ndarray  # the smallest value in the bin
    high: np.ndarray  # the largest
    anchor: np.ndarray  # the bin's window anchor
    window: np.ndarray  # the bin's window id


@dataclasses.dataclass
class PassResult:
    """What one pass measured (arrays per column; see `Plan`)."""

    summary: Summary
    region_weight: np.ndarray  # (3, d): below, between, above
    region_sum: np.ndarray  # (3, d): sum w (y - anchor)
    region_sum2: np.ndarray  # (3, d): sum w (y - anchor)^2
    anchors: np.ndarray  # (3, d)
    bins: Optional[Histograms]
    window_anchor: np.ndarray  # (d, 2) values: each window's low end
    collected: Collected
    probes: Optional[Probes]  # for PROBE columns
    probe_points: Optional[np.ndarray]  # (d, PROBES): where psi was evaluated
    #: COLLECT passes: exact sums (`ExactSums`) of the weight below, above and
    #: between the windows and of `sum w y` between (two parts), per column.
    exact_region: Optional[Any] = None
    #: With `exact_region`: the low part of each collected weight (its rounding).
    collected_lo: Optional[np.ndarray] = None

    def column_values(self, column: int) -> Tuple[np.ndarray, np.ndarray]:
        """The collected (sorted, distinct) values of one column and weights."""
        c = self.collected
        start, stop = np.searchsorted(c.cols, [column, column + 1])
        return from_keys(c.keys[start:stop]), c.weights[start:stop]

    def column_weight_lo(self, column: int) -> np.ndarray:
        """The low parts of `column_values`'s weights (zeros if not kept)."""
        start, stop = np.searchsorted(self.collected.cols, [column, column + 1])
        if self.collected_lo is None:
            return np.zeros(stop - start)
        return self.collected_lo[start:stop]

    def column_bins(self, column: int, kind: int) -> ColumnBins:
        """Non-empty bins of one column and histogram `kind` (0: equal key
        width, 1: equal value width), both windows, in value order."""
        count = self.bins.count[column, :, kind].reshape(-1)
        keep = np.flatnonzero(count)
        window = keep // self.bins.count.shape[3]

        def pick(a):
            return a[column, :, kind].reshape(-1)[keep]

        return ColumnBins(count[keep], pick(self.bins.weight), pick(self.bins.sum),
                          from_keys(pick(self.bins.kmin)),
                          from_keys(pick(self.bins.kmax)),
                          self.window_anchor[column][window], window)
