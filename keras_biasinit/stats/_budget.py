"""The memory budget of the exact order statistics, and what fits in it.

`memory_budget` bytes cover what the statistics hold themselves: the buffered
batches of the in-memory path and its solve's temporaries, the histograms of a
binning pass (a quarter of the budget) and reading them, the values a collect
pass gathers (a quarter) and the temporaries of one chunk of rows (an eighth;
batches are processed in chunks of rows so that a wide batch does not exceed
it). It does not cover the batch the input pipeline hands over.
`tests/stats/test_memory_budget.py` checks the traced peak against the budget.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DEFAULT_MEMORY_BUDGET = 256 * 2**20

#: Most bins per window, histogram and column (more buys little: a bin then
#: holds about rows / 32768 values).
MAX_BINS = 2**15

# Bytes held per bin, window and column (count, weight, sum, min key, max key)
# for the two histograms; per collected value (column, key, weight) including
# the temporaries of merging duplicates; per element of a chunk of rows.
BIN_BYTES = 2 * 40
ENTRY_BYTES = 160
CHUNK_BYTES_PER_ELEMENT = 256


class MemoryMeter:
    """Bytes held by the statistics' own buffers: current and peak."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.current = 0
        self.peak = 0

    def hold(self, nbytes: int) -> None:
        self.current += int(nbytes)
        self.peak = max(self.peak, self.current)

    def release(self, nbytes: int) -> None:
        self.current -= int(nbytes)


def check_budget(memory_budget: Any) -> int:
    if (
        isinstance(memory_budget, bool)
        or not isinstance(memory_budget, (int, np.integer))
        or memory_budget <= 0
    ):
        raise ValueError(
            "`memory_budget` must be a positive integer number of bytes, e.g. "
            f"`256 * 2**20`. Received: memory_budget={memory_budget!r}"
        )
    return int(memory_budget)


def minimum_budget(columns: int) -> int:
    """The smallest `memory_budget` the multi-pass path can honour."""
    return max(32 * 2**10, 4096 * columns)


def chunk_rows(budget: int, columns: int) -> int:
    """Rows per chunk so that a chunk's temporaries fit an eighth of the budget."""
    return max(1, budget // 8 // CHUNK_BYTES_PER_ELEMENT // columns)


def bins_per_window(budget: int, columns: int, windows: int = 2) -> int:
    """Bins per window, histogram kind and column that fit a quarter of the
    budget (reading them afterwards, one column at a time, takes about as much
    again)."""
    per_bin = BIN_BYTES * windows * columns
    return int(min(MAX_BINS, max(4, budget // 4 // per_bin)))


def analysis_block(budget: int) -> int:
    """Candidate points evaluated at once when reading a histogram."""
    return max(16, budget // 16 // 160)


def analysis_bytes(budget: int, windows: int, bins: int) -> int:
    """Memory for reading one column's histograms after a pass (its bins,
    prefix sums and candidate points, these in blocks of `analysis_block`)."""
    return windows * bins * 100 + analysis_block(budget) * 160


def collect_capacity(budget: int) -> int:
    """Distinct values a collect pass may hold, over all columns: a quarter of
    the budget (buffers for twice as many, and the merging temporaries)."""
    return max(64, budget // 4 // ENTRY_BYTES)
