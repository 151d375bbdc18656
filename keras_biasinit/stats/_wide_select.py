"""The weighted quantile of wide targets from a row sample and one bracket pass.

From pass 1's random sample of `m` rows (`_wide_first`), each column's
bracket is the pair of sample order statistics `Z` standard deviations of the
sample rank (`sqrt(m q (1 - q))`) either side of `q m`: the wanted rank lies
inside unless the sample misleads by more than `Z` sigma. Pass 2 (`_bracket`)
counts the weight below every bracket and collects the values inside, so
with `L` the weight below and the inside values sorted, the quantile is the
first value whose cumulative weight `L + w_1 + ... + w_i`
reaches `q W` (the midpoint with the next value on a tie), as in memory: for
unit weights the very `np.partition` indices of `np.median`/`np.quantile`.
A column whose rank lies below or above its bracket takes one more bracket
pass, from the column's min (max) to the bracket's first (last) value, whose
row count is then known exactly; a column whose values inside would not fit
`memory_budget` (ties) continues with the general passes. Never an
approximation.
"""

from __future__ import annotations

import math
from typing import Dict, Iterable

import numpy as np

from keras_biasinit.stats._bracket_plan import ROOM_BYTES
from keras_biasinit.stats._bracket_plan import ROOM_BYTES_WEIGHTED
from keras_biasinit.stats._bracket_plan import BracketPlan
from keras_biasinit.stats._keys import from_keys
from keras_biasinit.stats._quantile_steps import quantile_point

#: Standard deviations of the sample rank each side of the bracket.
Z = 4.5


class WideSelect:
    """Brackets from the sample, then the quantile of each column (see the
    module docstring). `start()` and `step(result)` return, per column, an
    outcome as `_radix_select.RadixSelect` does: `("bracket",)` (a bracket
    pass), `("done", b, below, above)` or `("general", low, high, cost)`."""

    def __init__(self, q: float, first, pass_one, budget: int) -> None:
        self.q, self.first, self.weighted = q, first, first.weighted
        self.anchor, self.centred = pass_one.anchor, pass_one.centred
        self.positive = pass_one.positive
        sample = pass_one.take_sample()
        per = ROOM_BYTES_WEIGHTED if first.weighted else ROOM_BYTES
        self.capacity = max(64, budget * 5 // 8 // per)
        self.lo, self.hi, self.room = self._brackets(sample)  # per column
        self.waiting = []

    def _brackets(self, sample: np.ndarray):
        """Per column the bracket, and room for the values the sample predicts
        inside (5 standard deviations of that count more)."""
        m, d = sample.shape
        rank, spread = self.q * m, Z * math.sqrt(m * self.q * (1 - self.q))
        low, high = math.floor(rank - spread) - 1, math.ceil(rank + spread)
        kth = [i for i in (low, high) if 0 <= i < m]
        part = np.partition(sample, kth, axis=0) if kth else sample
        lo, hi = from_keys(self.first.kmin), from_keys(self.first.kmax)
        lo = np.maximum(part[low], lo) if low >= 0 else lo
        hi = np.minimum(part[high], hi) if high < m else hi
        inside = ((sample >= lo) & (sample <= hi)).mean(axis=0)
        rows = self.positive  # the rows the sample stands for (weight > 0)
        expect = inside * rows
        spread = np.sqrt(rows * expect / max(m, 1) + expect)  # sample + data
        return lo, hi, np.ceil(expect + 5 * spread).astype(np.int64) + 64

    def start(self, columns: Iterable[int]) -> Dict[int, tuple]:
        return {int(j): self._pending(int(j)) for j in columns}

    def _pending(self, j: int) -> tuple:
        """A bracket pass for column `j`, or the general passes if its values
        would not fit the room (ties: the bracket holds one repeated value)."""
        if self.room[j] > 0.8 * self.capacity:
            return ("general", float(self.lo[j]), float(self.hi[j]),
                    float(self.room[j]))
        return ("bracket",)

    def plan(self, columns: Iterable[int]) -> BracketPlan:
        """A bracket pass for the cheapest of `columns` that fit its capacity
        (the others wait for the next one)."""
        d = self.lo.shape[0]
        lo, hi = np.full(d, np.inf), np.full(d, np.inf)
        room, self.waiting = self.capacity, []
        for j in sorted(columns, key=lambda j: self.room[j]):
            if self.room[j] > room:
                self.waiting.append(int(j))
                continue
            room -= self.room[j]
            lo[j], hi[j] = self.lo[j], self.hi[j]
        return BracketPlan(lo, hi, self.room, self.anchor, self.centred)

    def step(self, result, plan: BracketPlan) -> Dict[int, tuple]:
        """Outcomes of the columns of `plan` from its merged `result`; the
        columns that waited (not in it) stay `("bracket",)`."""
        out = {j: ("bracket",) for j in self.waiting}
        for j in np.flatnonzero(plan.active):
            out[int(j)] = self._column(result, int(j))
        return out

    def _column(self, result, j: int) -> tuple:
        if result.lost[j]:  # more values inside than room: collect them next
            self.room[j] = result.inside[j]
            return self._pending(j)
        start = result.starts[j]
        values = result.values[start : start + result.inside[j]]
        if self.weighted:
            order = np.argsort(values, kind="stable")
            values = values[order]
            weights = result.weights[start : start + result.inside[j]][order]
            point = self._weighted_point(values, weights, result, j)
        else:
            weights = None
            values, point = self._unit_point(values, result.below[j])
        if isinstance(point, str):
            return self._escape(j, point, result, values)
        return ("done", *self._deviations(j, point, values, weights, result))

    def _unit_point(self, values, below):
        """(values with the picked ones in place, b) or (values, the side)."""
        n, m = self.first.rows, values.shape[0]
        target = self.q * n
        i = max(math.ceil(target) - 1, 0)
        tie = i + 1 == target and i + 1 < n
        local = i - int(below)
        if local < 0:
            return values, "below"
        if local + (1 if tie else 0) >= m:
            return values, "above"
        values.partition([local, local + 1] if tie else [local])  # its segment
        b = (values[local] + values[local + 1]) / 2 if tie else values[local]
        return values, float(b)

    def _weighted_point(self, values, weights, result, j: int):
        target = self.q * self.first.weight
        below = result.below_weight[j]
        if below >= target - 1e-9 * target:
            return "below"
        i, tie = quantile_point(below + np.cumsum(weights), target,
                                weighted=True)
        m = values.shape[0]
        if i == m or (tie and i + 1 == m and result.above[j] > 0):
            return "above"
        return float((values[i] + values[i + 1]) / 2 if tie and i + 1 < m
                     else values[i])

    def _deviations(self, j, b, values, weights, result):
        """(b, sum w (b - y)_+, sum w (y - b)_+) over every row; the rows
        above `hi` through pass 1's `sum w (y - anchor)` less the rest."""
        inside = values - b
        low, high = np.minimum(inside, 0.0), np.maximum(inside, 0.0)
        below = -(low.sum() if weights is None else weights @ low)
        above = high.sum() if weights is None else weights @ high
        weight, lo, anchor = result.below_weight[j], self.lo[j], self.anchor[j]
        if weight > 0:
            below += weight * (b - lo) - result.below_deviation[j]
        if result.above[j] > 0:
            above_centred = (self.centred[j] - result.below_deviation[j]
                             - weight * (lo - anchor) - result.inside_centred[j])
            above_weight = self.first.weight - weight - result.inside_weight[j]
            above += above_centred - above_weight * (b - anchor)
        return b + 0.0, float(below), float(above)

    def _escape(self, j: int, side: str, result, values) -> tuple:
        """The rank lies `side` of the bracket: the next bracket runs from the
        column's min (max) to its first (last) value inside, so that it
        holds the rank and the value after it, with room for exactly that."""
        if side == "below":
            edge = values.min() if values.size else self.lo[j]
            self.lo[j] = from_keys(self.first.kmin[j : j + 1])[0]
            self.hi[j], rows = edge, result.below[j]
        else:
            edge = values.max() if values.size else self.hi[j]
            self.lo[j] = edge
            self.hi[j] = from_keys(self.first.kmax[j : j + 1])[0]
            rows = result.above[j]
        self.room[j] = rows + np.count_nonzero(values == edge)
        return self._pending(j)
