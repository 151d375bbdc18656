"""The multi-pass driver shared by the exact order statistics.

A statistic (the weighted quantile, the Huber location) is a `Search`: it
solves data that fit the budget in memory, and otherwise plans one pass at a
time from the merged measurement of the pass before. The driver reads the
passes; a `Reducer` merges each pass's state over all shards of the data
before the statistic looks at it, so every shard plans the same next pass and
ends with the same, exact, numbers:

1. pass 1 (`FirstPass`): buffer the rows while the union's in-memory solve
   fits `memory_budget`, else summarise them (rows, weight, min, max);
2. passes 2, 3, ... (`PassState`): what the statistic's `Plan` says, until it
   returns no plan. Typical data take 2 passes in all (3 or more under
   budgets of a few MiB); a statistic that needs
   more than `MAX_PASSES` is an internal error, never an approximate answer.
"""

from __future__ import annotations

import collections.abc
from typing import Any, Iterable, Optional, Protocol

from keras_biasinit.stats._budget import MemoryMeter
from keras_biasinit.stats._budget import analysis_bytes
from keras_biasinit.stats._budget import check_budget
from keras_biasinit.stats._summary import Batch
from keras_biasinit.stats._first_pass import FirstPass
from keras_biasinit.stats._summary import InMemory
from keras_biasinit.stats._summary import Summary
from keras_biasinit.stats._mixed_pass import new_pass_state
from keras_biasinit.stats._plan import PassResult
from keras_biasinit.stats._radix_state import new_histogram
from keras_biasinit.stats._wide_first import new_first_state
from keras_biasinit.stats._plan import Plan
from keras_biasinit.stats.state import Reducer
from keras_biasinit.stats.state import read_pass
from keras_biasinit.stats.state import run_pass

MAX_PASSES = 40


class Search(Protocol):
    """What an exact order statistic provides to the driver."""

    name: str

    def in_memory_bytes(self, rows: int, columns: int, weighted: bool) -> int:
        """Peak bytes of the in-memory solve, the buffered data included."""

    def solve_in_memory(self, data: InMemory, meter: MemoryMeter) -> Any:
        """The result from every row."""

    def start(self, first: Summary, meter: MemoryMeter) -> Optional[Plan]:
        """The plan of pass 2 (None: every column is already solved)."""

    def step(self, result: PassResult, plan: Plan, meter: MemoryMeter
             ) -> Optional[Plan]:
        """The plan of the next pass from this one's result (None: solved)."""

    def finish(self, first: Summary, passes: int, peak_bytes: int) -> Any:
        """The result once no plan is left."""


def is_reiterable(batches: Iterable[Batch]) -> bool:
    """`batches.reiterable` for `keras_biasinit.data.Batches`, else iter(x) is not x."""
    flag = getattr(batches, "reiterable", None)
    if flag is not None:
        return bool(flag)
    return not isinstance(batches, collections.abc.Iterator)


def solve(batches: Iterable[Batch], search: Search, *, memory_budget: int,
          reducer: Optional[Reducer] = None):
    """Runs `search` over `batches` in at most `memory_budget` bytes."""
    reducer = reducer or Reducer()
    first = first_pass_state(search, memory_budget, is_reiterable(batches))
    return finish_search(batches, search, _first_pass(batches, first, reducer),
                         reducer)


def first_pass_state(search: Search, memory_budget: int,
                     reiterable: bool = True) -> FirstPass:
    """A new pass-1 state for `search` (to update with the batches of pass 1
    alongside other statistics, then to hand to `finish_search`)."""
    meter = MemoryMeter(check_budget(memory_budget))
    return FirstPass(name=search.name, meter=meter,
                     in_memory_bytes=search.in_memory_bytes, reiterable=reiterable,
                     radix=_pass_one_state(search))


def _pass_one_state(search: Search):
    """The factory of the search's own pass-1 state (None: the summary)."""
    if getattr(search, "sample", False):  # a row sample for wide targets
        return new_first_state
    return new_histogram if getattr(search, "radix", False) else None


def finish_search(batches: Iterable[Batch], search: Search, first: FirstPass,
                  reducer: Optional[Reducer] = None):
    """The result of `search` from its merged pass-1 state: solved in memory,
    or by further passes over `batches` (re-iterable) until it has no plan."""
    reducer = reducer or Reducer()
    meter = first.meter
    data = first.result()
    if isinstance(data, InMemory):
        return search.solve_in_memory(data, meter)
    plan, passes = search.start(data, meter), 1
    while plan is not None:
        passes += 1
        if passes > MAX_PASSES:
            raise RuntimeError(
                f"Internal error: the {search.name} did not converge in "
                f"{MAX_PASSES} passes. Please report it."
            )
        state = new_pass_state(plan, data, meter, search.name)
        result = run_pass(batches, state, reducer).result()
        meter.hold(analysis_bytes(meter.budget, plan.windows, plan.bins))
        plan = search.step(result, plan, meter)
        del result, state
        meter.release(meter.current)
    return search.finish(data, passes, meter.peak)


def merge_first_pass(first: FirstPass, reducer: Reducer) -> FirstPass:
    """Pass 1 merged over every shard; the rows travel only if the union fits."""
    if reducer.distributed:
        size = reducer(first.size())
        first.columns = first.columns or size.columns or None
        first.reiterable = size.reiterable  # so every shard decides alike
        if not first.fits(size.rows, size.weighted):
            first.stop_buffering()
    return reducer(first)


def _first_pass(batches, first: FirstPass, reducer: Reducer) -> FirstPass:
    return merge_first_pass(read_pass(batches, first, reducer), reducer)
