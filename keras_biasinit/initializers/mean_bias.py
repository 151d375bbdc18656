"""MeanBias: the bias that makes a regressor predict the mean (MSE-optimal)."""

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
from keras_biasinit.stats import Moments
from keras_biasinit.stats import MomentsResult


@keras.saving.register_keras_serializable(package="keras_biasinit")
class MeanBias(BiasInitializer):
    """Initializer that sets a regressor's output bias to the target mean.

    `b_j = sum_i w_i y_ij / sum_i w_i`: the constant that minimises mean squared
    error, which then starts at the (weighted) variance of the targets, averaged
    over outputs, instead of `mean(y**2)`.

    Examples:

    >>> init = MeanBias([152.1, 3.5])
    >>> bias = init(shape=(2,))

    From data, inside a layer:

    >>> y = np.array([1.0, 2.0, 6.0])
    >>> init = MeanBias.from_dataset(y, verbose=0)
    >>> init.bias.tolist(), round(init.expected_loss, 4)  # mean, variance
    ([3.0], 4.6667)
    >>> layer = keras.layers.Dense(1, bias_initializer=init)

    Args:
        mean: the mean, one number or one per output.
        expected_loss: the loss at step 0 with this bias, if known. Set by
            `from_dataset`. Defaults to None.

    Reference:
        - [Karpathy, 2019, "A Recipe for Training Neural Networks"](
          https://karpathy.github.io/2019/04/25/recipe/) ("init well").
    """

    def __init__(self, mean: Numbers, *, expected_loss: Optional[float] = None):
        self._bias = as_vector(mean, "mean")
        self._expected_loss = check_expected_loss(expected_loss)

    def get_config(self) -> dict:
        return {"mean": plain(self._bias), "expected_loss": self._expected_loss}

    @classmethod
    def from_dataset(
        cls,
        dataset: Any,
        *,
        target: Key = None,
        steps: Optional[int] = None,
        verbose: Union[str, int] = "auto",
        batched: Optional[bool] = None,
        strategy: Optional[tf.distribute.Strategy] = None,
        sample_weight: Optional[str] = None,
    ) -> "MeanBias":
        """Computes the (weighted) mean of the targets in one pass.

        Targets have shape `(n,)` (one output) or `(n, d)` (one bias per output
        column). `expected_loss` is the mean squared error of the mean, as
        `keras.losses.MeanSquaredError` reports it: `sum_i w_i mse_i / n`, which
        is the weighted variance when the sample weights average 1.

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
            strategy: a `tf.distribute.Strategy`; under a multi-worker one each
                worker reads its shard and every worker gets the numbers of
                the union (see `keras_biasinit.distribute`). Defaults to None:
                the strategy in scope, if any.
            sample_weight: the key of the sample weights in dict elements, or
                the weight column of a pandas / Arrow input. Defaults to None:
                the 3rd item of `(x, y, sample_weight)` elements, if any.
        """
        return from_data(cls._recipe(), dataset, target=target, steps=steps,
                         verbose=verbose, batched=batched, strategy=strategy,
                         sample_weight=sample_weight)

    @classmethod
    def _recipe(cls) -> Recipe:
        return Recipe(state=Moments, finish=cls._from_moments)

    @classmethod
    def _from_moments(cls, result: MomentsResult) -> "MeanBias":
        loss = float(result.mean_squared_error.mean())
        return cls(result.mean, expected_loss=loss)
