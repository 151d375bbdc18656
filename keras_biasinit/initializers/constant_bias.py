"""ConstantBias: a loss's best constant where the constant has no name of its own."""

from __future__ import annotations

from typing import Optional

import keras

from keras_biasinit.initializers._base import BiasInitializer
from keras_biasinit.initializers._base import Numbers
from keras_biasinit.initializers._base import as_vector
from keras_biasinit.initializers._base import check_expected_loss
from keras_biasinit.initializers._base import plain

#: The losses whose best constant this initializer holds (Keras function names).
LOSSES = (
    "log_cosh",
    "mean_squared_logarithmic_error",
    "mean_absolute_percentage_error",
)


@keras.saving.register_keras_serializable(package="keras_biasinit")
class ConstantBias(BiasInitializer):
    """Initializer that holds the best constant of a regression loss.

    For the losses whose best constant is neither a mean, a median nor a
    Huber location (those have `MeanBias`, `MedianBias`, `HuberBias`), and
    remembers which loss it was computed for:

    - `log_cosh`: the root of `sum_i w_i tanh(c - y_i)`;
    - `mean_squared_logarithmic_error`: `expm1(E_w[log1p(max(y, 1e-7))])`;
    - `mean_absolute_percentage_error`: the weighted median of `y` with
      weights `w_i / max(|y_i|, 1e-7)`.

    Built by `kbi.adapt_output_bias`.

    Examples:

    >>> init = ConstantBias([2.5], loss="log_cosh")
    >>> init.bias.tolist()
    [2.5]
    >>> layer = keras.layers.Dense(1, bias_initializer=init)

    Args:
        value: the constant, one number or one per output.
        loss: the Keras loss it is best for, one of `LOSSES`.
        expected_loss: the loss at step 0 with this bias. Defaults to None.
    """

    def __init__(self, value: Numbers, loss: str, *,
                 expected_loss: Optional[float] = None):
        if loss not in LOSSES:
            raise ValueError(
                f"`loss` must be one of {list(LOSSES)}. Received: loss={loss!r}"
            )
        self._bias = as_vector(value, "value")
        self.loss = loss
        self._expected_loss = check_expected_loss(expected_loss)

    def get_config(self) -> dict:
        return {"value": plain(self._bias), "loss": self.loss,
                "expected_loss": self._expected_loss}
