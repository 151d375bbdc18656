"""MappedBias: a head's bias where the loss sees its units moved or rescaled."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import keras
import numpy as np
from keras import ops

from keras_biasinit.initializers._base import BiasInitializer
from keras_biasinit.initializers._base import as_vector
from keras_biasinit.initializers._base import plain


@keras.saving.register_keras_serializable(package="keras_biasinit")
class MappedBias(BiasInitializer):
    """Initializer of a head whose units reach the loss moved or rescaled.

    When the layers after the head move its units (`Reshape`, `Permute`,
    `Flatten`) or rescale them (`Rescaling`: `y = x * scale + offset`), the
    best constant `c` of the loss (held by `source`, e.g. a
    `ClassPriorBias`) is put at every loss unit `p` by the bias

        bias[index[p]] = (c[p[-1]] - offset[p]) / scale[p]

    (`keras_biasinit.heads.units`). `value` holds that bias, flat; `source`
    the loss's initializer, whose `expected_loss` this one reports. Built by
    `kbi.adapt_output_bias`.

    Example:

    >>> from keras_biasinit.initializers import MeanBias
    >>> init = MappedBias([0.5, 1.5, 0.5, 1.5], MeanBias([1.0, 3.0]))
    >>> keras.ops.convert_to_numpy(init((4,))).tolist()
    [0.5, 1.5, 0.5, 1.5]

    Args:
        value: the bias, flat (in the bias's own order).
        source: the initializer of the loss's best constant (or its config).
    """

    def __init__(self, value: Sequence[float], source: Any) -> None:
        self._bias = as_vector(value, "value")
        if isinstance(source, dict):
            source = keras.saving.deserialize_keras_object(source)
        if not isinstance(source, BiasInitializer):
            raise ValueError(
                "`source` must be a keras_biasinit bias initializer. Received: "
                f"source={source!r}"
            )
        self.source = source

    @property
    def expected_loss(self) -> Optional[float]:
        return self.source.expected_loss

    def __call__(self, shape, dtype=None):
        shape = tuple(int(d) for d in shape)
        size = self._bias.shape[0]
        if int(np.prod(shape)) != size:
            raise ValueError(
                f"MappedBias holds {size} values, which cannot fill a variable of "
                f"shape {shape}. Recompute it for this layer."
            )
        flat = super().__call__((size,), dtype)
        return ops.reshape(flat, shape)

    def get_config(self) -> dict:
        return {"value": plain(self._bias) if self._bias.size > 1
                else [float(self._bias[0])],
                "source": keras.saving.serialize_keras_object(self.source)}
