"""Exact weighted median per column: the optimal constant under absolute error.

The weighted median minimises `sum_i w_i |y_i - b|`. Where the minimiser is an
interval (the cumulative weight reaches exactly half of the total at a data
point), the midpoint of that interval is returned; with unit weights this is
exactly `np.median` (the mean of the two middle values of an even count).
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Optional, Tuple

import numpy as np

from keras_biasinit.stats._checks import as_columns, check_weights

Batch = Tuple[np.ndarray, Optional[np.ndarray]]


@dataclasses.dataclass
class MedianResult:
    """Per column: the median and `sum_i w_i |y_i - median| / rows`."""

    median: np.ndarray
    mean_absolute_deviation: np.ndarray
    rows: int
    weight: float


def weighted_median_of_arrays(
    y: np.ndarray, w: Optional[np.ndarray] = None
) -> np.ndarray:
    """Exact weighted median of each column of `y` (rows on axis 0)."""
    y = np.asarray(y, dtype=np.float64)
    if w is None:
        return np.median(y, axis=0)
    keep = w > 0
    y, w = y[keep], w[keep]
    result = np.empty(y.shape[1])
    for j in range(y.shape[1]):
        order = np.argsort(y[:, j], kind="stable")
        values, cum = y[order, j], np.cumsum(w[order])
        half = cum[-1] / 2
        i = int(np.searchsorted(cum, half, side="left"))
        if cum[i] == half and i + 1 < values.shape[0]:
            result[j] = (values[i] + values[i + 1]) / 2
        else:
            result[j] = values[i]
    return result


def weighted_median(batches: Iterable[Batch]) -> MedianResult:
    """Reads all batches and returns the exact weighted median per column."""
    ys, ws, weighted = [], [], False
    for values, weights in batches:
        y = as_columns(values)
        w = check_weights(weights, y.shape[0])
        ys.append(y)
        ws.append(w)
        weighted |= w is not None
    if not ys:
        raise ValueError("The data is empty: there is no row to take a median of.")
    y = np.concatenate(ys)
    w = (
        np.concatenate([np.ones(a.shape[0]) if b is None else b for a, b in zip(ys, ws)])
        if weighted
        else None
    )
    total = float(y.shape[0] if w is None else w.sum())
    if total <= 0:
        raise ValueError("All sample weights are 0: there is nothing to fit.")
    median = weighted_median_of_arrays(y, w)
    deviation = np.abs(y - median)
    mad = (deviation.sum(axis=0) if w is None else w @ deviation) / y.shape[0]
    return MedianResult(median, mad, int(y.shape[0]), total)
