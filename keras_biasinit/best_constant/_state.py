"""What the per-output states of the table share: the statistics protocol.

Each output's state is one statistic of `keras_biasinit.stats` with the
loss's configuration around it (`Wrapped`), so it updates, merges and travels
as arrays (`keras_biasinit.stats.state`) like the statistic itself. The states
of every output of a model merge over the workers of a strategy in one reducer
call as one `Composite`, whose arrays are each part's, prefixed with its index.

Example:

>>> from keras_biasinit.stats import Moments
>>> a = Composite([Moments().update(np.array([1.0])), Moments()])
>>> b = a.from_arrays(Composite([Moments().update(np.array([3.0])),
...                              Moments().update(np.array([5.0]))]).to_arrays())
>>> [float(part.mean[0]) for part in a.merge(b).parts]
[2.0, 5.0]
"""

from __future__ import annotations

import copy
from typing import List, Sequence

import numpy as np

from keras_biasinit.stats.state import Arrays


class Wrapped:
    """A state whose numbers are those of one statistic, `self.statistic`;
    subclasses add `update` and `result`."""

    statistic = None  # a state of keras_biasinit.stats, set by __init__

    def merge(self, other: "Wrapped") -> "Wrapped":
        self.statistic = self.statistic.merge(other.statistic)
        return self

    def to_arrays(self) -> Arrays:
        return self.statistic.to_arrays()

    def from_arrays(self, arrays: Arrays) -> "Wrapped":
        state = copy.copy(self)  # the same configuration
        state.statistic = self.statistic.from_arrays(arrays)
        return state


class Composite:
    """Several states as one: merged part by part; arrays prefixed `"i/"`."""

    def __init__(self, parts: Sequence) -> None:
        self.parts: List = list(parts)

    def merge(self, other: "Composite") -> "Composite":
        self.parts = [a.merge(b) for a, b in zip(self.parts, other.parts)]
        return self

    def to_arrays(self) -> Arrays:
        return {f"{i}/{name}": value for i, part in enumerate(self.parts)
                for name, value in part.to_arrays().items()}

    def from_arrays(self, arrays: Arrays) -> "Composite":
        split: List[Arrays] = [{} for _ in self.parts]
        for key, value in arrays.items():
            index, name = key.split("/", 1)
            split[int(index)][name] = value
        return Composite([part.from_arrays(a) for part, a in zip(self.parts, split)])

    def result(self) -> list:
        return [part.result() for part in self.parts]


class RowsPerExample:
    """Rows fed to an output's state and examples read, merged like a state:
    the state's loss (a sum over its rows / rows) times `rows / examples` is
    the loss per example that `evaluate` reports (see
    `keras_biasinit.data.loss_elements`)."""

    def __init__(self, rows: float = 0.0, examples: float = 0.0) -> None:
        self.rows, self.examples = float(rows), float(examples)

    def update(self, rows: int, examples: int) -> "RowsPerExample":
        self.rows += rows
        self.examples += examples
        return self

    def merge(self, other: "RowsPerExample") -> "RowsPerExample":
        return self.update(other.rows, other.examples)

    def to_arrays(self) -> Arrays:
        return {"counts": np.asarray([self.rows, self.examples])}

    def from_arrays(self, arrays: Arrays) -> "RowsPerExample":
        return RowsPerExample(*np.asarray(arrays["counts"], np.float64))

    def result(self) -> float:
        return self.rows / self.examples if self.examples else 1.0


def with_expected_loss(initializer, factor: float):
    """`initializer` with its `expected_loss` multiplied by `factor`."""
    if factor == 1.0 or initializer.expected_loss is None:
        return initializer
    config = initializer.get_config()
    config["expected_loss"] = float(initializer.expected_loss) * factor
    return type(initializer).from_config(config)
