"""HuberBias: the bias at the Huber location M-estimate (Huber-loss-optimal)."""

from __future__ import annotations

from typing import Any, Optional, Union

import keras

from keras_biasinit._optional import tensorflow as tf  # annotations only
from keras_biasinit.initializers._base import BiasInitializer
from keras_biasinit.initializers._base import Numbers
from keras_biasinit.initializers._base import as_vector
from keras_biasinit.initializers._base import check_expected_loss
from keras_biasinit.initializers._base import plain
from keras_biasinit.initializers._from_data import Key
from keras_biasinit.initializers._from_data import Recipe
from keras_biasinit.initializers._from_data import from_data
from keras_biasinit.stats import DEFAULT_MEMORY_BUDGET
from keras_biasinit.stats import HuberResult
from keras_biasinit.stats._budget import check_budget
from keras_biasinit.stats.huber import HuberSearch
from keras_biasinit.stats.huber import check_delta


@keras.saving.register_keras_serializable(package="keras_biasinit")
class HuberBias(BiasInitializer):
    """Initializer that sets a regressor's output bias to the Huber location.

    `b_j` minimises `sum_i w_i h(y_ij - b_j)` with the Huber loss
    `h(r) = r^2 / 2` for `|r| <= delta`, `delta * (|r| - delta / 2)` otherwise,
    exactly as `keras.losses.Huber(delta)` computes it. There is no closed form;
    it is the root of the non-decreasing, piecewise-linear
    `psi(b) = sum_i w_i clip(b - y_i, -delta, delta)`, found exactly. It lies
    between the median (`delta -> 0`) and the mean (`delta -> inf`). Where the
    minimiser is not unique (psi is 0 on an interval), the midpoint is used.

    Examples:

    >>> init = HuberBias(140.0, delta=10.0)
    >>> bias = init(shape=(1,))

    From data, inside a layer:

    >>> y = np.array([0.0, 1.0, 2.0, 100.0])
    >>> init = HuberBias.from_dataset(y, delta=1.0, verbose=0)
    >>> init.bias.tolist()
    [1.5]
    >>> layer = keras.layers.Dense(1, bias_initializer=init)

    Args:
        location: the Huber location, one number or one per output.
        delta: the Huber loss's `delta` this location was computed for.
            Defaults to 1.0, as `keras.losses.Huber`.
        expected_loss: the loss at step 0 with this bias, if known. Set by
            `from_dataset`. Defaults to None.

    Reference:
        - [Huber, 1964, "Robust Estimation of a Location Parameter"](
          https://doi.org/10.1214/aoms/1177703732)
    """

    def __init__(
        self,
        location: Numbers,
        delta: float = 1.0,
        *,
        expected_loss: Optional[float] = None,
    ):
        self._bias = as_vector(location, "location")
        self.delta = check_delta(delta)
        self._expected_loss = check_expected_loss(expected_loss)

    def get_config(self) -> dict:
        return {
            "location": plain(self._bias),
            "delta": self.delta,
            "expected_loss": self._expected_loss,
        }

    @classmethod
    def from_dataset(
        cls,
        dataset: Any,
        *,
        target: Key = None,
        steps: Optional[int] = None,
        verbose: Union[str, int] = "auto",
        delta: float = 1.0,
        batched: Optional[bool] = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        strategy: Optional[tf.distribute.Strategy] = None,
        sample_weight: Optional[str] = None,
    ) -> "HuberBias":
        """Computes the exact (weighted) Huber location of the targets.

        Targets have shape `(n,)` or `(n, d)`. `expected_loss` is the Huber loss
        of the location as `keras.losses.Huber(delta)` reports it:
        `sum_i w_i huber_i / n`.

        Args:
            dataset: a `tf.data.Dataset` (batched or not), tfds dataset, NumPy
                array or iterable of batches; see `keras_biasinit.data`.
            target: the dict key or tuple index of the targets, or a path into
                nested elements (`(1, "out")` for `y["out"]` of `(x, y)`).
                Defaults to the 2nd item of a tuple, or the whole element.
                For a pandas / Arrow input: a column name, or a list of
                columns (one bias each, in that order).
            steps: read at most this many elements. Defaults to None (all).
            verbose: `"auto"`, 0, 1 or 2, as in `Model.fit`. Defaults to "auto".
            delta: the Huber loss's `delta`. Defaults to 1.0.
            batched: whether each element of a `tf.data.Dataset` is a batch.
                Defaults to None (detected; see `keras_biasinit.data`).
            memory_budget: bytes the computation may hold. Data that fit are
                read once; larger data are read a few times (2 for float32
                targets, 2 or 3 for float64) and stay exact, so they must be
                re-iterable (a one-shot generator over budget is a
                ValueError). Defaults to 256 MiB.
            strategy: a `tf.distribute.Strategy`; under a multi-worker one each
                worker reads its shard and every worker gets the exact location
                of the union (see `keras_biasinit.distribute`). Defaults to
                None: the strategy in scope, if any.
            sample_weight: the key of the sample weights in dict elements, or
                the weight column of a pandas / Arrow input. Defaults to None:
                the 3rd item of `(x, y, sample_weight)` elements, if any.
        """
        return from_data(cls._recipe(delta, memory_budget), dataset, target=target,
                         steps=steps, verbose=verbose, batched=batched,
                         strategy=strategy,
                         sample_weight=sample_weight)

    @classmethod
    def _recipe(cls, delta: float = 1.0,
                memory_budget: int = DEFAULT_MEMORY_BUDGET) -> Recipe:
        delta = check_delta(delta)

        def finish(result: HuberResult) -> "HuberBias":
            return cls(result.location, delta,
                       expected_loss=float(result.mean_loss.mean()))

        return Recipe(search=lambda: HuberSearch(delta), finish=finish,
                      memory_budget=check_budget(memory_budget))
