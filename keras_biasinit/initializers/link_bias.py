"""LinkBias: the bias that makes a count model predict the mean rate (Poisson)."""

from __future__ import annotations

import math
from typing import Optional

import keras
import numpy as np

from keras_biasinit.initializers._base import BiasInitializer
from keras_biasinit.initializers._base import Numbers
from keras_biasinit.initializers._base import as_vector
from keras_biasinit.initializers._base import plain

LINKS = ("exponential", "softplus", "linear")


def inverse_link(rate: np.ndarray, link: str) -> np.ndarray:
    """The pre-activation that gives `rate` through the output activation."""
    if link == "exponential":
        return np.log(rate)
    if link == "softplus":  # log(expm1(r)), without overflow for large r
        return rate + np.log(-np.expm1(-rate))
    return np.asarray(rate, dtype=np.float64).copy()


@keras.saving.register_keras_serializable(package="keras_biasinit")
class LinkBias(BiasInitializer):
    """Initializer that sets a rate model's output bias to the best rate.

    Under `keras.losses.Poisson`, `mean(q - y log(q + 1e-7))`, the best constant
    rate is `q = E_w[y] - 1e-7` per output (the mean count; Keras adds
    `epsilon = 1e-7` inside the log). The bias is that rate seen through the
    output activation (the link): `log q` for `exponential`,
    `log(exp(q) - 1)` for `softplus`, `q` for `linear`.

    The Poisson loss at the best rate, `q - E[y] log E[y]`, is negative when the
    mean count exceeds e (e.g. -0.838 for a mean of 3.5), so `expected_loss`
    may be any finite number here.

    Examples:

    >>> init = LinkBias(3.5, link="exponential")
    >>> round(float(init.bias[0]), 4)  # log 3.5
    1.2528
    >>> layer = keras.layers.Dense(1, activation="exponential",
    ...                            bias_initializer=init)

    Args:
        rate: the best constant rate, one number or one per output (positive).
        link: the output activation, `"exponential"`, `"softplus"` or
            `"linear"`. Defaults to `"exponential"`.
        expected_loss: the loss at step 0 with this bias (may be negative).
            Defaults to None.

    Reference:
        - [McCullagh & Nelder, 1989, "Generalized Linear Models"](
          https://doi.org/10.1007/978-1-4899-3242-6) (the log link).
    """

    def __init__(self, rate: Numbers, link: str = "exponential", *,
                 expected_loss: Optional[float] = None):
        if link not in LINKS:
            raise ValueError(
                f"`link` must be one of {list(LINKS)}. Received: link={link!r}"
            )
        rate = as_vector(rate, "rate")
        if (rate <= 0).any():
            raise ValueError(
                "Every rate must be positive (a Poisson mean). "
                f"Received: rate={rate.tolist()}"
            )
        self._rate = rate
        self.link = link
        self._bias = inverse_link(rate, link)
        if expected_loss is not None:
            expected_loss = float(expected_loss)
            if not math.isfinite(expected_loss):
                raise ValueError(
                    "`expected_loss` must be a finite number or None. "
                    f"Received: expected_loss={expected_loss!r}"
                )
        self._expected_loss = expected_loss

    @property
    def rate(self) -> np.ndarray:
        """The constant rate this bias predicts (a copy)."""
        return self._rate.copy()

    def get_config(self) -> dict:
        return {"rate": plain(self._rate), "link": self.link,
                "expected_loss": self._expected_loss}
