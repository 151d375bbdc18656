"""The statistics protocol: states that update, merge, and travel as arrays.

Every statistic is a state with four methods:

- `update(values, weights=None)`: add one batch (NumPy, rows on axis 0);
- `merge(other)`: add another state of the same statistic, computed on other
  rows (another batch, shard, worker or Beam bundle);
- `result()`: the numbers (raises a clear ValueError on data that has none);
- `to_arrays()` and `from_arrays(arrays)`: a dict of plain NumPy arrays, and a
  new state like this one (same configuration) holding copies of them. This is
  what an all-reduce or a Beam combiner carries.

`merge` is exact up to float rounding for the sums (`ClassCounts`, `Moments`,
`SecondMoment`) and exact for the order statistics, whose every pass is such a
state: the next pass's plan is made from the merged state, so every shard reads
the same passes (`keras_biasinit.stats._driver`).

Where the states are merged is a `Reducer`'s job: `Reducer()` is the one of a
single process (nothing to merge); the engines beside the statistics (a
strategy's workers in `keras_biasinit.distribute`, Beam in
`keras_biasinit.beam`) merge the states of all shards.

Example:

>>> from keras_biasinit.stats import Moments
>>> a = Moments().update(np.array([1.0, 2.0]))
>>> b = a.from_arrays(Moments().update(np.array([6.0])).to_arrays())
>>> float(a.merge(b).result().mean[0])
3.0
"""

from __future__ import annotations

from typing import Dict, Iterable, Optional, Protocol, Sequence, Tuple, TypeVar

import numpy as np

Batch = Tuple[np.ndarray, Optional[np.ndarray]]
Arrays = Dict[str, np.ndarray]
S = TypeVar("S", bound="State")


class State(Protocol):
    """What every statistic's state provides (see the module docstring)."""

    def update(self: S, values: np.ndarray, weights: Optional[np.ndarray] = None
               ) -> S: ...

    def merge(self: S, other: S) -> S: ...

    def result(self): ...

    def to_arrays(self) -> Arrays: ...

    def from_arrays(self: S, arrays: Arrays) -> S: ...


class Reducer:
    """Merges a state over all the shards of the data; this one has one shard.

    Subclasses (engines) override `__call__` to merge the states of every
    worker, so that each gets the union's state, and `abort` to tell the other
    workers that this one failed (so none of them waits for it).
    """

    #: Whether there are other shards (the data read here are not all).
    distributed = False

    def __call__(self, state: S) -> S:
        return state

    def abort(self, error: BaseException) -> None:
        """This shard failed with `error`; the caller raises it afterwards."""


def run_pass(batches: Iterable[Batch], state: S,
             reducer: Optional[Reducer] = None) -> S:
    """Updates `state` with every batch (one pass), then merges it over shards."""
    reducer = reducer or Reducer()
    return reducer(read_pass(batches, state, reducer))


def read_pass(batches: Iterable[Batch], state: S, reducer: Reducer) -> S:
    """Updates `state` with every batch (one pass), not merged yet.

    An error while reading or updating is first reported to the reducer, so the
    other shards' `reducer(...)` raise too instead of waiting for this one.
    """
    try:
        for values, weights in batches:
            state.update(values, weights)
    except Exception as error:  # pylint: disable=broad-except
        reducer.abort(error)
        raise
    return state


def merge_arrays(like: S, shards: Sequence[Arrays]) -> S:
    """The states `shards` (array forms, in shard order) merged into one state
    configured like `like`. Every shard that merges the same list in the same
    order gets bit-identical numbers."""
    merged = None
    for arrays in shards:
        state = like.from_arrays(arrays)
        merged = state if merged is None else merged.merge(state)
    return merged


def scalar(value) -> np.ndarray:
    """A number as a 1-element array, for `to_arrays`."""
    return np.asarray([value])
