"""A bounded in-memory buffer of one output's batches, for exact solves.

The log-cosh root (`keras_biasinit.stats.log_cosh`) is solved from every
value of its output, kept here within `memory_budget` bytes; over budget is a
ValueError that names the options. (The median, quantile and Huber location
stay exact beyond memory with a few passes instead:
`keras_biasinit.stats._driver`.) A state of the statistics protocol, so the
buffers of several workers merge into the union's (within the budget too).
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from keras_biasinit.stats._checks import as_columns
from keras_biasinit.stats._checks import check_weights
from keras_biasinit.stats._budget import DEFAULT_MEMORY_BUDGET
from keras_biasinit.stats.state import Arrays
from keras_biasinit.stats.state import scalar


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

    def to_arrays(self) -> Arrays:
        columns = self._ys[0].shape[1] if self._ys else 0
        y, w = self.arrays() if self._ys else (np.zeros((0, 0)), None)
        return {"y": y, "w": np.zeros(0) if w is None else w,
                "columns": scalar(columns), "weighted": scalar(int(w is not None))}

    def from_arrays(self, arrays: Arrays) -> "ValueBuffer":
        state = ValueBuffer(self.memory_budget, self.name)
        columns = int(arrays["columns"][0])
        if columns:
            y = np.asarray(arrays["y"], np.float64).reshape(-1, columns)
            weighted = bool(arrays["weighted"][0])
            state._add(y, np.asarray(arrays["w"], np.float64) if weighted else None)
        return state

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
                f"{self.memory_budget} bytes; its exact best constant (the "
                "log-cosh root) is solved from all of them in memory. Pass a "
                "larger `memory_budget=`, or `steps=` to read fewer batches (or, "
                "for a robust loss that stays exact beyond memory, use Huber)."
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
