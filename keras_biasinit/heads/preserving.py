"""Which layers preserve the output: activations, shape-only, closed-form affine.

A layer between the head and the model output is *output-preserving* when the
loss still sees the head's units, each one moved, rescaled or passed through
an activation in a way known in closed form:

- activations: `Activation`, `Softmax`, `ReLU`, `LeakyReLU`, `ELU`, `PReLU`
  (named here; the loss table decides which ones it knows);
- shape-only layers: `Reshape`, `Flatten`, `Permute` (they move units) and
  `Dropout`, the other dropout and noise layers, `Identity`,
  `ActivityRegularization` (the identity in inference);
- affine layers with a closed form: `Rescaling`, `y = x * scale + offset`
  (scalars, or per channel along the last axis).

In a functional graph, an activation applied with `keras.ops` (`softmax`,
`sigmoid`, `softplus`, `exp`, `relu`) is an operation node, not a layer, and
counts as an activation too.

`kind_of(layer)` says which of these a layer is (None for any other layer),
`activation_name` names an activation, and `move_units` moves an array laid
out like a layer's input the way the layer moves its input.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import keras
import numpy as np

__all__ = ["ACTIVATION", "AFFINE", "SHAPE", "activation_name", "kind_of",
           "move_units", "MIXING"]

ACTIVATION, SHAPE, AFFINE = "activation", "shape", "affine"

#: Activations that mix the units of the last axis (not elementwise).
MIXING = ("softmax", "log_softmax")

_ACTIVATIONS = (keras.layers.Activation, keras.layers.Softmax, keras.layers.ReLU,
                keras.layers.LeakyReLU, keras.layers.ELU, keras.layers.PReLU)
_MOVING = (keras.layers.Reshape, keras.layers.Flatten, keras.layers.Permute)
_IDENTITY_AT_INFERENCE = tuple(
    getattr(keras.layers, name) for name in (
        "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
        "GaussianDropout", "GaussianNoise", "AlphaDropout", "Identity",
        "ActivityRegularization")
    if hasattr(keras.layers, name)
)


#: Activation operations of `keras.ops` (graph nodes, not layers), by class.
_OPS = {"Softmax": "softmax", "Sigmoid": "sigmoid", "Softplus": "softplus",
        "Exp": "exponential", "Relu": "relu"}


def _op_activation(layer: Any) -> Optional[str]:
    kind = type(layer)
    if isinstance(layer, keras.layers.Layer) or not kind.__module__.startswith(
            "keras.src.ops") or kind.__name__ not in _OPS:
        return None
    axis = getattr(layer, "axis", -1)
    name = _OPS[kind.__name__]
    return name if axis in (-1, None) else f"{name}(axis={axis})"


def kind_of(layer: Any) -> Optional[str]:
    """`ACTIVATION`, `SHAPE`, `AFFINE`, or None for any other layer.

    Example:

    >>> kind_of(keras.layers.Reshape((2, 3))), kind_of(keras.layers.Dense(2))
    ('shape', None)
    """
    if isinstance(layer, _ACTIVATIONS) or _op_activation(layer):
        return ACTIVATION
    if isinstance(layer, _MOVING + _IDENTITY_AT_INFERENCE):
        return SHAPE
    if isinstance(layer, keras.layers.Rescaling):
        return AFFINE
    return None


def function_name(fn: Any) -> str:
    """The Keras name of an activation function (`"linear"` for None)."""
    if fn is None:
        return "linear"
    try:
        name = keras.activations.serialize(fn)
    except (ValueError, TypeError):
        name = None
    return name if isinstance(name, str) else getattr(fn, "__name__", repr(fn))


def activation_name(layer: Any) -> str:
    """The activation an activation layer (or a layer's own `activation`)
    applies, as the loss table names it.

    Example:

    >>> activation_name(keras.layers.Softmax()), activation_name(
    ...     keras.layers.Dense(2, activation="sigmoid"))
    ('softmax', 'sigmoid')
    """
    if _op_activation(layer):
        return _op_activation(layer)
    if isinstance(layer, keras.layers.Softmax):
        axis = layer.axis
        return "softmax" if axis in (-1, [-1], (-1,)) else f"softmax(axis={axis})"
    if isinstance(layer, keras.layers.ReLU):
        plain = (layer.max_value is None and not layer.negative_slope
                 and not layer.threshold)
        return "relu" if plain else "relu(clipped or leaky)"
    if isinstance(layer, keras.layers.LeakyReLU):
        return "leaky_relu"
    if isinstance(layer, keras.layers.ELU):
        return "elu"
    if isinstance(layer, keras.layers.PReLU):
        return "prelu (a learned slope)"
    return function_name(getattr(layer, "activation", None))


def affine_parts(layer: Any, shape: Tuple[int, ...]) -> Tuple[np.ndarray, np.ndarray]:
    """A `Rescaling` layer's `(scale, offset)`, broadcast to its output
    `shape`; a zero scale is a ValueError (nothing reaches the loss)."""
    scale = np.asarray(layer.scale, np.float64)
    offset = np.asarray(layer.offset, np.float64)
    try:
        scale, offset = (np.broadcast_to(a, shape) for a in (scale, offset))
    except ValueError as error:
        raise ValueError(
            f"Layer '{layer.name}' (Rescaling) has a scale of shape "
            f"{np.shape(layer.scale)} and an offset of shape "
            f"{np.shape(layer.offset)}, which do not broadcast to its output "
            f"shape {shape}."
        ) from error
    if not np.all(scale):
        raise ValueError(
            f"Layer '{layer.name}' (Rescaling) has a zero scale: the loss does not "
            "see the bias of the layer before it, so no bias can be set."
        )
    return scale, offset


def move_units(layer: Any, array: np.ndarray) -> np.ndarray:
    """`array` (laid out like one example of the layer's input) moved as the
    shape-only `layer` moves its input, at inference.

    Example:

    >>> move_units(keras.layers.Reshape((2, 2)), np.arange(4)).tolist()
    [[0, 1], [2, 3]]
    >>> move_units(keras.layers.Permute((2, 1)), np.arange(4).reshape(2, 2))
    array([[0, 2],
           [1, 3]])
    """
    if isinstance(layer, keras.layers.Reshape):
        return array.reshape(tuple(layer.target_shape))
    if isinstance(layer, keras.layers.Permute):
        return np.transpose(array, [d - 1 for d in layer.dims])
    if isinstance(layer, keras.layers.Flatten):
        if layer.data_format == "channels_first" and array.ndim > 1:
            array = np.moveaxis(array, 0, -1)
        return array.reshape(-1)
    return array  # the identity at inference (dropout, noise, ...)
