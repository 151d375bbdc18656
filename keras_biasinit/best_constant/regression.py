"""Best constants of the regression losses: one state per output.

With `N` rows, weights `w_i` (1 without) and `W = sum_i w_i`, each loss Keras
reports is `sum_i w_i loss(y_i, c) / N`, averaged over the output columns:

- mean squared error: `c = E_w[y]`, loss `sum_i w_i (y_i - c)^2 / N`
  (`MeanBias`'s recipe);
- mean absolute error: `c` = weighted median, loss `sum_i w_i |y_i - c| / N`
  (`MedianBias`'s recipe);
- Huber(delta): `c` = Huber location (`HuberBias`'s recipe);
- log-cosh: `c` = root of `sum_i w_i tanh(c - y_i)`;
- mean squared logarithmic error, with Keras's `max(., 1e-7)`: for
  `u = log1p(max(y, 1e-7))`, `c = expm1(E_w[u])`, loss
  `sum_i w_i (u_i - E_w[u])^2 / N`;
- mean absolute percentage error, `100 |y - c| / max(|y|, 1e-7)`: `c` = the
  weighted median of `y` with weights `v_i = w_i / max(|y_i|, 1e-7)`, loss
  `100 sum_i v_i |y_i - c| / N`: the median of the transformed pairs
  `(y_i, v_i)`, one exact quantile search per output column;
- Poisson, `c - y log(c + 1e-7)`: `c = E_w[y] - 1e-7`, loss
  `(W/N) (c - E_w[y] log E_w[y])` (negative when the mean exceeds e).

The order statistics (median, Huber, MAPE) are exact searches
(`keras_biasinit.stats._driver`): their state in the one pass over every
output is the search's pass 1 (`FirstPass`), which keeps the rows while they
fit `memory_budget` and otherwise summarises them; `finish` then solves in
memory, or reads that output again (re-iterable data) until the search is
done, exactly. The log-cosh root is solved from the output's rows kept in a
bounded buffer (`keras_biasinit.stats.buffer`): over `memory_budget` it is a
ValueError that names the options.
"""

from __future__ import annotations

from typing import Callable, Iterable, List, Optional

import numpy as np

from keras_biasinit.best_constant._state import Composite
from keras_biasinit.best_constant._state import Wrapped
from keras_biasinit.initializers._from_data import Recipe
from keras_biasinit.initializers.constant_bias import ConstantBias
from keras_biasinit.initializers.huber_bias import HuberBias
from keras_biasinit.initializers.link_bias import LinkBias
from keras_biasinit.initializers.mean_bias import MeanBias
from keras_biasinit.initializers.median_bias import MedianBias
from keras_biasinit.stats import DEFAULT_MEMORY_BUDGET
from keras_biasinit.stats import Moments
from keras_biasinit.stats import Reducer
from keras_biasinit.stats._budget import check_budget
from keras_biasinit.stats._budget import minimum_budget
from keras_biasinit.stats._driver import finish_search
from keras_biasinit.stats._driver import first_pass_state
from keras_biasinit.stats._driver import merge_first_pass
from keras_biasinit.stats.buffer import ValueBuffer
from keras_biasinit.stats.focal import EPSILON
from keras_biasinit.stats.log_cosh import log_cosh
from keras_biasinit.stats.log_cosh import log_cosh_location
from keras_biasinit.stats.quantile import QuantileSearch
from keras_biasinit.stats.state import Batch


def _check_width(y: np.ndarray, units: int, name: str) -> None:
    width = 1 if y.ndim == 1 else int(np.prod(y.shape[1:]))
    if width not in (1, units):
        raise ValueError(
            f"The targets of {name} have {width} columns but the output has "
            f"{units} units: pass targets of shape (n, {units}) (or (n,) for one "
            "target shared by every unit)."
        )


class _Moments(Wrapped):
    """Mean and variance: MSE, MSLE (of `log1p(max(y, eps))`) and Poisson."""

    def __init__(self, spec, units: int, activation: str, name: str, **_):
        self.kind, self.units, self.activation, self.name = (
            spec.kind, units, activation, name)
        self.statistic = Moments()

    def update(self, y: np.ndarray, w) -> "_Moments":
        _check_width(y, self.units, self.name)
        if self.kind == "mean_squared_logarithmic_error":
            y = np.log1p(np.maximum(y.astype(np.float64), EPSILON))
        self.statistic.update(y, w)
        return self

    def result(self):
        m = self.statistic.result()  # a ValueError if no row has weight
        if self.kind == "mean_squared_error":
            return MeanBias._recipe().finish(m)
        if self.kind == "mean_squared_logarithmic_error":
            return ConstantBias(np.expm1(m.mean), self.kind,
                                expected_loss=float(m.mean_squared_error.mean()))
        if (m.mean <= EPSILON).any():
            raise ValueError(
                f"The mean target of {self.name} is {m.mean.min():g}: a Poisson rate "
                "must be positive, and counts that are all 0 have no finite "
                "best bias. Check the targets (non-negative counts)."
            )
        rate = m.mean - EPSILON
        loss = m.weight / m.rows * float(np.mean(rate - m.mean * np.log(m.mean)))
        return LinkBias(rate, self.activation, expected_loss=loss)


class _LogCosh(Wrapped):
    """The log-cosh root, from the output's rows in a bounded buffer."""

    def __init__(self, spec, units: int, activation: str, name: str,
                 memory_budget: int = DEFAULT_MEMORY_BUDGET, **_):
        self.units, self.name = units, name
        self.statistic = ValueBuffer(memory_budget, name)

    def update(self, y: np.ndarray, w) -> "_LogCosh":
        _check_width(y, self.units, self.name)
        self.statistic.update(y, w)
        return self

    def result(self):
        y, w = self.statistic.arrays()
        rows = y.shape[0]
        c = log_cosh_location(y, w)
        weights = np.ones(rows) if w is None else w
        loss = float(np.mean(weights @ log_cosh(c - y))) / rows
        return ConstantBias(c, "log_cosh", expected_loss=loss)


class _Mapped:
    """`batches`, each through `transform`: re-iterable if `batches` is."""

    def __init__(self, batches: Iterable[Batch],
                 transform: Callable[[Batch], Batch]) -> None:
        self.batches, self.transform = batches, transform
        self.reiterable = getattr(batches, "reiterable", True)

    def __iter__(self):
        return (self.transform(batch) for batch in self.batches)


class _NoMorePasses:
    """What `result()` hands a search: data too large for memory cannot be
    read again from a state alone."""

    reiterable = False

    def __iter__(self):
        raise ValueError(
            "The exact order statistic of this output needs more passes over "
            "the data than one (it exceeds `memory_budget`), and only its first "
            "pass was given. Use `kbi.adapt_output_bias` (which reads the data "
            "again) or raise `memory_budget`."
        )


def _mape_recipe(memory_budget: int) -> Recipe:
    def finish(results) -> ConstantBias:
        c = np.concatenate([r.quantile for r in results])
        loss = 100.0 * float(np.concatenate(
            [r.mean_absolute_deviation for r in results]).mean())
        return ConstantBias(c, "mean_absolute_percentage_error", expected_loss=loss)

    return Recipe(search=lambda: QuantileSearch(0.5), finish=finish,
                  memory_budget=memory_budget)


class _Searched(Wrapped):
    """An exact order statistic: the median (MAE), the Huber location, the
    MAPE weighted median (one search per output column, each with
    `memory_budget / units`)."""

    def __init__(self, spec, units: int, activation: str, name: str,
                 memory_budget: int = DEFAULT_MEMORY_BUDGET, reiterable: bool = True,
                 **_):
        self.kind, self.units, self.name = spec.kind, units, name
        budget = check_budget(memory_budget)
        if self.kind == "mean_absolute_error":
            self.recipe, parts = MedianBias._recipe(budget), 1
        elif self.kind == "huber":
            self.recipe = HuberBias._recipe(float(spec.params["delta"]), budget)
            parts = 1
        else:  # mean_absolute_percentage_error
            parts = units
            self.recipe = _mape_recipe(max(budget // units, minimum_budget(1)))
        self.searches = [self.recipe.search() for _ in range(parts)]
        self.statistic = Composite([
            first_pass_state(search, self.recipe.memory_budget, reiterable)
            for search in self.searches])

    def update(self, y: np.ndarray, w) -> "_Searched":
        _check_width(y, self.units, self.name)
        for j, first in enumerate(self.statistic.parts):
            first.update(*self._transform(j)((y, w)))
        return self

    def _transform(self, j: int) -> Callable[[Batch], Batch]:
        if self.kind != "mean_absolute_percentage_error":
            return lambda batch: batch

        def weighted(batch: Batch) -> Batch:
            y, w = batch
            y = np.asarray(y, np.float64).reshape(y.shape[0], -1)
            y = y[:, j if y.shape[1] > 1 else 0]
            scale = np.maximum(np.abs(y), EPSILON)
            return y, (1.0 if w is None else w) / scale

        return weighted

    def finish(self, batches: Iterable[Batch], reducer: Optional[Reducer] = None):
        """The initializer: pass 1 merged by `reducer` over the shards, then
        solved in memory or by more passes over `batches` (this output's)."""
        reducer = reducer or Reducer()
        results: List = []
        for j, (search, first) in enumerate(zip(self.searches, self.statistic.parts)):
            first = merge_first_pass(first, reducer)
            results.append(finish_search(_Mapped(batches, self._transform(j)),
                                         search, first, reducer))
        mape = self.kind == "mean_absolute_percentage_error"
        return self.recipe.finish(results if mape else results[0])

    def result(self):
        return self.finish(_NoMorePasses())
