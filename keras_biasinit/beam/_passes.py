"""The exact multi-pass statistics as Beam stages (`stats._driver.solve`, unrolled).

`solve` reads pass 1 (`FirstPass`), then asks the search for a plan, reads a
pass that follows it (`PassState`), merges it and asks for the next plan until
there is none. A Beam pipeline is a fixed graph, so the loop is unrolled into
`max_passes - 1` stages after pass 1. Between stages travels a `Progress`, a
singleton side input: the search (which remembers what it has learned), the
merged summary of pass 1, the plan of the next pass and, once solved, the
result. Each stage is a `CombineGlobally` of `PassState`s built from that plan
(`PassCombineFn`), whose `extract_output` runs `search.step` on the merged
state; once the search is done, a stage's states are None and it passes the
`Progress` through (Beam graphs are fixed, so it still reads the target
batches, doing nothing with them: the targets only, never the raw input).
Running out of stages is an error, never an approximation.

Each accumulator (so each Beam worker) has its own `MemoryMeter`: the budget
is per process, as it is for one `from_dataset`.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Callable, Iterable, Optional

import apache_beam as beam

from keras_biasinit.stats._budget import MemoryMeter
from keras_biasinit.stats._budget import analysis_bytes
from keras_biasinit.stats._driver import Search
from keras_biasinit.stats._driver import first_pass_state
from keras_biasinit.stats._first_pass import FirstPass
from keras_biasinit.stats._summary import InMemory
from keras_biasinit.stats._summary import Summary
from keras_biasinit.stats._pass_state import PassState
from keras_biasinit.stats._mixed_pass import new_pass_state
from keras_biasinit.stats._plan import Plan


@dataclasses.dataclass
class Progress:
    """Where the search stands after a pass (the side input of the next)."""

    search: Search
    meter: MemoryMeter
    first: Optional[Summary] = None
    plan: Optional[Plan] = None
    passes: int = 1
    result: Any = None  # the statistic's result once solved


def first_pass_factory(new_search: Callable[[], Search], budget: int
                       ) -> Callable[[], FirstPass]:
    """New pass-1 states for the search, each with its own meter."""
    search = new_search()
    return lambda: first_pass_state(search, budget)


def start(first: FirstPass, new_search: Callable[[], Search]) -> Progress:
    """The progress after pass 1: solved in memory, or the plan of pass 2."""
    search, meter = new_search(), first.meter
    data = first.result()
    if isinstance(data, InMemory):
        return Progress(search, meter, result=search.solve_in_memory(data, meter))
    plan = search.start(data, meter)
    progress = Progress(search, meter, first=data, plan=plan)
    if plan is None:
        progress.result = search.finish(data, 1, meter.peak)
    return progress


def step(merged: Optional[PassState], progress: Progress) -> Progress:
    """The progress after one more pass, from its merged state."""
    if progress.plan is None:
        return progress
    progress = copy.deepcopy(progress)  # a side input: never change it in place
    plan, meter, search = progress.plan, progress.meter, progress.search
    if merged is None:  # no row read: the check in `result` reports it
        merged = new_pass_state(plan, progress.first, meter, search.name,
                                hold=False)
    result = merged.result()
    progress.passes += 1
    meter.hold(analysis_bytes(meter.budget, plan.windows, plan.bins))
    progress.plan = search.step(result, plan, meter)
    meter.release(meter.current)
    if progress.plan is None:
        progress.result = search.finish(progress.first, progress.passes, meter.peak)
    return progress


class PassCombineFn(beam.CombineFn):
    """One pass after pass 1: the `PassState`s of the plan in the side input
    `progress`, merged; `extract_output` is the next `Progress`."""

    def create_accumulator(self, progress: Progress) -> Optional[PassState]:
        if progress.plan is None:  # solved: nothing to read
            return None
        return new_pass_state(progress.plan, progress.first,
                              MemoryMeter(progress.meter.budget),
                              progress.search.name)

    def add_input(self, state: Optional[PassState], batch, progress: Progress
                  ) -> Optional[PassState]:
        if state is not None:
            state.update(*batch)
        return state

    def merge_accumulators(self, states: Iterable[Optional[PassState]],
                           progress: Progress) -> Optional[PassState]:
        merged = None
        for state in states:
            if state is not None:
                merged = state if merged is None else merged.merge(state)
        return merged

    def extract_output(self, state: Optional[PassState], progress: Progress
                       ) -> Progress:
        return step(state, progress)


def finish(progress: Progress, finish_result: Callable, max_passes: int):
    """The initializer from the solved search; an error if still unsolved."""
    if progress.result is None:
        raise RuntimeError(
            f"The exact {progress.search.name} needs more than {max_passes} "
            "passes over these data (heavily tied or adversarial values, or a "
            "small `memory_budget`), and the pipeline has only that many stages. "
            f"Pass a larger `max_passes=` to ComputeInitializer (e.g. "
            f"max_passes={2 * max_passes}), or a larger `memory_budget=`."
        )
    return finish_result(progress.result)
