"""The Huber location's passes after the first: one bracket per column.

`HuberSteps` is the multi-pass half of `keras_biasinit.stats.huber`'s
`HuberSearch` (see its module docstring for the method). Per column it keeps a
bracket `[low, high]` of every root of psi and, from each pass's merged
result, narrows it and plans the next pass: `start` from pass 1's radix bins
(`_huber_radix`) or the data's range; `step` from a collect pass (the final
solve, `_huber_solve`, or a wider bracket where the collected windows showed
the root beyond it), a histogram pass (`_huber_search.bracket`) or a probe
pass (`_huber_search.probed`). `_plan` collects the windows that fit the
budget, cheapest first, bins the others again, and probes a bracket the bins
could not narrow.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from keras_biasinit.stats import _huber_search as search
from keras_biasinit.stats._budget import analysis_block
from keras_biasinit.stats._budget import bins_per_window
from keras_biasinit.stats._budget import collect_capacity
from keras_biasinit.stats._gathered import GatheredPlan
from keras_biasinit.stats._huber_exact import overflow_error
from keras_biasinit.stats._huber_radix import collect_cost
from keras_biasinit.stats._huber_radix import radix_bins
from keras_biasinit.stats._huber_radix import radix_bracket
from keras_biasinit.stats._huber_solve import solve as solve_collected
from keras_biasinit.stats._keys import from_keys
from keras_biasinit.stats._plan import BIN
from keras_biasinit.stats._plan import COLLECT
from keras_biasinit.stats._plan import PROBE
from keras_biasinit.stats._plan import Plan

#: Radix digits of fewer bits (bins wider than 1/8 of a binade: many columns
#: in the budget) seldom narrow the location enough for binning its windows
#: to beat binning the whole range.
FINE_BITS = 12
_MAX = np.finfo(np.float64).max


class HuberSteps:
    """The passes after the first, for the Huber psi with `self.delta`."""

    delta: float

    def start(self, first, meter) -> Optional[Plan]:
        d = first.kmin.shape[0]
        self.kmin, self.kmax = first.kmin, first.kmax
        self.data_min, self.data_max = from_keys(first.kmin), from_keys(first.kmax)
        # brackets: every root in [low, high]
        self.low, self.high = self.data_min.copy(), self.data_max.copy()
        self.location = self.data_min.copy()
        self.loss_sum = np.zeros(d)
        self.done = first.kmin == first.kmax  # constant columns: the value
        self._check_sums_fit(first)
        self.block = analysis_block(meter.budget)
        plan = GatheredPlan(d, bins_per_window(meter.budget, d))
        if self.done.all():
            return None
        histogram = getattr(first, "radix", None)
        if histogram is not None:
            first.radix = None  # read here: its memory is free for the next pass
            wanted = [self._from_radix(histogram, j) for j in
                      np.flatnonzero(~self.done)]
            meter.release(histogram.held)
            fits = sum(item[0] for item in wanted) <= collect_capacity(meter.budget)
            if fits or histogram.plan.bits >= FINE_BITS:
                return self._plan(wanted, plan, meter)
        # No histogram, or too coarse a one whose windows do not fit: bin each
        # column's whole range (a pass that needs no region sums).
        for j in np.flatnonzero(~self.done):
            plan.set(j, BIN, [(int(first.kmin[j]), int(first.kmax[j]))])
        return plan

    def _check_sums_fit(self, first) -> None:
        """Raises the rescale error unless the passes' sums fit float64 in
        every column left to solve: psi's range (`delta W`), its sums of
        `w y` (at most `sum w |y|`) and the bins' sums of `w (y - anchor)`
        (at most `2 max|y| W`)."""
        extent = np.maximum(np.abs(self.data_min), np.abs(self.data_max))
        with np.errstate(over="ignore", invalid="ignore"):
            size = first.scale + (2.0 * extent + self.delta) * float(first.weight)
        if not np.all((size < _MAX) | self.done):
            raise overflow_error()

    def _from_radix(self, histogram, j: int):
        """(cost, column, windows, spans, stuck) from pass 1's radix bins: the
        bracket they give (`_huber_radix`), its windows and their cost."""
        bins = radix_bins(histogram, j)
        self.low[j], self.high[j] = radix_bracket(bins, self.delta, self.low[j],
                                                  self.high[j])
        wins = search.windows(self.low[j], self.high[j], self.delta)
        spans = [(max(lo, int(self.kmin[j])), min(hi, int(self.kmax[j])))
                 for lo, hi in wins]
        return collect_cost(bins, wins), j, wins, spans, False

    def step(self, result, plan, meter) -> Optional[Plan]:
        wanted = []  # (cost, column, windows, spans, probe next?)
        for j in np.flatnonzero(~self.done):
            if plan.mode[j] == COLLECT:
                cost, spans, stuck = self._collected(result, j)
            elif plan.mode[j] == PROBE:
                cost, spans, stuck = self._probed(result, j)
            else:
                cost, spans, stuck = self._binned(result, j)
            if self.done[j]:
                continue
            wins = search.windows(self.low[j], self.high[j], self.delta)
            if spans is None:  # bin where data can be: within [min, max]
                spans = [(max(lo, int(self.kmin[j])), min(hi, int(self.kmax[j])))
                         for lo, hi in wins]
            wanted.append((cost, j, wins, spans, stuck))
        return None if self.done.all() else self._plan(wanted, plan, meter)

    def _collected(self, result, j: int):
        solved = solve_collected(result, j, self.delta, self.low[j],
                                 self.high[j], self.data_min[j], self.data_max[j])
        if solved == "low":  # rounding disagreed: widen that side
            self.low[j] = self.data_min[j]
        elif solved == "high":
            self.high[j] = self.data_max[j]
        elif solved == "below":  # psi(low) > 0, exactly: the root is below
            self.low[j], self.high[j] = self.data_min[j], self.low[j]
        elif solved == "above":
            self.low[j], self.high[j] = self.high[j], self.data_max[j]
        else:
            self.location[j], self.loss_sum[j] = solved
            self.done[j] = True
        return np.inf, None, False

    def _probed(self, result, j: int):
        self.low[j], self.high[j] = search.probed(result, j, self.delta,
                                                  self.low[j], self.high[j])
        # two one-key windows hold at most 2 distinct values
        return (2.0 if self.low[j] == self.high[j] else np.inf), None, False

    def _binned(self, result, j: int):
        width = self.high[j] - self.low[j]
        self.low[j], self.high[j], cost, spans = search.bracket(
            result, j, self.delta, self.low[j], self.high[j], self.block)
        return cost, spans, self.high[j] - self.low[j] > 0.5 * width

    def _plan(self, wanted, plan, meter) -> Plan:
        new = GatheredPlan(plan.columns, plan.bins)
        new.exact_sums = True  # the final solve needs the regions exactly
        room = collect_capacity(meter.budget)
        for cost, j, wins, spans, stuck in sorted(wanted, key=lambda t: t[0]):
            if cost <= room:
                room -= cost
                new.set(j, COLLECT, wins, spans)
            elif stuck:  # the histogram could not narrow it: evaluate psi exactly
                new.set_probes(j, search.probe_points(self.low[j], self.high[j]),
                               self.delta)
            else:
                new.set(j, BIN, wins, spans)
        return new
