"""Weighted mean and variance per column, streamed, mergeable.

The optimal constant under mean squared error is the (weighted) mean; the loss
it leaves is the variance. Batches are combined with the pairwise update of
Chan, Golub & LeVeque (1979), so the result does not depend on how the data is
split into batches, and no batch is held after it is seen. (The mean of `x**2`
alone, what `HeScaled` calibrates to, is `second_moment.SecondMoment`.)
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from keras_biasinit.stats._checks import as_columns
from keras_biasinit.stats._checks import check_finite
from keras_biasinit.stats._checks import check_finite_sum
from keras_biasinit.stats._checks import check_weights
from keras_biasinit.stats.state import Arrays
from keras_biasinit.stats.state import scalar


def _column_sums(y: np.ndarray) -> np.ndarray:
    """Column sums of a float64 `(rows, columns)` matrix, in one thread.

    NumPy's own sum for one column or many; for a few columns (where it runs
    3 ns a value) a BLAS `ones @ y`. Multithreaded BLAS competes with the
    tf.data threads for the cores: a pass using it for every sum was at times
    10x slower than one using NumPy's.
    """
    if y.shape[1] == 1:
        return np.add.reduce(y.reshape(-1), keepdims=True)  # pairwise
    if y.shape[1] >= 64:
        return np.add.reduce(y, axis=0)
    return np.ones(y.shape[0]) @ y


@dataclasses.dataclass(frozen=True)
class MomentsResult:
    """Per column: weighted mean, variance and `m2 = sum w (y - mean)^2`."""

    mean: np.ndarray
    variance: np.ndarray
    m2: np.ndarray
    rows: int
    weight: float

    @property
    def mean_squared_error(self) -> np.ndarray:
        """The loss of predicting the mean, as Keras reports it: `m2 / rows`
        (the default reduction divides the weighted sum by rows, not weight)."""
        return self.m2 / self.rows


def _vector(arrays: Arrays, name: str) -> Optional[np.ndarray]:
    value = np.asarray(arrays[name], np.float64)
    return value.copy() if value.size else None


class Moments:
    """Count, total weight, mean and central second moment of each column.

    A state of the statistics protocol (`keras_biasinit.stats.state`).

    Example:

    >>> m = Moments().update(np.array([1.0, 2.0])).update(np.array([6.0]))
    >>> float(m.mean[0]), float(m.variance[0])
    (3.0, 4.666666666666667)
    """

    def __init__(self) -> None:
        self.rows = 0
        self.weight = 0.0
        self.mean: Optional[np.ndarray] = None
        self.m2: Optional[np.ndarray] = None  # sum of w * (y - mean)^2

    def update(self, values: np.ndarray, weights: Optional[np.ndarray] = None):
        """Adds one batch: `values` of shape `(n,)` or `(n, ...)`, `weights` `(n,)`."""
        raw = np.asarray(values)
        # Few passes over the batch and one allocation: NaN/inf are caught by
        # the sums (a separate isfinite pass and y.mean(axis=0), slow for few
        # columns, made a pre-batched pass 4-10x slower than the pipeline).
        y = as_columns(raw, check=False)
        own = raw.dtype != np.float64  # `y` is a converted copy: reuse it
        w = check_weights(weights, y.shape[0])
        batch = Moments()
        batch.rows = y.shape[0]
        with np.errstate(over="ignore", invalid="ignore"):  # checked next
            if w is None:
                batch.weight = float(y.shape[0])
                batch.mean = _column_sums(y) / batch.weight
            else:
                batch.weight = float(w.sum())
                if batch.weight <= 0:
                    check_finite(y)
                    batch.mean = np.zeros(y.shape[1])
                    batch.m2 = np.zeros(y.shape[1])
                    return self.merge(batch)
                batch.mean = (w @ y) / batch.weight
        check_finite_sum(batch.mean, y)
        with np.errstate(over="ignore", invalid="ignore"):  # checked next
            centred = np.subtract(y, batch.mean, out=y if own else None)
            # Square in place and sum: 1.2x (1000 columns) to 5x (4 columns)
            # faster than einsum("ij,ij->j").
            squares = np.multiply(centred, centred, out=centred)
            batch.m2 = _column_sums(squares) if w is None else w @ squares
        check_finite_sum(batch.m2, np.zeros(0))  # squares overflow float64
        return self.merge(batch)

    def merge(self, other: "Moments") -> "Moments":
        """Combines `other` into this state (exact up to float rounding)."""
        if other.mean is None:
            return self
        if self.mean is None:
            self.rows, self.weight = other.rows, other.weight
            self.mean, self.m2 = other.mean.copy(), other.m2.copy()
            return self
        if other.mean.shape != self.mean.shape:
            raise ValueError(
                f"Batches have different widths: {self.mean.shape[0]} columns, then "
                f"{other.mean.shape[0]}. Every batch must have the same target shape."
            )
        total = self.weight + other.weight
        self.rows += other.rows
        if other.weight == 0:
            return self
        delta = other.mean - self.mean
        share = other.weight / total
        self.mean = self.mean + delta * share
        self.m2 = self.m2 + other.m2 + delta * delta * self.weight * share
        self.weight = total
        return self

    def result(self) -> MomentsResult:
        self.check_nonempty()
        return MomentsResult(self.mean.copy(), self.variance, self.m2.copy(),
                             self.rows, self.weight)

    def to_arrays(self) -> Arrays:
        empty = np.zeros(0)
        return {
            "rows": scalar(self.rows),
            "weight": scalar(self.weight),
            "mean": empty if self.mean is None else self.mean,
            "m2": empty if self.m2 is None else self.m2,
        }

    def from_arrays(self, arrays: Arrays) -> "Moments":
        state = Moments()
        state.rows = int(arrays["rows"][0])
        state.weight = float(arrays["weight"][0])
        state.mean, state.m2 = _vector(arrays, "mean"), _vector(arrays, "m2")
        return state

    @property
    def variance(self) -> np.ndarray:
        """Weighted population variance per column, `m2 / weight`."""
        self.check_nonempty()
        return self.m2 / self.weight

    @property
    def second_moment(self) -> np.ndarray:
        """Weighted mean of `y**2` per column, `variance + mean**2`."""
        return self.variance + self.mean * self.mean

    def check_nonempty(self) -> None:
        if self.mean is None or self.weight <= 0:
            raise ValueError(
                "No data with positive weight was seen: the data is empty or all "
                "its sample weights are 0."
            )
