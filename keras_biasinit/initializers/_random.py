"""Seeds for the random weight initializers, handled exactly as Keras 3 does.

`keras.initializers.RandomNormal` and friends share a private base class
(`keras/src/initializers/random_initializers.py`) that this mirrors with public
APIs only: the seed the user gave is kept (`_init_seed`) and serialized; the
seed used to draw (`seed`) is that int or `keras.random.SeedGenerator`, or a
fresh default int for `seed=None`. So a fixed int seed repeats its values on
every call, a `SeedGenerator` gives new values on every call, an unseeded
initializer repeats its own values but a clone made from its config differs,
and a seeded clone matches.
"""

from __future__ import annotations

import random as python_random
from typing import Any, Union

import keras
import numpy as np

Seed = Union[int, "keras.random.SeedGenerator", None]


class RandomInitializer(keras.initializers.Initializer):
    """Base class: resolves and serializes `seed` like Keras's random initializers."""

    def __init__(self, seed: Seed = None):
        if isinstance(seed, np.integer):
            seed = int(seed)
        self._init_seed = seed
        if seed is None:
            # What `keras.src.random.seed_generator.make_default_seed` does, so
            # `keras.utils.set_random_seed` makes unseeded draws reproducible.
            seed = python_random.randint(1, int(1e9))
        elif isinstance(seed, dict):
            seed = keras.saving.deserialize_keras_object(seed)
        elif isinstance(seed, bool) or not isinstance(
            seed, (int, keras.random.SeedGenerator)
        ):
            raise ValueError(
                "`seed` must be an integer, a `keras.random.SeedGenerator` or "
                f"None. Received: seed={seed!r}"
            )
        self.seed = seed

    def get_config(self) -> dict:
        return {"seed": keras.saving.serialize_keras_object(self._init_seed)}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def check_positive(value: Any, name: str) -> float:
    """A finite, positive float, or a ValueError naming `name`."""
    try:
        if isinstance(value, (bool, str, bytes)):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not np.isfinite(number) or number <= 0:
        raise ValueError(
            f"`{name}` must be a finite, positive number. Received: {name}={value!r}"
        )
    return number
