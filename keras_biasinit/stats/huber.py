"""Exact Huber location per column, in bounded memory: the Huber-optimal constant.

With `h(r) = r^2 / 2` for `|r| <= delta` and `delta * (|r| - delta / 2)`
otherwise (`keras.losses.Huber`), the location `b` minimises
`sum_i w_i h(y_i - b)`. Its derivative,
`psi(b) = sum_i w_i clip(b - y_i, -delta, delta)`, is continuous,
non-decreasing and linear between the breakpoints `y_i +- delta`, so the root is
found exactly: bisect the sorted breakpoints with `psi` evaluated term by term
(each term bounded by `delta * w`, so a far outlier cannot blur the sum), then
solve the line of the segment where `psi` changes sign.
When `psi` is zero on a whole interval (a segment with no value within `delta`
and equal weight on both sides) the minimiser is not unique; the midpoint of
that interval is returned (as the median does for an even count).
Large `delta` gives the mean, small `delta` the median (Huber, 1964). The loss
it leaves is `sum_i w_i h(y_i - b) / rows` (Keras's default reduction).

How it is computed (`memory_budget` bytes, default 256 MiB):

- Small data (the in-memory solve, about 40 bytes per value and column plus
  about 250 bytes per row, fits the budget): one pass, then the exact solve above.
- Otherwise, over a re-iterable input, typically two passes for float32
  targets (see `keras_biasinit.stats._driver` and `_huber_steps`, which drives
  `_huber_radix`, `_huber_search` and `_huber_solve`). For a bracket `[L, U]`
  of the location only the values in `[L - delta, U - delta]` and
  `[L + delta, U + delta]` change regime; every other value adds `+delta`,
  `-delta` or `b - y` to `psi` whatever `b` in the bracket, so it is needed
  only through sums.
  (1) Pass 1 counts, per column, the weight and `sum w y` of each value of the
  high 16 bits of the float32 bit pattern (a 2^16-bin radix histogram, as for
  the median); the bins bound psi at any `b` (bins wholly beyond `b +- delta`
  add `+-delta W`, bins wholly within `b W - sum w y`, only the two straddling
  `b +- delta` are uncertain: `_huber_bounds`), hence a bracket usually far
  narrower than a bin (`_huber_radix`). (2) The values of the bracket's two
  windows are collected exactly, the rest enter through per-region sums
  (weight, first and second moments, for the loss) and exact sums
  (`_exact_sum`: the weight below, between and above, and `sum w y` between),
  and `psi` is summed exactly on the bracket as above (`_huber_solve`,
  `_huber_exact`): the same float as the in-memory solve. Windows that may
  hold more distinct values than a quarter of the budget allows (coarse bins:
  many columns, a small budget, float64 targets in one float32 bin) are binned
  again first, in two histograms per window (even in float keys and in value)
  with per-bin weight, weighted sum, min and max (one more pass each), and a
  bracket the bins cannot narrow is narrowed by evaluating `psi` exactly at 32
  points in one pass; never approximated. Budgets under 1 MiB skip the radix
  histogram (pass 1 then only counts and finds min and max).
- A one-shot iterator (a generator) whose data exceed the budget cannot be read
  again: ValueError, asking for a re-iterable dataset or a larger budget.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Optional, Tuple

import numpy as np

from keras_biasinit.stats._budget import DEFAULT_MEMORY_BUDGET
from keras_biasinit.stats._driver import solve
from keras_biasinit.stats._huber_memory import huber_location_1d
from keras_biasinit.stats._huber_solve import huber_loss
from keras_biasinit.stats._huber_steps import HuberSteps
from keras_biasinit.stats.state import Reducer

Batch = Tuple[np.ndarray, Optional[np.ndarray]]


@dataclasses.dataclass
class HuberResult:
    """Per column: the location and `sum_i w_i h(y_i - location) / rows`.

    `passes` is the number of passes read over the data; `peak_bytes` the peak
    of the memory this computation held for its own buffers, never more than
    the budget.
    """

    location: np.ndarray
    mean_loss: np.ndarray
    rows: int
    weight: float
    passes: int = 1
    peak_bytes: int = 0


def in_memory_bytes(rows: int, columns: int, weighted: bool) -> int:
    """Peak bytes of the in-memory solve, the buffered float64 data included."""
    data = 8 * rows * (columns + 1)
    return data + max(256 * rows, 48 * rows * columns) + 2**16


def check_delta(delta) -> float:
    """`delta` as a float, checked: a positive, finite number (not a bool)."""
    if isinstance(delta, bool) or not isinstance(delta, (int, float, np.number)):
        raise ValueError(
            f"`delta` must be a positive number. Received: delta={delta!r}"
        )
    delta = float(delta)
    if not np.isfinite(delta) or delta <= 0:
        raise ValueError(
            f"`delta` must be a positive, finite number. Received: delta={delta}"
        )
    return delta


def huber_location(
    batches: Iterable[Batch],
    *,
    delta: float = 1.0,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    reducer: Optional[Reducer] = None,
) -> HuberResult:
    """Exact Huber location per column, in at most `memory_budget` bytes.

    Args:
        batches: an iterable of `(values, weights)` NumPy pairs (values `(n,)`
            or `(n, ...)`, weights `(n,)` or None), e.g. a
            `keras_biasinit.data.Batches`. Data larger than the budget are read
            a few times, so they must be re-iterable.
        delta: the Huber loss's `delta`. Defaults to 1.0.
        memory_budget: bytes this computation may hold. Defaults to 256 MiB.
        reducer: merges each pass's state over the shards of the data (see
            `keras_biasinit.stats.state`). Defaults to None: one shard.

    Returns:
        A `HuberResult`.
    """
    return solve(batches, HuberSearch(check_delta(delta)),
                 memory_budget=memory_budget, reducer=reducer)


class HuberSearch(HuberSteps):
    """The Huber location as a `keras_biasinit.stats._driver.Search`."""

    name = "Huber location"
    in_memory_bytes = staticmethod(in_memory_bytes)

    def __init__(self, delta: float) -> None:
        self.delta = delta

    def solve_in_memory(self, data, meter) -> HuberResult:
        meter.hold(in_memory_bytes(data.rows, data.y.shape[1], data.weighted)
                   - data.held_bytes)
        y = data.y
        w = np.ones(y.shape[0]) if data.w is None else data.w
        total = float(w.sum())
        if total <= 0:
            raise ValueError("All sample weights are 0: there is nothing to fit.")
        keep = w > 0
        if not keep.all():
            y, w = y[keep], w[keep]
        location = np.array([huber_location_1d(y[:, j], w, self.delta)
                             for j in range(y.shape[1])])
        loss = w @ huber_loss(y - location, self.delta) / data.rows
        return HuberResult(location, loss, int(data.rows), total, 1, meter.peak)

    #: Pass 1 also histograms the float32 bits (`_radix`): 2 passes in all.
    radix = True
    #: The stages a Beam pipeline unrolls by default: typical data take 2
    #: passes from a budget of 8 MiB up, 3 at 2 MiB, 5 at 1 MiB.
    default_max_passes = 5

    def finish(self, first, passes: int, peak_bytes: int) -> HuberResult:
        return HuberResult(self.location, self.loss_sum / first.rows, first.rows,
                           first.weight, passes, peak_bytes)
