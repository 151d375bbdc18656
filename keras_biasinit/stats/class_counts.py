"""Weighted class counts, streamed and mergeable.

Counts integer class ids (`np.bincount`) or sums label vectors column by column
(one-hot, soft or multi-label targets). Frequencies, positive rates and the
cross-entropies a constant prediction leaves follow from the counts alone.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Optional

import numpy as np

from keras_biasinit.stats._checks import check_finite, check_weights
from keras_biasinit.stats.moments import _column_sums
from keras_biasinit.stats.state import Arrays
from keras_biasinit.stats.state import scalar

_KINDS = (None, "ids", "vectors")


#: Without `num_classes`, ids up to this bound are counted (the largest id
#: sets the number of classes); a larger id is almost surely not a class index.
MAX_INFERRED_CLASSES = 1 << 24


@dataclasses.dataclass(frozen=True)
class CountsResult:
    """Weighted counts per class (or label sums per column), over `rows` rows
    of total weight `weight`; `kind` is "ids" or "vectors"."""

    counts: np.ndarray
    rows: int
    weight: float
    kind: str

    def cross_entropy(self, priors: np.ndarray) -> float:
        """Categorical cross-entropy of predicting `priors`, as Keras reports
        it: `-sum_i counts_i log priors_i / rows` (the default reduction
        divides the weighted sum by rows, not by weight)."""
        return cross_entropy(self.counts, priors) / self.rows

    def binary_cross_entropy(self, rates: np.ndarray) -> float:
        """Binary cross-entropy of predicting `rates` per output, averaged
        over outputs, as Keras reports it (divided by rows)."""
        per_output = binary_cross_entropy(self.counts / self.weight, rates)
        return float((per_output * self.weight).mean() / self.rows)


class ClassCounts:
    """Weighted count of each class (or sum of each label column).

    A state of the statistics protocol (`keras_biasinit.stats.state`): `update`
    takes integer ids `(n,)` / `(n, 1)` or label vectors `(n, k)`.

    Args:
        num_classes: number of classes or label columns, if known. Defaults to
            None: the largest id seen plus one (or the label width).

    Example:

    >>> c = ClassCounts(num_classes=3).update_ids(np.array([0, 2, 2]))
    >>> c.counts.tolist(), c.weight
    ([1.0, 0.0, 2.0], 3.0)
    """

    def __init__(self, num_classes: Optional[int] = None) -> None:
        if num_classes is not None and (
            isinstance(num_classes, bool) or int(num_classes) != num_classes
            or num_classes < 1
        ):
            raise ValueError(
                "`num_classes` must be a positive integer or None. "
                f"Received: num_classes={num_classes!r}"
            )
        self.num_classes = None if num_classes is None else int(num_classes)
        self.counts = np.zeros(self.num_classes or 0)
        self.rows = 0
        self.weight = 0.0
        self.kind: Optional[str] = None  # "ids" or "vectors", once seen

    def update(self, values: np.ndarray, weights: Optional[np.ndarray] = None):
        """Adds a batch: integer ids of shape `(n,)` / `(n, 1)`, else vectors."""
        values = np.asarray(values)
        if values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1):
            return self.update_ids(values, weights)
        return self.update_vectors(values, weights)

    def update_ids(self, ids: np.ndarray, weights: Optional[np.ndarray] = None):
        """Adds a batch of integer class ids of shape `(n,)` or `(n, 1)`."""
        ids = np.asarray(ids)
        if ids.ndim == 2 and ids.shape[1] == 1:
            ids = ids[:, 0]
        if ids.ndim != 1:
            raise ValueError(
                f"Class ids must have shape (n,) or (n, 1); received {ids.shape}."
            )
        w = check_weights(weights, ids.shape[0])
        if not np.issubdtype(ids.dtype, np.integer):
            check_finite(ids.astype(np.float64, copy=False))
            as_int = ids.astype(np.int64)
            if (as_int != ids).any():
                raise ValueError(
                    "Class ids must be whole numbers; found fractional values. "
                    "For soft labels pass label vectors of shape (n, num_classes)."
                )
            ids = as_int
        if ids.size:
            low, high = int(ids.min()), int(ids.max())
            limit = self.num_classes
            if low < 0 or (limit is not None and high >= limit):
                bad = low if low < 0 else high
                raise ValueError(
                    f"Found class id {bad}, outside [0, {limit if limit else 'inf'})"
                    ". Pass the right `num_classes=`, or remap the labels to "
                    "0..num_classes-1."
                )
            if limit is None and high >= MAX_INFERRED_CLASSES:
                raise ValueError(
                    f"Found class id {high}: without `num_classes` that means "
                    f"{high + 1} classes, which is likely a mistake (an id that is "
                    "not a class index, e.g. a raw label or hash). Pass "
                    "`num_classes=` if it is right, or remap the labels to "
                    "0..num_classes-1."
                )
        batch = np.bincount(ids, weights=w, minlength=self.num_classes or 0)
        self._set_kind("ids", None)
        self._add(batch, ids.shape[0], ids.shape[0] if w is None else float(w.sum()))
        return self

    def update_vectors(self, labels: np.ndarray, weights: Optional[np.ndarray] = None):
        """Adds a batch of label vectors `(n, k)` (one-hot, soft or multi-label)."""
        y = np.asarray(labels)
        if y.ndim == 1:
            y = y[:, None]
        y = y.reshape(y.shape[0], int(np.prod(y.shape[1:])))  # -1 fails on 0 rows
        # One min and one max pass over the raw values check both the range
        # and finiteness (NaN propagates through them, +-inf is out of range);
        # separate isfinite / < 0 / > 1 passes on a float64 copy made the pass
        # 2x slower than the pipeline with 1000 labels a row.
        if y.size and not (np.min(y) >= 0 and np.max(y) <= 1):
            check_finite(y.astype(np.float64))
            raise ValueError(
                "Label vectors must hold values in [0, 1] (one-hot, soft or "
                "multi-label targets). For integer class ids use shape (n,)."
            )
        if self.num_classes is not None and y.shape[1] != self.num_classes:
            raise ValueError(
                f"The labels have {y.shape[1]} columns but num_classes="
                f"{self.num_classes}. Pass the matching `num_classes=` (or leave "
                "it None)."
            )
        w = check_weights(weights, y.shape[0])
        y = y.astype(np.float64, copy=False)
        batch = _column_sums(y) if w is None else w @ y  # float64
        self._set_kind("vectors", y.shape[1])
        self._add(batch, y.shape[0], y.shape[0] if w is None else float(w.sum()))
        return self

    def merge(self, other: "ClassCounts") -> "ClassCounts":
        """Combines `other` into this state."""
        if other.kind is not None:
            self._set_kind(other.kind, other.counts.shape[0]
                           if other.kind == "vectors" else None)
        self._add(other.counts, other.rows, other.weight)
        return self

    def result(self) -> CountsResult:
        """The counts; a ValueError if no row of positive weight was seen."""
        if self.weight <= 0:
            raise ValueError(
                "All sample weights are 0 (or the data is empty): there are no "
                "classes to count."
            )
        return CountsResult(self.counts.copy(), self.rows, self.weight, self.kind)

    def to_arrays(self) -> Arrays:
        return {
            "counts": self.counts,
            "rows": scalar(self.rows),
            "weight": scalar(self.weight),
            "kind": scalar(_KINDS.index(self.kind)),
        }

    def from_arrays(self, arrays: Arrays) -> "ClassCounts":
        state = copy.copy(self)  # the same configuration (and subclass)
        state.counts = np.asarray(arrays["counts"], np.float64).copy()
        state.rows = int(arrays["rows"][0])
        state.weight = float(arrays["weight"][0])
        state.kind = _KINDS[int(arrays["kind"][0])]
        return state

    def _set_kind(self, kind: str, width: Optional[int]) -> None:
        """Class ids and label vectors cannot mix; label widths cannot change."""
        if self.kind is not None and self.kind != kind:
            raise ValueError(
                f"Some batches hold class ids and others label vectors ({kind} "
                f"after {self.kind}). Use one form for every batch, e.g. ids of "
                "shape (n,) or one-hot vectors of shape (n, num_classes)."
            )
        if kind == "vectors" and self.kind == kind and width != self.counts.shape[0]:
            raise ValueError(
                f"The label vectors have {width} columns in this batch but "
                f"{self.counts.shape[0]} before. Every batch needs the same width."
            )
        self.kind = kind

    def _add(self, counts: np.ndarray, rows: int, weight: float) -> None:
        if counts.shape[0] > self.counts.shape[0]:
            counts, self.counts = self.counts, counts.astype(np.float64)
        self.counts[: counts.shape[0]] += counts
        self.rows += rows
        self.weight += weight


def cross_entropy(target: np.ndarray, predicted: np.ndarray) -> float:
    """`-sum(t * log q)`, with `0 * log 0 = 0`: the loss of predicting `q`."""
    target = np.asarray(target, dtype=np.float64)
    mask = target > 0
    return float(-np.sum(target[mask] * np.log(np.asarray(predicted)[mask])))


def binary_cross_entropy(target: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Per column `-(t log q + (1 - t) log(1 - q))`, with `0 * log 0 = 0`."""
    t = np.asarray(target, dtype=np.float64)
    q = np.asarray(predicted, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = np.where(t > 0, t * np.log(q), 0.0)
        neg = np.where(t < 1, (1 - t) * np.log1p(-q), 0.0)
    return -(pos + neg)
