"""The shared base of the bias initializers: a vector of numbers, broadcast.

Subclasses only compute their numbers (in `from_dataset`) and name them in their
config; storing, checking and emitting the bias is done here, with Keras ops, so
`__call__` is pure and works in graph mode, under `tf.distribute` strategies and
under mixed precision.
"""

from __future__ import annotations

import math
from typing import Any, List, Optional, Sequence, Union

import keras
import numpy as np
from keras import ops

Numbers = Union[float, Sequence[float], np.ndarray]


def as_vector(value: Any, name: str) -> np.ndarray:
    """Checks a scalar or 1-D list of finite numbers; returns a float64 vector."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        array = np.asarray(None)
    if array.dtype.kind not in "iuf":  # not strings, bools, None or objects
        raise ValueError(
            f"`{name}` must be a number or a flat list of numbers. "
            f"Received: {name}={value!r}"
        )
    array = array.astype(np.float64)
    if array.ndim > 1:
        raise ValueError(
            f"`{name}` must be a number or a 1-D list (one value per output); got "
            f"shape {array.shape}. Received: {name}={value!r}"
        )
    array = array.reshape(-1)
    if array.size == 0:
        raise ValueError(f"`{name}` must not be empty. Received: {name}={value!r}")
    if not np.isfinite(array).all():
        raise ValueError(
            f"`{name}` must hold finite numbers only. Received: {name}={value!r}"
        )
    return array


def plain(array: np.ndarray) -> Union[float, List[float]]:
    """A JSON-plain config value: a float for one number, else a list of floats."""
    values = [float(v) for v in np.asarray(array).reshape(-1)]
    return values[0] if len(values) == 1 else values


def check_expected_loss(value: Optional[float]) -> Optional[float]:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, (str, bytes)) or not math.isfinite(number) or number < 0:
        raise ValueError(
            "`expected_loss` must be a finite, non-negative number or None. "
            f"Received: expected_loss={value!r}"
        )
    return number


# The largest finite value of each float dtype a bias may be created in.
_FINITE_MAX = {
    "float16": float(np.finfo(np.float16).max),
    "bfloat16": 3.3895313892515355e38,
    "float32": float(np.finfo(np.float32).max),
}


class BiasInitializer(keras.initializers.Initializer):
    """Base class: emits a fixed bias vector, broadcast along the last axis.

    Subclasses set `self._bias` (a float64 vector) and `self._expected_loss`.
    A vector of length `k` serves any shape whose last dimension is `k`; a single
    number serves any shape.
    """

    _bias: np.ndarray
    _expected_loss: Optional[float]

    @property
    def bias(self) -> np.ndarray:
        """The bias values this initializer emits (a copy, float64)."""
        return self._bias.copy()

    @property
    def expected_loss(self) -> Optional[float]:
        """The loss a model with this bias (and a ~0 kernel) shows at step 0.

        None when the initializer was built from numbers alone.
        """
        return self._expected_loss

    def __call__(self, shape, dtype=None):
        dtype = keras.backend.standardize_dtype(dtype)
        shape = tuple(int(d) for d in shape)
        size = self._bias.shape[0]
        if size != 1 and (not shape or shape[-1] != size):
            raise ValueError(
                f"{type(self).__name__} holds {size} values, which cannot fill a "
                f"variable of shape {shape}: the last dimension must be {size}. "
                "Use a layer with that many units, or recompute the initializer "
                "for this output."
            )
        limit = _FINITE_MAX.get(dtype)
        if limit is not None and float(np.abs(self._bias).max()) > limit:
            raise ValueError(
                f"{type(self).__name__} holds {float(np.abs(self._bias).max()):g}, "
                f"which overflows to inf in {dtype} (largest finite value "
                f"{limit:g}). Keep the variables in float32 (e.g. the "
                '"mixed_float16" policy instead of "float16"), or rescale the '
                "targets."
            )
        host_dtype = "float64" if dtype == "float64" else "float32"
        value = ops.convert_to_tensor(self._bias.astype(host_dtype))
        return ops.broadcast_to(ops.cast(value, dtype), shape)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
