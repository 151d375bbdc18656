"""One pass of an exact order statistic as a mergeable state.

`PassState(plan, ...)` streams batches and does, per column, what its `Plan`
says: per-region sums for the rows outside the windows (`_regions`), the two
histograms of a `BIN` window (`np.add.at` / `np.minimum.at` over
column-and-bin ids), the distinct values of a `COLLECT` window (duplicates
merged with their weights), or psi at the probe points of a `PROBE` column.
Every part merges exactly (counts, weights and sums add; minima and maxima
combine; collected values are merged as sets), so shards of the data give the
union's `PassResult`.
"""

from __future__ import annotations

import numpy as np

from keras_biasinit.stats._budget import BIN_BYTES
from keras_biasinit.stats._budget import CHUNK_BYTES_PER_ELEMENT
from keras_biasinit.stats._budget import ENTRY_BYTES
from keras_biasinit.stats._budget import MemoryMeter
from keras_biasinit.stats._budget import chunk_rows
from keras_biasinit.stats._budget import collect_capacity
from keras_biasinit.stats._checks import as_columns
from keras_biasinit.stats._checks import check_weights
from keras_biasinit.stats._summary import Summary
from keras_biasinit.stats._pass_buffers import Binner
from keras_biasinit.stats._pass_buffers import Collector
from keras_biasinit.stats._pass_buffers import Overflow
from keras_biasinit.stats._summary import check_width
from keras_biasinit.stats._summary import chunks
from keras_biasinit.stats._keys import MAX_KEY
from keras_biasinit.stats._keys import from_keys
from keras_biasinit.stats._keys import to_keys
from keras_biasinit.stats._plan import BIN
from keras_biasinit.stats._plan import COLLECT
from keras_biasinit.stats._plan import PROBE
from keras_biasinit.stats._plan import PROBES
from keras_biasinit.stats._plan import Collected
from keras_biasinit.stats._plan import Histograms
from keras_biasinit.stats._plan import PassResult
from keras_biasinit.stats._plan import Plan
from keras_biasinit.stats._plan import Probes
from keras_biasinit.stats._positions import nonzero_2d
from keras_biasinit.stats._regions import RegionSums
from keras_biasinit.stats.state import Arrays

# How each part merges: sums add, extremes combine.
_BIN_MERGE = Histograms(np.add, np.add, np.add, np.minimum, np.maximum)
_BIN_DTYPES = Histograms(np.int64, np.float64, np.float64, np.uint64, np.uint64)
_PROBE_MERGE = Probes(np.add, np.add, np.maximum, np.minimum)


def _changed_error(name: str) -> ValueError:
    return ValueError(
        f"The data changed between passes: the exact {name} of data larger than "
        "`memory_budget` needs a few passes over it, and a later pass read values "
        "that the earlier passes did not see. Make the target deterministic (no "
        "random augmentation of it in the pipeline; a shuffled order is fine), or "
        "raise `memory_budget` so the data fits in one pass."
    )


class PassState:
    """The state of one pass that follows `plan` (see the module docstring).

    Args:
        plan: what to do per column.
        first: the merged `Summary` of pass 1 (what later passes must match).
        meter: the computation's `MemoryMeter`.
        name: the statistic's name, for error messages.
    """

    def __init__(self, plan: Plan, first: Summary, meter: MemoryMeter,
                 name: str, *, hold: bool = True) -> None:
        self.plan, self.first, self.meter, self.name = plan, first, meter, name
        d = plan.columns
        self.rows_per_chunk = chunk_rows(meter.budget, d)
        self.anchors = plan.anchors()
        self.binning, self.collecting = plan.mode == BIN, plan.mode == COLLECT
        self.probe_cols = np.flatnonzero(plan.mode == PROBE)
        with np.errstate(invalid="ignore"):
            self.window_anchor = np.where(
                (plan.lo <= plan.hi) & (self.binning | self.collecting)[:, None],
                from_keys(plan.lo), 0.0)
        self.seen = Summary(weighted=first.weighted)
        self.bins = self._new_bins() if self.binning.any() else None
        self.binner = Binner(plan) if self.bins is not None else None
        self.all_inside = self._all_in_windows()
        self.collector = (Collector(collect_capacity(meter.budget),
                                    exact=plan.exact_sums)
                          if self.collecting.any() else None)
        self.probes = self._new_probes() if self.probe_cols.size else None
        # A collect pass's final solve needs the regions' sums exactly.
        self.regions = RegionSums(plan, self.anchors, exact=bool(
            self.collector is not None and plan.exact_sums))
        if hold:
            meter.hold(self.rows_per_chunk * d * CHUNK_BYTES_PER_ELEMENT)
            if self.bins is not None:
                meter.hold(d * plan.windows * plan.bins * BIN_BYTES)
            if self.collector is not None:
                meter.hold(self.collector.capacity * ENTRY_BYTES)

    def _new_bins(self) -> Histograms:
        shape = (self.plan.columns, self.plan.windows, 2, self.plan.bins)
        return Histograms(np.zeros(shape, np.int64), np.zeros(shape), np.zeros(shape),
                          np.full(shape, MAX_KEY), np.zeros(shape, np.uint64))

    def _new_probes(self) -> Probes:
        shape = (self.plan.columns, PROBES)
        return Probes(np.zeros(shape), np.zeros(shape), np.full(shape, -np.inf),
                      np.full(shape, np.inf))

    def _all_in_windows(self) -> bool:
        """Every column binned over one window spanning its data (pass 2): no
        row can fall outside, and the region sums are skipped."""
        plan, first = self.plan, self.first
        return bool(self.binning.all() and np.all(plan.lo[:, 1] > plan.hi[:, 1])
                    and np.all(plan.lo[:, 0] <= first.kmin)
                    and np.all(plan.hi[:, 0] >= first.kmax))

    def update(self, values, weights=None) -> "PassState":
        check_width(self.plan.columns, values)
        for chunk, chunk_w in chunks(values, weights, self.rows_per_chunk):
            y = as_columns(chunk)
            w = check_weights(chunk_w, y.shape[0])
            self.seen.update(y, w)
            if w is not None and not (w > 0).all():
                y, w = y[w > 0], w[w > 0]
            if y.shape[0] == 0:
                continue
            keys = to_keys(y)
            inside = True if self.all_inside else self.regions.add(y, w, keys)
            if self.bins is not None:
                self._add_bins(y, w, keys, inside & self.binning)
            if self.collector is not None:
                self._collect(w, keys, inside & self.collecting)
            if self.probes is not None:
                self._add_probes(y, w)
        return self

    def _add_bins(self, y, w, keys, mask) -> None:
        rows, cols = nonzero_2d(np.broadcast_to(mask, y.shape))
        if not rows.size:
            return
        plan = self.plan
        k, v = keys[rows, cols], y[rows, cols]
        # (min(): only data that changed since pass 1 fall past the last
        # window; the check in `result` reports them.)
        win = np.minimum(k >= plan.lo[cols, 1], plan.windows - 1).astype(np.intp)
        ww = 1.0 if w is None else w[rows]
        dev = v - self.window_anchor[cols, win]
        flat = Histograms(*(a.reshape(-1) for a in self.bins))
        for idx in self.binner(k, v, cols, win):
            np.add.at(flat.count, idx, 1)
            np.add.at(flat.weight, idx, ww)
            np.add.at(flat.sum, idx, ww * dev)
            np.minimum.at(flat.kmin, idx, k)
            np.maximum.at(flat.kmax, idx, k)

    def _collect(self, w, keys, mask) -> None:
        rows, cols = nonzero_2d(np.broadcast_to(mask, keys.shape))
        if not rows.size:
            return
        try:
            self.collector.add(cols, keys[rows, cols],
                               np.ones(rows.size) if w is None else w[rows])
        except Overflow:
            raise _changed_error(self.name) from None

    def _add_probes(self, y, w) -> None:
        cols, delta, out = self.probe_cols, self.plan.delta, self.probes
        yy, points = y[:, cols], self.plan.probe_points[cols]
        for k in range(PROBES):
            diff = points[:, k] - yy
            clipped = np.clip(diff, -delta, delta)
            near = np.abs(diff) < delta
            out.psi[cols, k] += clipped.sum(axis=0) if w is None else w @ clipped
            out.near[cols, k] += near.sum(axis=0) if w is None else w @ near
            below = np.where(diff >= delta, yy, -np.inf).max(axis=0)
            above = np.where(diff <= -delta, yy, np.inf).min(axis=0)
            out.below[cols, k] = np.maximum(out.below[cols, k], below)
            out.above[cols, k] = np.minimum(out.above[cols, k], above)

    def merge(self, other: "PassState") -> "PassState":
        self.seen.merge(other.seen)
        self.regions.merge(other.regions)
        if self.bins is not None:
            self.bins = Histograms(*(op(a, b) for op, a, b in
                                     zip(_BIN_MERGE, self.bins, other.bins)))
        if self.collector is not None:
            try:
                self.collector.add(*other.collector.result())
            except Overflow:
                raise _changed_error(self.name) from None
        if self.probes is not None:
            self.probes = Probes(*(op(a, b) for op, a, b in
                                   zip(_PROBE_MERGE, self.probes, other.probes)))
        return self

    def to_arrays(self) -> Arrays:
        arrays = {**self.seen.to_arrays("seen_"), **self.regions.to_arrays()}
        if self.bins is not None:
            arrays.update(("bin_" + k, v) for k, v in self.bins._asdict().items())
        if self.collector is not None:
            try:
                collected = self.collector.result()
            except Overflow:
                raise _changed_error(self.name) from None
            arrays.update(cols=collected.cols, keys=collected.keys,
                          weights=collected.weights)
            if collected.lows is not None:
                arrays["weights_lo"] = collected.lows
        if self.probes is not None:
            arrays.update(("probe_" + k, v) for k, v in self.probes._asdict().items())
        return arrays

    def from_arrays(self, arrays: Arrays) -> "PassState":
        # Copies: merging adds into the new state's arrays in place.
        state = PassState(self.plan, self.first, self.meter, self.name, hold=False)
        state.seen = Summary.from_arrays(arrays, "seen_")
        state.regions = self.regions.from_arrays(arrays)
        if state.bins is not None:
            state.bins = Histograms(*(
                np.asarray(arrays["bin_" + name]).astype(dtype).reshape(empty.shape)
                for name, dtype, empty in zip(Histograms._fields, _BIN_DTYPES,
                                              state.bins)))
        if state.collector is not None:
            state.collector.add(np.asarray(arrays["cols"]).astype(np.intp),
                                np.asarray(arrays["keys"]).astype(np.uint64),
                                np.asarray(arrays["weights"], np.float64),
                                arrays.get("weights_lo"))
        if state.probes is not None:
            state.probes = Probes(*(
                np.array(arrays["probe_" + name], np.float64).reshape(empty.shape)
                for name, empty in zip(Probes._fields, state.probes)))
        return state

    def result(self) -> PassResult:
        """The merged measurement; a ValueError if the data changed since pass 1."""
        self.first.check_same_data(self.seen, self.name)
        collected = Collected(np.zeros(0, np.intp), np.zeros(0, np.uint64),
                              np.zeros(0))
        if self.collector is not None:
            try:
                collected = self.collector.result()
            except Overflow:
                raise _changed_error(self.name) from None
        return PassResult(
            summary=self.seen, region_weight=self.regions.sums[0],
            region_sum=self.regions.sums[1], region_sum2=self.regions.sums[2],
            anchors=self.anchors, bins=self.bins, window_anchor=self.window_anchor,
            collected=collected, probes=self.probes,
            probe_points=self.plan.probe_points, exact_region=self.regions.exact,
            collected_lo=collected.lows,
        )
