"""Input checks shared by the statistics (pure NumPy)."""

from __future__ import annotations

from typing import Optional

import numpy as np


def as_columns(values: np.ndarray, check: bool = True) -> np.ndarray:
    """Returns `values` as a float64 `(rows, columns)` matrix, checked finite.

    `check=False` skips the finiteness pass for callers that catch NaN/inf
    through their own sums (see `check_finite_sum`).
    """
    y = np.asarray(values)
    if y.ndim == 0:
        y = y.reshape(1, 1)
    y = y.reshape(y.shape[0], -1)
    if y.dtype != np.float64:
        y = y.astype(np.float64)
    if check:
        check_finite(y)
    return y


def check_finite(y: np.ndarray) -> None:
    """Raises if `y` holds NaN/inf, naming how many and the first one's row.

    The row is the row of the batch (axis 0); for an array read whole, the
    batch is the array, so it is the row of the data.
    """
    finite = np.isfinite(y)
    if not finite.all():
        bad = int(np.size(y) - np.count_nonzero(finite))
        first = np.unravel_index(int(np.argmin(finite.reshape(-1))), np.shape(y))
        row = int(first[0]) if first else 0
        raise ValueError(
            f"The data (targets, or features for HeScaled) contain {bad} NaN or "
            f"inf value(s), the first in row {row} of the batch "
            f"({float(np.asarray(y)[first])}; for an array read whole, the batch "
            "is the array). Remove or impute them in the pipeline (e.g. "
            "`dataset.filter(...)` or `np.nan_to_num`) before computing an "
            "initializer from them."
        )


def check_finite_sum(total: np.ndarray, y: np.ndarray) -> None:
    """Raises if `total`, a sum over `y`, is not finite: `y` holds NaN/inf (the
    error of `check_finite`), or finite values whose sum overflows float64."""
    if not np.isfinite(total).all():
        check_finite(y)
        raise ValueError(
            "The data (targets, or features for HeScaled) are too large: their "
            "sum overflows float64. Rescale them (e.g. divide by a constant) "
            "before computing an initializer from them."
        )


def check_weights(weights: Optional[np.ndarray], rows: int) -> Optional[np.ndarray]:
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape[0] != rows:
        raise ValueError(
            f"Got {w.shape[0]} sample weights for {rows} rows; pass one weight per "
            "row."
        )
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("Sample weights must be finite and non-negative.")
    return w
