"""Exact weighted median per column, in bounded memory: the q = 0.5 quantile.

The weighted median minimises `sum_i w_i |y_i - b|`: the optimal constant under
absolute error. Where the minimiser is an interval (the cumulative weight
reaches exactly half of the total at a data point), the midpoint of that
interval is returned; with unit weights this is exactly `np.median` (the mean of
the two middle values of an even count). The loss it leaves is the mean
absolute deviation `sum_i w_i |y_i - median| / rows` (rows, not weights:
Keras's default reduction). How it is computed, in one pass or a few, within
`memory_budget`: see `keras_biasinit.stats.quantile`.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Optional, Tuple

import numpy as np

from keras_biasinit.stats._budget import DEFAULT_MEMORY_BUDGET
from keras_biasinit.stats.quantile import in_memory_bytes  # noqa: F401
from keras_biasinit.stats.quantile import weighted_quantile
from keras_biasinit.stats.state import Reducer

Batch = Tuple[np.ndarray, Optional[np.ndarray]]


@dataclasses.dataclass
class MedianResult:
    """Per column: the median and `sum_i w_i |y_i - median| / rows`.

    `passes` is the number of passes read over the data; `peak_bytes` the peak
    of the memory this computation held for its own buffers, never more than
    the budget.
    """

    median: np.ndarray
    mean_absolute_deviation: np.ndarray
    rows: int
    weight: float
    passes: int = 1
    peak_bytes: int = 0


def weighted_median(
    batches: Iterable[Batch], *, memory_budget: int = DEFAULT_MEMORY_BUDGET,
    reducer: Optional[Reducer] = None,
) -> MedianResult:
    """Exact weighted median per column, in at most `memory_budget` bytes.

    Args:
        batches: an iterable of `(values, weights)` NumPy pairs (values `(n,)`
            or `(n, ...)`, weights `(n,)` or None), e.g. a
            `keras_biasinit.data.Batches`. Data larger than the budget are read
            a few times, so they must be re-iterable.
        memory_budget: bytes this computation may hold. Defaults to 256 MiB.
        reducer: merges each pass's state over the shards of the data (see
            `keras_biasinit.stats.state`). Defaults to None: one shard.

    Returns:
        A `MedianResult`.
    """
    r = weighted_quantile(batches, q=0.5, memory_budget=memory_budget,
                          reducer=reducer)
    return MedianResult(r.quantile, r.mean_absolute_deviation, r.rows, r.weight,
                        r.passes, r.peak_bytes)
