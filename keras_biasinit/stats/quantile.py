"""Exact weighted quantile per column, in bounded memory.

The q-quantile minimises the pinball (quantile) loss
`sum_i w_i rho_q(y_i - b)` with `rho_q(r) = q r` for `r >= 0` and
`(q - 1) r` for `r < 0`: the optimal constant under quantile regression, and
for `q = 0.5` under absolute error (`rho = |r| / 2`). With `W` the total weight,
`b` is the first value whose cumulative weight reaches `q W`; where it reaches
it exactly (the minimiser is the interval up to the next value) the midpoint of
that interval is returned. Without weights this is NumPy's
`np.quantile(y, q, method="averaged_inverted_cdf")` (Hyndman & Fan's type 2),
and for `q = 0.5` exactly `np.median`.

The loss it leaves is carried per column, over rows (not weights: Keras's
default reduction) as the mean absolute deviation
`mad = sum_i w_i |y_i - b| / n` and `mean_above = sum_i w_i (y_i - b)_+ / n`:
the mean pinball loss is `(1 - q) (mad - mean_above) + q mean_above`.

How it is computed (`memory_budget` bytes, default 256 MiB; see
`keras_biasinit.stats._driver`):

- Data whose in-memory solve fits the budget (about twice the float64 data, a
  little more with weights): one pass, buffered, then `np.median` /
  `np.partition` (or the sorted cumulative weights).
- Otherwise, over a re-iterable input, a radix select (`_radix`; XGBoost's
  `RadixSelect`, dmlc/xgboost#12557): pass 1 counts, per column, the weight
  and `sum w y` of each value of the high 16 bits of the float32 bit pattern
  (2^16 bins); pass 2 does the same for the low 16 bits, only for the values
  of the bin that holds the rank `q W` (and keeps the smallest value of the
  next bin, for a tie on its edge). For float32 targets the bins of pass 2
  are single values: the quantile is exact in 2 passes, and
  `sum w |y - b|` comes from the bins' exact sums. Float64 targets are binned
  by their float32 rounding; the values of the bin holding the rank (its
  float64 range) are then collected exactly, or binned again first if too
  many for the budget: 3 or 4 passes.
- Wide targets, whose radix bins would be too few (under 11 bits, e.g. 1000
  columns in 256 MiB), float32 or float64 (`_wide_select`): pass 1 keeps a
  random sample of rows besides rows, weight, min, max and `sum w y`; the
  sample's quantiles give each column a bracket `[lo, hi]` that holds the
  rank unless the sample misleads by 4.5 standard deviations; pass 2 counts
  the weight below `lo` and collects the values inside: exact in 2 passes. A
  rank outside its bracket takes one more pass (from the bracket's edge to
  the column's min or max); a bracket of too many values (ties), the
  general passes. Budgets under 1 MiB use the general passes: two histograms
  per column (even in order-preserving float keys and in value), then the
  bracket's values collected, typically 3 passes. Never an approximate answer.
- A one-shot iterator (a generator) whose data exceed the budget cannot be read
  again: ValueError, asking for a re-iterable dataset or a larger budget.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable, Optional, Tuple

import numpy as np

from keras_biasinit.stats._budget import DEFAULT_MEMORY_BUDGET
from keras_biasinit.stats._budget import bins_per_window
from keras_biasinit.stats._budget import collect_capacity
from keras_biasinit.stats._driver import solve
from keras_biasinit.stats._keys import from_keys
from keras_biasinit.stats._keys import to_keys
from keras_biasinit.stats._plan import BIN
from keras_biasinit.stats._plan import COLLECT
from keras_biasinit.stats._plan import IDLE
from keras_biasinit.stats._plan import Plan
from keras_biasinit.stats._mixed_pass import MixedPlan
from keras_biasinit.stats._radix_select import RadixSelect
from keras_biasinit.stats._radix_select import next_radix_plan
from keras_biasinit.stats._quantile_steps import GeneralSteps
from keras_biasinit.stats._quantile_steps import pick
from keras_biasinit.stats._quantile_steps import quantile_point  # noqa: F401
from keras_biasinit.stats._wide_first import WideFirst
from keras_biasinit.stats._wide_select import WideSelect
from keras_biasinit.stats.state import Reducer

Batch = Tuple[np.ndarray, Optional[np.ndarray]]


@dataclasses.dataclass
class QuantileResult:
    """Per column: the q-quantile, `mean_absolute_deviation` and `mean_above`.

    `passes` is the number of passes read over the data; `peak_bytes` the peak
    of the memory this computation held for its own buffers, never more than
    the budget.
    """

    quantile: np.ndarray
    q: float
    mean_absolute_deviation: np.ndarray
    mean_above: np.ndarray
    rows: int
    weight: float
    passes: int = 1
    peak_bytes: int = 0

    @property
    def mean_pinball_loss(self) -> np.ndarray:
        """`sum_i w_i rho_q(y_i - b) / n` per column."""
        mad, above = self.mean_absolute_deviation, self.mean_above
        return (1 - self.q) * (mad - above) + self.q * above


def check_q(q) -> float:
    """`q` as a float in (0, 1), checked."""
    if isinstance(q, bool) or not isinstance(q, (int, float, np.number)):
        raise ValueError(f"`q` must be a number in (0, 1). Received: q={q!r}")
    if not 0.0 < float(q) < 1.0:
        raise ValueError(
            "`q` must lie strictly between 0 and 1 (0.5 is the median). "
            f"Received: q={q!r}"
        )
    return float(q)


def quantile_of_arrays(y: np.ndarray, q: float, w: Optional[np.ndarray] = None
                       ) -> np.ndarray:
    """Exact weighted q-quantile of each column of `y` (rows on axis 0)."""
    y = np.asarray(y, dtype=np.float64)
    if w is None:
        if q == 0.5:
            return np.median(y, axis=0)
        target = q * y.shape[0]
        i = max(math.ceil(target) - 1, 0)
        tie = i + 1 == target and i + 1 < y.shape[0]
        part = np.partition(y, [i, i + 1] if tie else [i], axis=0)
        return (part[i] + part[i + 1]) / 2 if tie else part[i]
    keep = w > 0
    y, w = y[keep], w[keep]
    result = np.empty(y.shape[1])
    for j in range(y.shape[1]):
        order = np.argsort(y[:, j], kind="stable")
        values, cum = y[order, j], np.cumsum(w[order])
        result[j] = pick(values, *quantile_point(cum, q * cum[-1], weighted=True))
    return result


def in_memory_bytes(rows: int, columns: int, weighted: bool) -> int:
    """Peak bytes of the in-memory solve, the buffered float64 data included."""
    data = 8 * rows * columns
    if not weighted:
        return 2 * data + data // 16 + 2**16  # data + np.median's partitioned copy
    # data and weights, their positive-weight copies, per column sort buffers
    return 2 * (data + 8 * rows) + 40 * rows + 2**16


def weighted_quantile(
    batches: Iterable[Batch], *, q: float = 0.5,
    memory_budget: int = DEFAULT_MEMORY_BUDGET, reducer: Optional[Reducer] = None,
) -> QuantileResult:
    """Exact weighted q-quantile per column, in at most `memory_budget` bytes.

    Args:
        batches: an iterable of `(values, weights)` NumPy pairs (values `(n,)`
            or `(n, ...)`, weights `(n,)` or None), e.g. a
            `keras_biasinit.data.Batches`. Data larger than the budget are read
            a few times, so they must be re-iterable.
        q: the quantile, in (0, 1). Defaults to 0.5 (the median).
        memory_budget: bytes this computation may hold. Defaults to 256 MiB.
        reducer: merges each pass's state over the shards of the data (see
            `keras_biasinit.stats.state`). Defaults to None: one shard.

    Returns:
        A `QuantileResult`.

    Example:

    >>> r = weighted_quantile([(np.array([1.0, 2.0, 3.0, 10.0]), None)], q=0.75)
    >>> r.quantile.tolist(), r.mean_pinball_loss.tolist()  # (.25*13.5 + .75*3.5) / 4
    ([6.5], [1.5])
    """
    return solve(batches, QuantileSearch(check_q(q)), memory_budget=memory_budget,
                 reducer=reducer)


class QuantileSearch(GeneralSteps):
    """The weighted quantile as a `keras_biasinit.stats._driver.Search`."""

    name = "quantile"

    def __init__(self, q: float) -> None:
        self.q = q
        if q == 0.5:
            self.name = "median"

    in_memory_bytes = staticmethod(in_memory_bytes)

    def solve_in_memory(self, data, meter) -> QuantileResult:
        meter.hold(in_memory_bytes(data.rows, data.y.shape[1], data.weighted)
                   - data.held_bytes)
        y, w = data.y, data.w
        total = float(y.shape[0] if w is None else w.sum())
        if total <= 0:
            raise ValueError("All sample weights are 0: there is nothing to fit.")
        value = quantile_of_arrays(y, self.q, w)
        deviation = y - value
        signed = deviation.sum(axis=0) if w is None else w @ deviation
        np.abs(deviation, out=deviation)
        absolute = deviation.sum(axis=0) if w is None else w @ deviation
        n = y.shape[0]  # sum w (y - b)_+ = (sum w |y - b| + sum w (y - b)) / 2
        return QuantileResult(value, self.q, absolute / n, (absolute + signed) / 2 / n,
                              int(n), total, 1, meter.peak)

    #: Pass 1 also histograms the float32 bits (`_radix`): 2 passes in all;
    #: for wide targets it samples rows instead (`_wide_select`): 2 passes too.
    radix = True
    sample = True
    wide = None  # the `WideSelect` of wide targets
    #: Passes that typical data need (2; 3 under a 24 MiB budget), plus one:
    #: the stages a Beam pipeline unrolls by default.
    default_max_passes = 4

    def start(self, first, meter) -> Optional[Plan]:
        d = first.kmin.shape[0]
        self.weighted = first.weighted
        self.value = from_keys(first.kmin).copy()
        self.below, self.above = np.zeros(d), np.zeros(d)
        self.done = first.kmin == first.kmax  # constant columns: the value
        self.full = [(int(first.kmin[j]), int(first.kmax[j])) for j in range(d)]
        histogram = getattr(first, "radix", None)
        if isinstance(histogram, WideFirst):
            first.radix = None  # read: its memory is free for the next pass
            self.wide = WideSelect(self.q, first, histogram, meter.budget)
            return self._mixed(self.wide.start(np.flatnonzero(~self.done)), None,
                               [], meter)
        if histogram is not None:
            self.descent = RadixSelect(self.q, histogram, first.weighted)
            self.descent.collect_room = collect_capacity(meter.budget)
            outcomes = self.descent.step(histogram)
            first.radix = None  # read: its memory is free for the next pass
            meter.release(histogram.held)
            return self._mixed(outcomes, histogram.plan, [], meter)
        plan = Plan(d, bins_per_window(meter.budget, d, 1), windows=1)
        for j in np.flatnonzero(~self.done):
            plan.set(j, BIN, [self.full[j]])
        return None if self.done.all() else plan

    def _mixed(self, outcomes, radix_plan, wanted, meter) -> Optional[MixedPlan]:
        """The next pass from the radix descent's `outcomes` and the general
        columns' `wanted` windows."""
        descend = {}
        for j, outcome in outcomes.items():
            if self.done[j]:
                continue
            if outcome[0] == "done":
                self.value[j], self.below[j], self.above[j] = outcome[1:]
                self.done[j] = True
            elif outcome[0] in ("radix", "bracket"):
                descend[j] = outcome[1:]
            else:
                low, high, cost = outcome[1:]
                window = self.full[j] if low is None else (
                    int(to_keys(np.array([low]))[0]), int(to_keys(np.array([high]))[0]))
                wanted.append((cost, j, window))
        if self.done.all():
            return None
        d = self.done.shape[0]
        if self.wide is not None:
            radix = self.wide.plan(descend) if descend else None
        else:
            radix = None if not descend else next_radix_plan(
                d, self.descent.bits, radix_plan.shift - radix_plan.bits, descend)
        general = None
        if wanted:
            general = self._general_plan(wanted, bins_per_window(meter.budget, d, 1),
                                         meter)
        return MixedPlan(radix, general)

    def step(self, result, plan, meter) -> Optional[Plan]:
        if isinstance(plan, MixedPlan):
            wanted = [] if plan.general is None else self._general_step(
                result.general, plan.general)
            outcomes = {} if result.radix is None else (
                self.descent.step(result.radix) if self.wide is None
                else self.wide.step(result.radix, plan.radix))
            return self._mixed(outcomes, plan.radix, wanted, meter)
        wanted = self._general_step(result, plan)
        if self.done.all():
            return None
        return self._general_plan(wanted, plan.bins, meter)

    def _general_step(self, result, plan) -> list:
        """Reads a general pass; returns the (cost, column, window) wanted next."""
        wanted = []  # (cost, column, window)
        for j in np.flatnonzero(~self.done):
            if plan.mode[j] == COLLECT:
                solved = self._solve(result, j)
                if solved is None:  # rounding disagreed: start over on the column
                    wanted.append((np.inf, j, self.full[j]))
                else:
                    self.value[j], self.below[j], self.above[j] = solved
                    self.done[j] = True
            elif plan.mode[j] != IDLE:
                wanted.append(self._bracket(result, j))
        return wanted

    def _general_plan(self, wanted, bins: int, meter) -> Plan:
        new = Plan(self.done.shape[0], bins, windows=1)
        room = collect_capacity(meter.budget)
        for cost, j, window in sorted(wanted, key=lambda item: item[0]):
            mode = COLLECT if cost <= room else BIN
            room -= cost if mode == COLLECT else 0
            new.set(j, mode, [window])
        return new

    def finish(self, first, passes: int, peak_bytes: int) -> QuantileResult:
        n = first.rows
        return QuantileResult(self.value, self.q, (self.below + self.above) / n,
                              self.above / n, n, first.weight, passes, peak_bytes)
