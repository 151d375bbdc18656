"""Helpers shared by the bounded-memory statistics tests."""

import tracemalloc

import numpy as np

#: A budget small enough that the test data below take the multi-pass path.
TINY = 64 * 2**10


def split(y, w=None, size=997):
    """A list (re-iterable) of `(values, weights)` batches of `size` rows."""
    return [
        (y[i : i + size], None if w is None else w[i : i + size])
        for i in range(0, len(y), size)
    ]


def one_shot(y, w=None, size=997):
    """The same batches from a generator: readable once."""
    return (batch for batch in split(y, w, size))


class Changing:
    """Re-iterable, but each pass reads different numbers (random augmentation)."""

    def __init__(self, n, seed=0):
        self.n, self.rng = n, np.random.default_rng(seed)

    def __iter__(self):
        y = self.rng.normal(size=self.n)
        return iter(split(y))


def traced_peak(fn):
    """`(peak bytes traced by tracemalloc while fn() ran, fn())`."""
    tracemalloc.start()
    try:
        result = fn()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()
