"""A bounded in-memory buffer of one output's batches, for exact solves.

Order statistics (the median for MAE, the weighted median for MAPE, the Huber
location, the log-cosh root) need every value. When several outputs are read
in one pass, each buffers its own values here, within `memory_budget` bytes,
and is solved exactly after the pass. Over budget is a ValueError for now:
the multi-pass states of `keras_biasinit.stats` (median, Huber) read
re-iterable data several times instead, one output at a time.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from keras_biasinit.stats._checks import as_columns
from keras_biasinit.stats._checks import check_weights
from keras_biasinit.stats._budget import DEFAULT_MEMORY_BUDGET


class ValueBuffer:
    """Holds float64 `(rows, columns)` values and their weights, within a budget.

    Args:
        memory_budget: bytes the buffer may hold. Defaults to 256 MiB.
        name: what the values are for, in the error message.

    Example:

    >>> b = ValueBuffer().update(np.array([3.0, 1.0])).update(np.array([2.0]))
    >>> y, w = b.arrays()
    >>> y[:, 0].tolist(), w
    ([3.0, 1.0, 2.0], None)
    """

    def __init__(self, memory_budget: int = DEFAULT_MEMORY_BUDGET,
                 name: str = "this output") -> None:
        self.memory_budget = int(memory_budget)
        self.name = name
        self.rows = 0
        self.weight = 0.0
        self.nbytes = 0
        self._ys: List[np.ndarray] = []
        self._ws: List[Optional[np.ndarray]] = []

    def update(self, values: np.ndarray, weights: Optional[np.ndarray] = None):
        """Adds a batch: `values` `(n,)` or `(n, d)`, `weights` `(n,)` or None."""
        y = np.array(as_columns(values), dtype=np.float64, copy=True)
        w = check_weights(weights, y.shape[0])
        self._add(y, None if w is None else w.copy())
        return self

    def merge(self, other: "ValueBuffer") -> "ValueBuffer":
        """Appends `other`'s values to this buffer."""
        for y, w in zip(other._ys, other._ws):
            self._add(y, w)
        return self

    def _add(self, y: np.ndarray, w: Optional[np.ndarray]) -> None:
        if self._ys and y.shape[1] != self._ys[0].shape[1]:
            raise ValueError(
                f"Batches have different widths: {self._ys[0].shape[1]} columns, "
                f"then {y.shape[1]}. Every batch must have the same target shape."
            )
        self.nbytes += y.nbytes + (8 * y.shape[0] if w is not None else 0)
        if self.nbytes > self.memory_budget:
            raise ValueError(
                f"The values of {self.name} exceed memory_budget="
                f"{self.memory_budget} bytes; its exact best constant needs them "
                "all in one pass over several outputs. Pass a larger "
                "`memory_budget=`, `steps=` to read fewer batches, or compute this "
                "output alone with its initializer's `from_dataset` (which reads "
                "re-iterable data a few times instead)."
            )
        self._ys.append(y)
        self._ws.append(w)
        self.rows += y.shape[0]
        self.weight += float(y.shape[0] if w is None else w.sum())

    def arrays(self) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """`(values (rows, columns), weights (rows,) or None)`."""
        if not self._ys:
            raise ValueError(f"No values were seen for {self.name}: the data is empty.")
        y = np.concatenate(self._ys)
        if all(w is None for w in self._ws):
            return y, None
        w = np.concatenate([np.ones(a.shape[0]) if b is None else b
                            for a, b in zip(self._ys, self._ws)])
        return y, w
