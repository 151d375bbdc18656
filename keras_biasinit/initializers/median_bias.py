"""MedianBias: the bias that makes a regressor predict the median (MAE-optimal)."""

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
from keras_biasinit.stats import QuantileResult
from keras_biasinit.stats._budget import check_budget
from keras_biasinit.stats.quantile import QuantileSearch


@keras.saving.register_keras_serializable(package="keras_biasinit")
class MedianBias(BiasInitializer):
    """Initializer that sets a regressor's output bias to the target median.

    `b_j = median_w(y_.j)`: the constant that minimises mean absolute error,
    which then starts at the mean absolute deviation from the median. With
    sample weights it is the weighted median; where the minimiser is an interval
    (an even count), the midpoint is used, as `np.median` does.

    Examples:

    >>> init = MedianBias(140.5)
    >>> bias = init(shape=(1,))

    From data, inside a layer:

    >>> y = np.array([1.0, 2.0, 3.0, 100.0])
    >>> init = MedianBias.from_dataset(y, verbose=0)
    >>> init.bias.tolist(), init.expected_loss  # median, mean |y - median|
    ([2.5], 25.0)
    >>> layer = keras.layers.Dense(1, bias_initializer=init)

    Args:
        median: the median, one number or one per output.
        expected_loss: the loss at step 0 with this bias, if known. Set by
            `from_dataset`. Defaults to None.

    Reference:
        - [Karpathy, 2019, "A Recipe for Training Neural Networks"](
          https://karpathy.github.io/2019/04/25/recipe/) ("init well").
    """

    def __init__(self, median: Numbers, *, expected_loss: Optional[float] = None):
        self._bias = as_vector(median, "median")
        self._expected_loss = check_expected_loss(expected_loss)

    def get_config(self) -> dict:
        return {"median": plain(self._bias), "expected_loss": self._expected_loss}

    @classmethod
    def from_dataset(
        cls,
        dataset: Any,
        *,
        target: Key = None,
        steps: Optional[int] = None,
        verbose: Union[str, int] = "auto",
        batched: Optional[bool] = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        strategy: Optional[tf.distribute.Strategy] = None,
        sample_weight: Optional[str] = None,
    ) -> "MedianBias":
        """Computes the exact (weighted) median of the targets.

        Targets have shape `(n,)` or `(n, d)`. `expected_loss` is the mean
        absolute error of the median as `keras.losses.MeanAbsoluteError`
        reports it: `sum_i w_i mae_i / n`.

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
            batched: whether each element of a `tf.data.Dataset` is a batch.
                Defaults to None (detected; see `keras_biasinit.data`).
            memory_budget: bytes the computation may hold. Data that fit are
                read once; larger data are read a few times (typically 2)
                and stay exact, so they must be re-iterable (a one-shot
                generator over budget is a ValueError). Defaults to 256 MiB.
            strategy: a `tf.distribute.Strategy`; under a multi-worker one each
                worker reads its shard and every worker gets the exact median
                of the union (see `keras_biasinit.distribute`). Defaults to
                None: the strategy in scope, if any.
            sample_weight: the key of the sample weights in dict elements, or
                the weight column of a pandas / Arrow input. Defaults to None:
                the 3rd item of `(x, y, sample_weight)` elements, if any.
        """
        return from_data(cls._recipe(memory_budget), dataset, target=target,
                         steps=steps, verbose=verbose, batched=batched,
                         strategy=strategy,
                         sample_weight=sample_weight)

    @classmethod
    def _recipe(cls, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> Recipe:
        return Recipe(search=lambda: QuantileSearch(0.5), finish=cls._from_quantile,
                      memory_budget=check_budget(memory_budget))

    @classmethod
    def _from_quantile(cls, result: QuantileResult) -> "MedianBias":
        loss = float(result.mean_absolute_deviation.mean())
        return cls(result.quantile, expected_loss=loss)
