"""The weighted quantile of wide targets from a row sample and one bracket pass.

From pass 1's random sample of `m` rows (`_wide_first`), each column's
bracket is the pair of sample order statistics `Z` standard deviations of the
sample rank (`sqrt(m q (1 - q))`) either side of `q m`: the wanted rank lies
inside unless the sample misleads by more than `Z` sigma. Pass 2 (`_bracket`)
counts the weight below and above every bracket and collects the values
inside, so with `L` the weight below and the inside values sorted, the
quantile is the first value whose cumulative weight `L + w_1 + ... + w_i`
reaches `q W` (the midpoint with the next value on a tie), as in memory: for
unit weights the very `np.partition` indices of `np.median`/`np.quantile`.
A column whose rank lies below or above its bracket (or whose bracket would
hold too many values) continues with the general passes over that side, whose
row count is then known exactly; never an approximation.
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, Optional

import numpy as np

from keras_biasinit.stats._bracket import COLLECTED_BYTES
from keras_biasinit.stats._bracket import COLLECTED_BYTES_WEIGHTED
from keras_biasinit.stats._bracket import BracketPlan
from keras_biasinit.stats._keys import from_keys

#: Standard deviations of the sample rank each side of the bracket.
Z = 4.5


def _quantile_point(cum, target, weighted):
    from keras_biasinit.stats.quantile import quantile_point

    return quantile_point(cum, target, weighted=weighted)


class WideSelect:
    """Brackets from the sample, then the quantile of each column (see the
    module docstring). `start()` and `step(result)` return, per column, an
    outcome as `_radix_select.RadixSelect` does: `("bracket",)` (a bracket
    pass), `("done", b, below, above)` or `("general", low, high, cost)`."""

    def __init__(self, q: float, first, sample: np.ndarray, budget: int) -> None:
        self.q, self.first, self.weighted = q, first, first.weighted
        per = COLLECTED_BYTES_WEIGHTED if first.weighted else COLLECTED_BYTES
        self.capacity = max(64, budget * 5 // 8 // per)
        self.lo, self.hi, self.cost = self._brackets(sample)

    def _brackets(self, sample: np.ndarray):
        m, d = sample.shape
        rank, spread = self.q * m, Z * math.sqrt(m * self.q * (1 - self.q))
        low, high = math.floor(rank - spread) - 1, math.ceil(rank + spread)
        kth = [i for i in (low, high) if 0 <= i < m]
        part = np.partition(sample, kth, axis=0) if kth else sample
        lo = part[low] if low >= 0 else np.full(d, -np.inf)
        hi = part[high] if high < m else np.full(d, np.inf)
        inside = ((sample >= lo) & (sample <= hi)).mean(axis=0)
        return lo.copy(), hi.copy(), np.ceil(inside * self.first.rows) + 1

    def start(self, columns: Iterable[int]) -> Dict[int, tuple]:
        return {int(j): self._pending(int(j)) for j in columns}

    def _pending(self, j: int) -> tuple:
        if self.cost[j] > 0.8 * self.capacity:  # ties: too many inside
            return ("general", None, None, np.inf)
        return ("bracket",)

    def plan(self, columns: Iterable[int]) -> BracketPlan:
        """A bracket pass for the cheapest of `columns` that fit its capacity
        (the others wait for the next one)."""
        d = self.lo.shape[0]
        lo, hi = np.full(d, np.inf), np.full(d, np.inf)
        room, self.waiting = 0.8 * self.capacity, []
        for j in sorted(columns, key=lambda j: self.cost[j]):
            if self.cost[j] > room:
                self.waiting.append(int(j))
                continue
            room -= self.cost[j]
            lo[j], hi[j] = self.lo[j], self.hi[j]
        return BracketPlan(lo, hi, self.capacity)

    def step(self, result, plan: BracketPlan) -> Dict[int, tuple]:
        """Outcomes of the columns of `plan` from its merged `result`; the
        columns that waited (not in it) stay `("bracket",)`."""
        out = {j: ("bracket",) for j in self.waiting}
        if result.overflow:  # more values than the sample said: fewer columns
            self.capacity //= 2
            out = {j: self._pending(j) for j in [*out, *np.flatnonzero(plan.active)]}
            return {int(j): outcome for j, outcome in out.items()}
        for j in np.flatnonzero(plan.active):
            out[int(j)] = self._column(result, int(j))
        return out

    def _column(self, result, j: int) -> tuple:
        start, stop = result.starts[j], result.starts[j + 1]
        values = result.values[start:stop]
        count, weight = result.count[:, j], result.weight[:, j]
        if self.weighted:
            order = np.argsort(values, kind="stable")
            values = values[order].astype(np.float64)
            weights = result.weights[start:stop][order]
            point = self._weighted_point(values, weights, weight)
        else:
            weights, weight = None, count.astype(np.float64)
            values, point = self._unit_point(values, count)
        if isinstance(point, str):
            return self._escape(j, point, count)
        return ("done", *self._deviations(j, point, values, weights, weight,
                                          result.deviation[:, j]))

    def _unit_point(self, values, count):
        """(values with the picked ones in place, b) or (values, the side)."""
        n, m = self.first.rows, values.shape[0]
        target = self.q * n
        i = max(math.ceil(target) - 1, 0)
        tie = i + 1 == target and i + 1 < n
        local = i - int(count[0])
        if local < 0:
            return values, "below"
        if local + (1 if tie else 0) >= m:
            return values, "above"
        part = np.partition(values, [local, local + 1] if tie else [local])
        part = part.astype(np.float64)
        b = (part[local] + part[local + 1]) / 2 if tie else part[local]
        return part, float(b)

    def _weighted_point(self, values, weights, weight):
        target = self.q * self.first.weight
        cum = weight[0] + np.cumsum(weights)
        if weight[0] >= target - 1e-9 * target:
            return "below"
        i, tie = _quantile_point(cum, target, True)
        m = values.shape[0]
        if i == m or (tie and i + 1 == m and weight[1] > 0):
            return "above"
        return float((values[i] + values[i + 1]) / 2 if tie and i + 1 < m
                     else values[i])

    def _deviations(self, j, b, values, weights, weight, deviation):
        """(b, sum w (b - y)_+, sum w (y - b)_+) over every row."""
        inside = values.astype(np.float64) - b
        low = np.minimum(inside, 0.0)
        high = np.maximum(inside, 0.0)
        below = -(low.sum() if weights is None else weights @ low)
        above = high.sum() if weights is None else weights @ high
        if weight[0] > 0:
            below += weight[0] * (b - self.lo[j]) - deviation[0]
        if weight[1] > 0:
            above += weight[1] * (self.hi[j] - b) + deviation[1]
        return b + 0.0, float(below), float(above)

    def _escape(self, j: int, side: str, count) -> tuple:
        if side == "below":
            low = float(from_keys(self.first.kmin[j : j + 1])[0])
            return ("general", low, float(np.nextafter(self.lo[j], -np.inf)),
                    float(count[0]))
        high = float(from_keys(self.first.kmax[j : j + 1])[0])
        return ("general", float(np.nextafter(self.hi[j], np.inf)), high,
                float(count[1]))


def check_bracket_pass(state, result) -> None:
    """Raises if the bracket pass read other data than pass 1: rows, weight
    and, per column in the pass, `sum w y` (below + inside + above)."""
    first, plan = state.first, state.plan
    same = (state.rows == first.rows
            and abs(state.weight_sum - first.weight) <= 1e-9 * first.weight)
    if same and not result.overflow:
        active = plan.active
        cols = np.repeat(np.arange(plan.columns), np.diff(result.starts))
        values = result.values.astype(np.float64)
        inside = np.bincount(cols, values if result.weights is None
                             else result.weights * values, plan.columns)
        weight = (result.weight if first.weighted
                  else result.count.astype(np.float64))
        with np.errstate(invalid="ignore"):
            ends = np.stack([plan.lo, plan.hi])
            outside = np.where(weight > 0, result.deviation + ends * weight, 0.0)
        total = outside.sum(axis=0) + inside
        error = np.abs(total - first.checksum)[active]
        same = bool(np.all(error <= 1e-9 * first.scale[active] + 1e-300))
    if not same:
        raise ValueError(
            f"The data changed between passes: the exact {state.name} of data "
            "larger than `memory_budget` needs a few passes over it, and a "
            "later pass read different values (or a different number of rows) "
            "than the first. Make the target deterministic (no random "
            "augmentation of it in the pipeline; a shuffled order is fine), or "
            "raise `memory_budget` so the data fits in one pass."
        )
