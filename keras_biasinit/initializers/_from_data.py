"""What the initializers share: computing their numbers from data.

Each initializer class names a `Recipe`: the statistic its numbers come from
(a single-pass state of `keras_biasinit.stats`, or an exact multi-pass
search) and how the statistic's result becomes the initializer. `from_data`
reads the input with `keras_biasinit.data.read_batches`, merges the statistic
over the workers of a strategy (`keras_biasinit.distribute`) and finishes it.
Other engines (Beam) run the same recipe.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, List, Optional, Tuple, Union

import keras

from keras_biasinit.data import read_batches
from keras_biasinit.distribute import reducer_for
from keras_biasinit.stats import DEFAULT_MEMORY_BUDGET
from keras_biasinit.stats import Reducer
from keras_biasinit.stats import State
from keras_biasinit.stats import run_pass
from keras_biasinit.stats._driver import Search
from keras_biasinit.stats._driver import solve

#: `target=` / `features=`: a dict key, a tuple index, or a path of them; for
#: a pandas / Arrow input a column name or a list of them.
Key = Union[str, int, None, Tuple[Union[str, int], ...], List[str]]


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
        classes: the class list that maps a pandas / Arrow label column to
            ids (`keras_biasinit.data.columns`), or None.
    """

    finish: Callable[[Any], keras.initializers.Initializer]
    state: Optional[Callable[[], State]] = None
    search: Optional[Callable[[], Search]] = None
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    role: str = "target"
    class_ids: bool = False
    classes: Optional[tuple] = None

    def compute(self, batches, reducer: Optional[Reducer] = None):
        """The initializer from `batches`, merged by `reducer` over shards."""
        if self.search is not None:
            result = solve(batches, self.search(), memory_budget=self.memory_budget,
                           reducer=reducer)
        else:
            result = run_pass(batches, self.state(), reducer).result()
        return self.finish(result)


def from_data(recipe: Recipe, dataset: Any, *, target: Key, steps, verbose,
              batched, strategy, sample_weight=None):
    """`recipe` over `dataset`, merged over the workers of `strategy` (or of
    the strategy in scope); the body of every `from_dataset`."""
    reducer = reducer_for(strategy)
    batches = read_batches(dataset, target=target, role=recipe.role, steps=steps,
                           batched=batched, verbose=verbose, merge_batches=True,
                           class_ids=recipe.class_ids,
                           sample_weight=sample_weight, classes=recipe.classes)
    batches.allow_empty = reducer.distributed  # the union is checked, not a shard
    return recipe.compute(batches, reducer)
