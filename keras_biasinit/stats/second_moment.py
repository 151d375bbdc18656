"""The weighted mean of `x**2` over all entries, streamed and mergeable.

What `HeScaled` calibrates a kernel's scale to: one number, the second moment
of a layer's inputs. A sum of squares needs no centring, so this costs a
fraction of `Moments` (which keeps each column's mean and variance).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from keras_biasinit.stats._checks import as_columns
from keras_biasinit.stats._checks import check_finite_sum
from keras_biasinit.stats._checks import check_weights
from keras_biasinit.stats.state import Arrays
from keras_biasinit.stats.state import scalar


@dataclasses.dataclass(frozen=True)
class SecondMomentResult:
    """`mean_square`, the weighted mean of `x**2` over all entries."""

    mean_square: float
    rows: int
    weight: float
    features: int


class SecondMoment:
    """Weighted mean of `x**2` over all entries of each row, streamed and mergeable.

        mean_square = sum_r w_r sum_i x_ri^2 / (sum_r w_r * features)

    over rows `r` with sample weights `w_r` (1 when none) and the `features`
    entries `i` of a row: the mean over features of each one's `E_w[x_i^2]`,
    one number. A sum of squares needs no centring, so a batch costs one
    conversion to float64, one squaring in place and one pairwise sum
    (`Moments`, which also centres, costs 5-10x more on few columns). The sum
    is float64; NaN/inf make it non-finite and are reported as `Moments`
    reports them.

    A state of the statistics protocol (`keras_biasinit.stats.state`).

    Example:

    >>> s = SecondMoment().update(np.array([[1.0, 2.0]]))
    >>> s.update(np.array([[3.0, 0.0]])).mean_square  # (1 + 4 + 9 + 0) / 4
    3.5
    """

    def __init__(self) -> None:
        self.rows = 0
        self.weight = 0.0
        self.features: Optional[int] = None  # entries per row, once seen
        self.total = 0.0  # sum_r w_r sum_i x_ri^2

    def update(self, values: np.ndarray, weights: Optional[np.ndarray] = None):
        """Adds one batch: `values` of shape `(n,)` or `(n, ...)`, `weights` `(n,)`."""
        raw = np.asarray(values)
        y = as_columns(raw, check=False)
        w = check_weights(weights, y.shape[0])
        batch = SecondMoment()
        batch.rows, batch.features = y.shape
        with np.errstate(over="ignore", invalid="ignore"):  # checked next
            squares = np.multiply(y, y, out=y if raw.dtype != np.float64 else None)
            if w is None:
                batch.weight = float(y.shape[0])
                # NumPy's pairwise sum, not a BLAS dot: multithreaded BLAS
                # competes with the tf.data threads for the cores and made
                # some passes 10x slower.
                batch.total = float(np.add.reduce(squares.reshape(-1)))
            else:
                batch.weight = float(w.sum())
                batch.total = float(np.sum(w @ squares))
        if not np.isfinite(batch.total):
            # NaN/inf in the input (even at weight 0), or squares that overflow.
            check_finite_sum(np.array(batch.total), as_columns(raw, check=False))
        return self.merge(batch)

    def merge(self, other: "SecondMoment") -> "SecondMoment":
        """Combines `other` into this state (exact up to float rounding)."""
        if other.features is None:
            return self
        if self.features is not None and other.features != self.features:
            raise ValueError(
                f"Batches have different widths: {self.features} columns, then "
                f"{other.features}. Every batch must have the same target shape."
            )
        self.features = other.features
        self.rows += other.rows
        self.weight += other.weight
        self.total += other.total
        return self

    def result(self) -> SecondMomentResult:
        return SecondMomentResult(self.mean_square, self.rows, self.weight,
                                  self.features)

    def to_arrays(self) -> Arrays:
        return {
            "rows": scalar(self.rows),
            "weight": scalar(self.weight),
            "features": scalar(-1 if self.features is None else self.features),
            "total": scalar(self.total),
        }

    def from_arrays(self, arrays: Arrays) -> "SecondMoment":
        state = SecondMoment()
        state.rows = int(arrays["rows"][0])
        state.weight = float(arrays["weight"][0])
        features = int(arrays["features"][0])
        state.features = None if features < 0 else features
        state.total = float(arrays["total"][0])
        return state

    @property
    def mean_square(self) -> float:
        """`total / (weight * features)`: the weighted mean of `x**2`."""
        if not self.features or self.weight <= 0:
            raise ValueError(
                "No data with positive weight was seen: the data is empty or all "
                "its sample weights are 0."
            )
        return self.total / (self.weight * self.features)
