"""The distinct label values of each column with their summed weights.

What the binary focal loss of a constant prediction needs (it is not linear in
the label, so the mean label is not enough): two values a column for hard
labels, also under `label_smoothing`; see `keras_biasinit.stats.focal`.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from keras_biasinit.stats._checks import as_columns
from keras_biasinit.stats._checks import check_weights


class LabelValues:
    """Distinct label values of each column with their summed weights.

    Mergeable; holds at most `max_values` distinct values per column (soft
    labels with many distinct values need more and are an error that says so).

    Example:

    >>> s = LabelValues().update(np.array([[0.0], [1.0], [1.0]]))
    >>> values, weights = s.result()[0]
    >>> values.tolist(), weights.tolist()
    ([0.0, 1.0], [1.0, 2.0])
    """

    def __init__(self, max_values: int = 1 << 16) -> None:
        self.max_values = int(max_values)
        self.rows = 0
        self.weight = 0.0
        self._columns: Optional[List[Tuple[np.ndarray, np.ndarray]]] = None

    def update(self, values: np.ndarray, weights: Optional[np.ndarray] = None):
        """Adds a batch of labels `(n,)` or `(n, d)` with weights `(n,)`."""
        y = as_columns(values)
        w = check_weights(weights, y.shape[0])
        w_all = np.ones(y.shape[0]) if w is None else w
        batch = LabelValues(self.max_values)
        batch.rows, batch.weight = y.shape[0], float(w_all.sum())
        batch._columns = []
        for j in range(y.shape[1]):
            unique, inverse = np.unique(y[:, j], return_inverse=True)
            batch._columns.append(
                (unique, np.bincount(inverse, weights=w_all, minlength=unique.size))
            )
        return self.merge(batch)

    def merge(self, other: "LabelValues") -> "LabelValues":
        """Combines `other` into this state."""
        if other._columns is None:
            return self
        if self._columns is None:
            self._columns = [(v.copy(), w.copy()) for v, w in other._columns]
        elif len(other._columns) != len(self._columns):
            raise ValueError(
                f"Batches have different widths: {len(self._columns)} label "
                f"columns, then {len(other._columns)}. Every batch must have the "
                "same target shape."
            )
        else:
            merged = []
            for (v1, w1), (v2, w2) in zip(self._columns, other._columns):
                unique, inverse = np.unique(np.concatenate([v1, v2]),
                                            return_inverse=True)
                merged.append((unique, np.bincount(
                    inverse, weights=np.concatenate([w1, w2]), minlength=unique.size
                )))
            self._columns = merged
        for values, _ in self._columns:
            if values.size > self.max_values:
                raise ValueError(
                    f"The labels hold more than {self.max_values} distinct values in "
                    "one column; the exact focal loss of soft labels needs each "
                    "distinct value. Round the soft labels (e.g. to 1e-4) first."
                )
        self.rows += other.rows
        self.weight += other.weight
        return self

    def to_arrays(self) -> Dict[str, np.ndarray]:
        columns = self._columns or []
        return {
            "rows": np.asarray([self.rows]), "weight": np.asarray([self.weight]),
            "sizes": np.asarray([v.size for v, _ in columns], np.int64),
            "values": np.concatenate([v for v, _ in columns] or [np.zeros(0)]),
            "weights": np.concatenate([w for _, w in columns] or [np.zeros(0)]),
        }

    def from_arrays(self, arrays: Dict[str, np.ndarray]) -> "LabelValues":
        state = LabelValues(self.max_values)
        state.rows = int(arrays["rows"][0])
        state.weight = float(arrays["weight"][0])
        sizes = np.asarray(arrays["sizes"], np.int64)
        if sizes.size:
            ends = np.cumsum(sizes)[:-1]
            values = np.split(np.asarray(arrays["values"], np.float64), ends)
            weights = np.split(np.asarray(arrays["weights"], np.float64), ends)
            state._columns = list(zip(values, weights))
        return state

    def result(self) -> List[Tuple[np.ndarray, np.ndarray]]:
        """Per column, the sorted distinct values and their summed weights."""
        if self._columns is None:
            raise ValueError("No labels were seen: the data is empty.")
        return [(v.copy(), w.copy()) for v, w in self._columns]
