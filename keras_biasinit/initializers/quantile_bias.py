"""QuantileBias: the bias at the q-quantile (pinball-loss-optimal)."""

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
from keras_biasinit.stats.quantile import check_q


@keras.saving.register_keras_serializable(package="keras_biasinit")
class QuantileBias(BiasInitializer):
    """Initializer that sets a regressor's output bias to a target quantile.

    `b_j` minimises the mean pinball (quantile) loss
    `sum_i w_i rho_q(y_ij - b_j) / n` with `rho_q(r) = max(q r, (q - 1) r)`:
    the weighted q-quantile of the targets, the best constant of a quantile
    regression head (`q = 0.5`: the median, as `MedianBias`, whose loss, the
    mean absolute error, is twice the pinball loss). Where the minimiser is an
    interval (the cumulative weight reaches exactly `q` of the total), the
    midpoint is used: without weights, `np.quantile(y, q,
    method="averaged_inverted_cdf")`.

    Examples:

    >>> init = QuantileBias(180.0, q=0.9)
    >>> bias = init(shape=(1,))

    From data, inside a layer:

    >>> y = np.array([1.0, 2.0, 3.0, 10.0])
    >>> init = QuantileBias.from_dataset(y, q=0.75, verbose=0)
    >>> init.bias.tolist(), init.expected_loss  # quantile, mean pinball loss
    ([6.5], 1.5)
    >>> layer = keras.layers.Dense(1, bias_initializer=init)

    Args:
        quantile: the q-quantile, one number or one per output.
        q: the quantile level in (0, 1) it was computed for. Defaults to 0.5.
        expected_loss: the mean pinball loss at step 0 with this bias, if
            known. Set by `from_dataset`. Defaults to None.

    Reference:
        - [Koenker & Bassett, 1978, "Regression Quantiles"](
          https://doi.org/10.2307/1913643)
    """

    def __init__(self, quantile: Numbers, q: float = 0.5, *,
                 expected_loss: Optional[float] = None):
        self._bias = as_vector(quantile, "quantile")
        self.q = check_q(q)
        self._expected_loss = check_expected_loss(expected_loss)

    def get_config(self) -> dict:
        return {"quantile": plain(self._bias), "q": self.q,
                "expected_loss": self._expected_loss}

    @classmethod
    def from_dataset(
        cls,
        dataset: Any,
        *,
        q: float = 0.5,
        target: Key = None,
        steps: Optional[int] = None,
        verbose: Union[str, int] = "auto",
        batched: Optional[bool] = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        strategy: Optional[tf.distribute.Strategy] = None,
        sample_weight: Optional[str] = None,
    ) -> "QuantileBias":
        """Computes the exact (weighted) q-quantile of the targets.

        Targets have shape `(n,)` or `(n, d)`. `expected_loss` is the mean
        pinball loss of the quantile as Keras's default reduction reports a
        loss: `sum_i w_i rho_q(y_i - b) / n`, averaged over outputs.

        Args:
            dataset: a `tf.data.Dataset` (batched or not), tfds dataset, NumPy
                array or iterable of batches; see `keras_biasinit.data`.
            q: the quantile level, in (0, 1). Defaults to 0.5 (the median).
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
                and stay exact, so they must be re-iterable. Defaults to 256 MiB.
            strategy: a `tf.distribute.Strategy`; under a multi-worker one each
                worker reads its shard and every worker gets the exact quantile
                of the union (see `keras_biasinit.distribute`). Defaults to
                None: the strategy in scope, if any.
            sample_weight: the key of the sample weights in dict elements, or
                the weight column of a pandas / Arrow input. Defaults to None:
                the 3rd item of `(x, y, sample_weight)` elements, if any.
        """
        return from_data(cls._recipe(q, memory_budget), dataset, target=target,
                         steps=steps, verbose=verbose, batched=batched,
                         strategy=strategy,
                         sample_weight=sample_weight)

    @classmethod
    def _recipe(cls, q: float = 0.5,
                memory_budget: int = DEFAULT_MEMORY_BUDGET) -> Recipe:
        q = check_q(q)

        def finish(result: QuantileResult) -> "QuantileBias":
            return cls(result.quantile, q,
                       expected_loss=float(result.mean_pinball_loss.mean()))

        return Recipe(search=lambda: QuantileSearch(q), finish=finish,
                      memory_budget=check_budget(memory_budget))
