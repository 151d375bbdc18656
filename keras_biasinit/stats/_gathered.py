"""Small batches gathered into chunks before a pass state reads them.

A `PassState` does a few dozen NumPy operations per batch (keys, region masks
and sums, exact sums, bins or collected values), each over the whole batch:
on batches of a few thousand rows the calls, not the arithmetic, cost most
(72 ns a row on 4,096-row batches against 18 ns on 131,072-row chunks, for
the Huber location's collect pass). `Gathered` copies the batches (checked
as they come, so a bad batch is still an error at its own `update`) into
one chunk of the state's `rows_per_chunk` rows and hands the state that
chunk. It merges and travels as the state does, every row handed on first;
the numbers are those of the state fed batch by batch.

Example:

>>> from keras_biasinit.stats._budget import MemoryMeter
>>> from keras_biasinit.stats._summary import Summary
>>> from keras_biasinit.stats._plan import BIN
>>> y = np.arange(100.0)
>>> first = Summary().update(y[:, None], None)  # what pass 1 saw
>>> plan = GatheredPlan(1, 4)
>>> plan.set(0, BIN, [(int(first.kmin[0]), int(first.kmax[0]))])
>>> state = plan.new_state(first, MemoryMeter(2**20), "test")
>>> for start in range(0, 100, 10):  # ten batches, read as one chunk
...     state = state.update(y[start : start + 10])
>>> state.result().bins.count[0, 0, 1].tolist()  # 4 bins even in value
[25, 25, 25, 25]
"""

from __future__ import annotations

from typing import List, Optional

import numpy as np

from keras_biasinit.stats._budget import MemoryMeter
from keras_biasinit.stats._checks import as_columns
from keras_biasinit.stats._checks import check_weights
from keras_biasinit.stats._summary import check_width
from keras_biasinit.stats._pass_state import PassState
from keras_biasinit.stats._plan import Plan
from keras_biasinit.stats.state import Arrays


#: Batches of this many rows are read as they come (the calls then cost
#: little: 22 ns a row on 32,768-row batches).
DIRECT = 2**15


class GatheredPlan(Plan):
    """A `Plan` whose pass reads its batches gathered into chunks."""

    def new_state(self, first, meter, name, hold=True) -> "Gathered":
        state = PassState(self, first, meter, name, hold=hold)
        return Gathered(state, meter, hold=hold)


class Gathered:
    """`state` (a `PassState`) fed chunks of its `rows_per_chunk` rows."""

    def __init__(self, state: PassState, meter: MemoryMeter, *,
                 hold: bool = True) -> None:
        self.state, self.meter = state, meter
        self.rows = state.rows_per_chunk
        self._ys: List[np.ndarray] = []
        self._ws: List[Optional[np.ndarray]] = []
        self._count = 0
        if hold:  # the copies, and their concatenation
            meter.hold(2 * 8 * self.rows * (state.plan.columns + 1))

    def update(self, values, weights=None) -> "Gathered":
        if np.shape(values)[:1] and np.shape(values)[0] >= min(self.rows, DIRECT):
            self._flush()  # large enough as it is
            self.state.update(values, weights)
            return self
        check_width(self.state.plan.columns, values)
        y = as_columns(values)  # float64, checked finite
        w = check_weights(weights, y.shape[0])
        if self._ys and (w is None) != (self._ws[0] is None):
            self._flush()
        # Copies: an input may reuse its arrays for the next batch.
        self._ys.append(y.copy() if np.shares_memory(y, values) else y)
        self._ws.append(None if w is None else np.array(w, np.float64))
        self._count += y.shape[0]
        if self._count >= self.rows:
            self._flush()
        return self

    def _flush(self) -> None:
        if not self._ys:
            return
        y = np.concatenate(self._ys) if len(self._ys) > 1 else self._ys[0]
        w = None if self._ws[0] is None else np.concatenate(self._ws)
        self._ys, self._ws, self._count = [], [], 0
        self.state.update(y, w)

    def merge(self, other: "Gathered") -> "Gathered":
        self._flush()
        other._flush()
        self.state.merge(other.state)
        return self

    def to_arrays(self) -> Arrays:
        self._flush()
        return self.state.to_arrays()

    def from_arrays(self, arrays: Arrays) -> "Gathered":
        return Gathered(self.state.from_arrays(arrays), self.meter, hold=False)

    def result(self):
        self._flush()
        return self.state.result()
