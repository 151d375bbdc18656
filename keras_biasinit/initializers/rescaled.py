"""Rescaled: another initializer's values times a gain measured on data."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops


def _check_gain(gain: Any) -> float:
    try:
        value = float(gain)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(gain, (bool, str, bytes)) or not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"`gain` must be a finite, positive number. Received: gain={gain!r}"
        )
    return value


@keras.saving.register_keras_serializable(package="keras_biasinit")
class Rescaled(keras.initializers.Initializer):
    """Another initializer's values, multiplied by a fixed gain.

        W = gain * initializer(shape, dtype)

    so `E[W^2]` is `gain^2` times the original's. This is what
    `kbi.adapt_kernel_scales` sets as each scaled layer's kernel initializer:
    the original initializer (its full config, seed included) and the gain
    measured on the data, so `get_config`, `keras.models.clone_model` and
    `.keras` files rebuild kernels of the same scale. A `Rescaled` of a
    `Rescaled` is folded into one (the gains multiply).

    Examples:

    >>> init = Rescaled(keras.initializers.Ones(), gain=0.5)
    >>> keras.ops.convert_to_numpy(init(shape=(2,))).tolist()
    [0.5, 0.5]
    >>> layer = keras.layers.Dense(
    ...     4, kernel_initializer=Rescaled("he_normal", gain=0.1))

    Args:
        initializer: the original initializer: an instance, a name
            (`"glorot_uniform"`) or a serialized config.
        gain: the positive number its values are multiplied by.
    """

    def __init__(self, initializer: Any, gain: float):
        gain = _check_gain(gain)
        initializer = keras.initializers.get(initializer)
        if initializer is None:
            raise ValueError(
                "`initializer` must be a Keras initializer, its name or its "
                "config. Received: initializer=None"
            )
        if isinstance(initializer, Rescaled):
            initializer, gain = initializer.initializer, initializer.gain * gain
        self.initializer = initializer
        self.gain = gain

    def __call__(self, shape, dtype=None):
        dtype = keras.backend.standardize_dtype(dtype)
        values = self.initializer(shape, dtype=dtype)
        return ops.multiply(values, ops.cast(self.gain, dtype))

    def get_config(self) -> dict:
        return {
            "initializer": keras.initializers.serialize(self.initializer),
            "gain": self.gain,
        }

    @classmethod
    def from_config(cls, config: dict) -> "Rescaled":
        config = dict(config)
        initializer = keras.initializers.deserialize(config.pop("initializer"))
        return cls(initializer, **config)

    def __repr__(self) -> str:
        return f"Rescaled({self.initializer!r}, gain={self.gain!r})"
