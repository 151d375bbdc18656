"""Exact Huber location per column: the optimal constant under the Huber loss.

With `h(r) = r^2 / 2` for `|r| <= delta` and `delta * (|r| - delta / 2)`
otherwise (`keras.losses.Huber`), the location `b` minimises
`sum_i w_i h(y_i - b)`. Its derivative,
`psi(b) = sum_i w_i clip(b - y_i, -delta, delta)`, is continuous,
non-decreasing and linear between the breakpoints `y_i +- delta`, so the root is
found exactly: evaluate `psi` at every breakpoint (prefix sums over the sorted
values), pick the segment where it changes sign, and solve the linear equation
there. When `psi` is zero on a whole interval the minimiser is not unique; the
midpoint of that interval is returned (as the median does for an even count).
Large `delta` gives the mean, small `delta` the median (Huber, 1964).
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Optional, Tuple

import numpy as np

from keras_biasinit.stats._checks import as_columns, check_weights

Batch = Tuple[np.ndarray, Optional[np.ndarray]]


@dataclasses.dataclass
class HuberResult:
    """Per column: the location and `sum_i w_i h(y_i - location) / rows`."""

    location: np.ndarray
    mean_loss: np.ndarray
    rows: int
    weight: float


def huber_loss(residual: np.ndarray, delta: float) -> np.ndarray:
    """Elementwise Huber loss, as `keras.losses.Huber` computes it."""
    r = np.abs(residual)
    return np.where(r <= delta, 0.5 * r * r, delta * r - 0.5 * delta * delta)


def _psi(points, values, cum_w, cum_wy, delta):
    """psi at each of `points` from sorted `values` and their prefix sums."""
    lo = np.searchsorted(values, points - delta, side="left")  # y < b - delta
    hi = np.searchsorted(values, points + delta, side="right")  # y <= b + delta
    w_below, w_inside = cum_w[lo], cum_w[hi] - cum_w[lo]
    wy_inside = cum_wy[hi] - cum_wy[lo]
    w_above = cum_w[-1] - cum_w[hi]
    return delta * (w_below - w_above) + points * w_inside - wy_inside


def huber_location_1d(y: np.ndarray, w: np.ndarray, delta: float) -> float:
    """Exact minimiser of `sum w h(y - b)` for one column (weights > 0)."""
    order = np.argsort(y, kind="stable")
    values, weights = y[order], w[order]
    cum_w = np.concatenate([[0.0], np.cumsum(weights)])
    cum_wy = np.concatenate([[0.0], np.cumsum(weights * values)])
    points = np.unique(np.concatenate([values - delta, values + delta]))
    psi = _psi(points, values, cum_w, cum_wy, delta)
    # Values within rounding noise of 0 count as 0 (a flat stretch of psi).
    tol = 1e-12 * delta * cum_w[-1] + 1e-12 * float(np.abs(cum_wy[-1]))
    psi = np.where(np.abs(psi) <= tol, 0.0, psi)
    first = int(np.searchsorted(psi, 0.0, side="left"))  # first psi >= 0
    if psi[first] > 0:
        # Unique root inside (points[first-1], points[first]); psi is linear there.
        a, b = points[first - 1], points[first]
        pa, pb = psi[first - 1], psi[first]
        return float(a - pa * (b - a) / (pb - pa))
    last = int(np.searchsorted(psi, 0.0, side="right")) - 1  # last psi <= 0
    return float((points[first] + points[last]) / 2)


def huber_location(batches: Iterable[Batch], *, delta: float = 1.0) -> HuberResult:
    """Reads all batches and returns the exact Huber location per column."""
    if not np.isfinite(delta) or delta <= 0:
        raise ValueError(f"`delta` must be a positive number. Received: delta={delta}")
    ys, ws = [], []
    for values, weights in batches:
        y = as_columns(values)
        ys.append(y)
        w = check_weights(weights, y.shape[0])
        ws.append(np.ones(y.shape[0]) if w is None else w)
    if not ys:
        raise ValueError("The data is empty: there is no row to fit.")
    y, w = np.concatenate(ys), np.concatenate(ws)
    total = float(w.sum())
    if total <= 0:
        raise ValueError("All sample weights are 0: there is nothing to fit.")
    keep = w > 0
    location = np.array(
        [huber_location_1d(y[keep, j], w[keep], delta) for j in range(y.shape[1])]
    )
    loss = w @ huber_loss(y - location, delta) / y.shape[0]
    return HuberResult(location, loss, int(y.shape[0]), total)
