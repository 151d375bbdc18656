"""FocalBias: the bias at the constant that minimises a focal loss."""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import keras
import numpy as np

from keras_biasinit.initializers._base import BiasInitializer
from keras_biasinit.initializers._base import as_vector
from keras_biasinit.initializers._base import check_expected_loss
from keras_biasinit.initializers._base import plain


def _check_unit(value, name: str) -> float:
    number = float(value)
    if isinstance(value, bool) or not 0.0 <= number <= 1.0:
        raise ValueError(
            f"`{name}` must be a number in [0, 1]. Received: {name}={value!r}"
        )
    return number


@keras.saving.register_keras_serializable(package="keras_biasinit")
class FocalBias(BiasInitializer):
    """Initializer that sets the output bias to the focal loss's best constant.

    For a `sigmoid` output (`keras.losses.BinaryFocalCrossentropy`) each output
    gets the logit `b_j = log(q_j / (1 - q_j))` of the probability `q_j` that
    minimises the mean of

        FL(t, q) = a(t) (1 - p_t)^gamma bce(t, q),  p_t = t q + (1 - t)(1 - q),

    over the data (`a(t) = t alpha + (1 - t)(1 - alpha)` with
    `apply_class_balancing`, else 1). For `gamma > 0` this is not the positive
    rate: the focal factor down-weights the frequent, easy class, so the best
    constant sits closer to 0.5. With positive rate 0.08, gamma 2, alpha 0.25
    and class balancing, `q = 0.215` gives a loss of 0.0278, the prior 0.08
    gives 0.0443.

    For a `softmax` output (`keras.losses.CategoricalFocalCrossentropy`) the
    bias is `b_k = log q_k` for the `q` on the simplex that minimises
    `sum_k alpha_k T_k (1 - q_k)^gamma (-log q_k)`, `T` the mean label vector.

    Built by `kbi.adapt_output_bias`; the loss's parameters are kept so that
    `kbi.verify_loss_at_init` can tell whether the model is compiled with the
    loss this bias was made for.

    Examples:

    >>> init = FocalBias([0.215], gamma=2.0, alpha=0.25, apply_class_balancing=True)
    >>> [round(b, 3) for b in init.bias.tolist()]  # the logit of 0.215
    [-1.295]
    >>> layer = keras.layers.Dense(1, activation="sigmoid", bias_initializer=init)

    Args:
        probabilities: the best constant probability per output (sigmoid) or
            the class probabilities (softmax; normalised here).
        activation: `"sigmoid"` or `"softmax"`. Defaults to `"sigmoid"`.
        gamma: the loss's focusing parameter. Defaults to 2.0.
        alpha: the loss's `alpha` (a number, or one per class for softmax).
            Defaults to 0.25.
        apply_class_balancing: the binary loss's flag. Defaults to False.
        label_smoothing: the loss's label smoothing. Defaults to 0.0.
        expected_loss: the loss at step 0 with this bias. Defaults to None.

    Reference:
        - [Lin et al., 2017, "Focal Loss for Dense Object Detection"](
          https://arxiv.org/abs/1708.02002)
    """

    def __init__(
        self,
        probabilities: Union[float, Sequence[float]],
        activation: str = "sigmoid",
        *,
        gamma: float = 2.0,
        alpha: Union[float, Sequence[float]] = 0.25,
        apply_class_balancing: bool = False,
        label_smoothing: float = 0.0,
        expected_loss: Optional[float] = None,
    ):
        if activation not in ("sigmoid", "softmax"):
            raise ValueError(
                '`activation` must be "sigmoid" or "softmax". '
                f"Received: activation={activation!r}"
            )
        q = as_vector(probabilities, "probabilities")
        if (q <= 0).any() or (activation == "sigmoid" and (q >= 1).any()):
            raise ValueError(
                "Every probability must lie in (0, 1): a probability of 0 or 1 "
                f"needs an infinite bias. Received: probabilities={q.tolist()}"
            )
        self.gamma = float(gamma)
        if not math.isfinite(self.gamma) or self.gamma < 0:
            raise ValueError(f"`gamma` must be >= 0. Received: gamma={gamma!r}")
        alphas = np.asarray(alpha, dtype=np.float64).reshape(-1)
        for a in alphas:
            _check_unit(a, "alpha")
        self.alpha = plain(alphas)
        self.apply_class_balancing = bool(apply_class_balancing)
        self.label_smoothing = _check_unit(label_smoothing, "label_smoothing")
        self.activation = activation
        self._probabilities = q
        if activation == "softmax":
            self._bias = np.log(q) - np.log(q.sum())
        else:
            self._bias = np.log(q) - np.log1p(-q)
        self._expected_loss = check_expected_loss(expected_loss)

    @property
    def probabilities(self) -> np.ndarray:
        """The constant prediction this bias gives (a copy)."""
        if self.activation == "softmax":
            return self._probabilities / self._probabilities.sum()
        return self._probabilities.copy()

    def get_config(self) -> dict:
        return {
            "probabilities": [float(p) for p in self._probabilities],
            "activation": self.activation,
            "gamma": self.gamma,
            "alpha": self.alpha,
            "apply_class_balancing": self.apply_class_balancing,
            "label_smoothing": self.label_smoothing,
            "expected_loss": self._expected_loss,
        }
