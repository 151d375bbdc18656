"""The log-cosh location: the constant that minimises `keras.losses.LogCosh`.

`log cosh(r) = r + softplus(-2 r) - log 2` (as Keras computes it, without
overflow) is smooth and strictly convex, so the best constant `c` of
`sum_i w_i log cosh(c - y_i)` is the unique root of its derivative,
`sum_i w_i tanh(c - y_i)`, which is increasing in `c` and changes sign
between the smallest and the largest value. Bisection on that bracket gives
it to float64 precision. It lies between the median (far outliers count by
their sign only, like absolute error) and the mean (near values count
linearly, like squared error).
"""

from __future__ import annotations

from typing import Optional

import numpy as np


def log_cosh(residual: np.ndarray) -> np.ndarray:
    """Elementwise `log(cosh(r))`, stable for large `|r|`."""
    r = np.asarray(residual, dtype=np.float64)
    return r + np.logaddexp(0.0, -2.0 * r) - np.log(2.0)


def log_cosh_location(y: np.ndarray, w: Optional[np.ndarray] = None) -> np.ndarray:
    """The root of `sum_i w_i tanh(c - y_ij)` for each column `j` of `y`.

    Example:

    >>> float(log_cosh_location(np.array([[0.0], [1.0], [2.0]]))[0])
    1.0
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if w is not None:
        keep = np.asarray(w) > 0
        y, w = y[keep], np.asarray(w, dtype=np.float64)[keep]
    if y.shape[0] == 0:
        raise ValueError("All sample weights are 0: there is nothing to fit.")
    result = np.empty(y.shape[1])
    for j in range(y.shape[1]):
        low, high = float(y[:, j].min()), float(y[:, j].max())
        for _ in range(200):
            mid = (low + high) / 2.0
            if mid in (low, high):
                break
            t = np.tanh(mid - y[:, j])
            if (t.sum() if w is None else w @ t) < 0:
                low = mid
            else:
                high = mid
        result[j] = (low + high) / 2.0
    return result
