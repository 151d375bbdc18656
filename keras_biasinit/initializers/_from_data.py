"""What the initializers share: computing their numbers from data.

Each initializer class names a `Recipe`: the statistic its numbers come from
(a single-pass state of `keras_biasinit.stats`, or an exact multi-pass
search) and how the statistic's result becomes the initializer. `from_data`
reads the input with `keras_biasinit.data.read_batches`, merges the statistic
over the workers of a strategy (`keras_biasinit.distribute`) and finishes it.
Where it pays (a tf.data pass over wide rows), a single-pass state's batches
are reduced inside the tf.data graph (`keras_biasinit.data.graph_reduce`) and
only their states are merged here. Other engines (Beam) run the same recipe.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Optional, Tuple, Union

import keras

from keras_biasinit.data import read_batches
from keras_biasinit.data.graph_reduce import reduction_for
from keras_biasinit.distribute import reducer_for
from keras_biasinit.stats import DEFAULT_MEMORY_BUDGET
from keras_biasinit.stats import Reducer
from keras_biasinit.stats import State
from keras_biasinit.stats import run_pass
from keras_biasinit.stats._driver import Search
from keras_biasinit.stats._driver import solve
from keras_biasinit.stats.state import Arrays

#: `target=` / `features=`: a dict key, a tuple index, or a path of them.
Key = Union[str, int, None, Tuple[Union[str, int], ...]]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How an initializer is computed from batches.

    Attributes:
        finish: the statistic's result -> the initializer.
        state: a new single-pass state (None for a multi-pass search).
        search: a new `keras_biasinit.stats._driver.Search` (None for a state).
        memory_budget: bytes the search may hold.
        role: `"target"` or `"features"`: what the statistic reads.
        class_ids: read integer targets of any rank as class ids (see
            `keras_biasinit.data.read_batches`).
    """

    finish: Callable[[Any], keras.initializers.Initializer]
    state: Optional[Callable[[], State]] = None
    search: Optional[Callable[[], Search]] = None
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    role: str = "target"
    class_ids: bool = False

    def compute(self, batches, reducer: Optional[Reducer] = None,
                state: Optional[State] = None):
        """The initializer from `batches`, merged by `reducer` over shards.

        `state`: the fresh state to fill (default: a new `self.state()`).
        `batches` whose `reduced` is True hold batch states, not batches.
        """
        if self.search is not None:
            result = solve(batches, self.search(), memory_budget=self.memory_budget,
                           reducer=reducer)
        elif getattr(batches, "reduced", False):
            result = merge_pass(batches, state or self.state(), reducer).result()
        else:
            result = run_pass(batches, state or self.state(), reducer).result()
        return self.finish(result)


def merge_pass(partials: Iterable[Arrays], state: State,
               reducer: Optional[Reducer] = None) -> State:
    """`run_pass` for batch states in array form: merged into `state` in
    order, then over shards (an error is reported to `reducer` first)."""
    reducer = reducer or Reducer()
    try:
        for arrays in partials:
            state.merge(state.from_arrays(arrays))
    except Exception as error:  # pylint: disable=broad-except
        reducer.abort(error)
        raise
    return reducer(state)


def from_data(recipe: Recipe, dataset: Any, *, target: Key, steps, verbose,
              batched, strategy):
    """`recipe` over `dataset`, merged over the workers of `strategy` (or of
    the strategy in scope); the body of every `from_dataset`."""
    reducer = reducer_for(strategy)
    state = None if recipe.state is None else recipe.state()
    batches = read_batches(dataset, target=target, role=recipe.role, steps=steps,
                           batched=batched, verbose=verbose, merge_batches=True,
                           class_ids=recipe.class_ids,
                           reduction=reduction_for(state))
    batches.allow_empty = reducer.distributed  # the union is checked, not a shard
    return recipe.compute(batches, reducer, state)
