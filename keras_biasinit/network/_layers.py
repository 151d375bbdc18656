"""What each kind of layer is to the walk: its kernels, and how it passes scale.

A *kernel layer* has weights that scale its output: `Dense`, `EinsumDense`,
`Conv*` (and transposed), `DepthwiseConv*` (its depthwise kernel, `kernel` in Keras 3),
`SeparableConv*` (its pointwise kernel), `Embedding` (its table) and
`MultiHeadAttention` (its query, key, value and output projections, with ONE
gain: Keras rebuilds the four from the layer's single `kernel_initializer`).
A *pass-through* op keeps a tensor's scale up to a positive factor
(`f(g x) = g f(x)` for `g > 0`): shape-only layers, dropout, pooling, ReLU.
A *normalisation* layer makes its output independent of its input's scale.
"""

from __future__ import annotations

import dataclasses
from typing import Any, List, Optional

import keras
import numpy as np
from keras import ops

from keras_biasinit.heads.preserving import function_name
from keras_biasinit.initializers.rescaled import Rescaled

_L = keras.layers

_SEPARABLE = (_L.SeparableConv1D, _L.SeparableConv2D)
_DEPTHWISE = (_L.DepthwiseConv1D, _L.DepthwiseConv2D)
_KERNEL = (_L.Dense, _L.EinsumDense, _L.Conv1D, _L.Conv2D, _L.Conv3D,
           _L.Conv1DTranspose, _L.Conv2DTranspose, _L.Conv3DTranspose)

PASS_THROUGH = tuple(
    getattr(_L, name) for name in (
        "Reshape", "Flatten", "Permute", "RepeatVector", "Identity",
        "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
        "GaussianDropout", "AlphaDropout",
        "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D",
        "Cropping1D", "Cropping2D", "Cropping3D",
        "UpSampling1D", "UpSampling2D", "UpSampling3D",
        "MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
        "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
        "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
        "GlobalAveragePooling1D", "GlobalAveragePooling2D",
        "GlobalAveragePooling3D",
    ) if hasattr(_L, name)
)
NORMALISATION = tuple(
    getattr(_L, name) for name in (
        "BatchNormalization", "LayerNormalization", "GroupNormalization",
        "UnitNormalization", "RMSNormalization",
    ) if hasattr(_L, name)
)
_HOMOGENEOUS_ACTIVATIONS = ("linear", "relu")


def passes_scale(op: Any) -> bool:
    """`op(g x) = g op(x)` for every `g > 0` (a positively homogeneous op)."""
    if isinstance(op, PASS_THROUGH):
        return True
    if isinstance(op, _L.Activation):
        return function_name(op.activation) in _HOMOGENEOUS_ACTIVATIONS
    if isinstance(op, _L.ReLU):
        return not op.max_value and not op.threshold
    return False


def is_sum(op: Any) -> bool:
    """A residual sum: `keras.layers.Add` or the `+` of two Keras tensors."""
    return isinstance(op, _L.Add) or (
        type(op).__name__ == "Add" and type(op).__module__.startswith("keras.src.ops"))


@dataclasses.dataclass
class Kernels:
    """One kernel layer's scaled variables and where its initializer lives."""

    layer: Any
    variables: List[Any]
    owners: List[Any]  # (object, initializer attribute) pairs, set on success
    nominal_power: float  # d log E[out^2] / d log g, for the first step


def kernels_of(layer: Any) -> Optional[Kernels]:
    """The layer's kernels, or None if it has none that scale its output."""
    if getattr(layer, "lora_enabled", False) or getattr(layer, "quantization_mode",
                                                        None):
        return None
    if isinstance(layer, _L.MultiHeadAttention):
        subs = [getattr(layer, f"_{name}_dense", None)
                for name in ("query", "key", "value", "gate", "output")]
        subs = [sub for sub in subs if sub is not None and sub.built]
        if not subs:
            return None
        owners = [(layer, "_kernel_initializer")] + [
            (sub, "kernel_initializer") for sub in subs]
        return Kernels(layer, [sub.kernel for sub in subs], owners, 4.0)
    if isinstance(layer, _SEPARABLE):
        slot = ("pointwise_kernel", "pointwise_initializer")
    elif isinstance(layer, _DEPTHWISE):
        slot = ("kernel", "depthwise_initializer")
    elif isinstance(layer, _L.Embedding):
        slot = ("embeddings", "embeddings_initializer")
    elif isinstance(layer, _KERNEL):
        slot = ("kernel", "kernel_initializer")
    else:
        return None
    variable = getattr(layer, slot[0], None)
    if variable is None:
        return None
    return Kernels(layer, [variable], [(layer, slot[1])], 2.0)


def is_homogeneous(layer: Any) -> bool:
    """Whether the output scales exactly with the kernel: `out(g W) = g out(W)`
    (an Embedding; else a linear or ReLU activation and no or a zero bias)."""
    if isinstance(layer, _L.Embedding):
        return True
    if isinstance(layer, _L.MultiHeadAttention):
        return False
    if function_name(getattr(layer, "activation", None)) not in \
            _HOMOGENEOUS_ACTIVATIONS:
        return False
    bias = getattr(layer, "bias", None)
    return bias is None or not np.any(keras.ops.convert_to_numpy(bias))


def scale_variables(kernels: Kernels, factor: float) -> None:
    for variable in kernels.variables:
        variable.assign(variable * keras.ops.cast(factor, variable.dtype))


def set_initializers(kernels: Kernels, gain: float) -> None:
    """Each owner's initializer becomes `Rescaled(original, gain)`."""
    for owner, attribute in kernels.owners:
        setattr(owner, attribute, Rescaled(getattr(owner, attribute), gain))


class kernel_part:
    """Within: the layer computes `W x` only (linear activation, zero bias)."""

    def __init__(self, layer) -> None:
        self.layer = layer
        self.bias = getattr(layer, "bias", None)

    def __enter__(self):
        self.activation = getattr(self.layer, "activation", None)
        if hasattr(self.layer, "activation"):
            self.layer.activation = keras.activations.linear
        if self.bias is not None:
            self.saved = ops.convert_to_numpy(self.bias)
            self.bias.assign(np.zeros_like(self.saved))
        return self

    def __exit__(self, *exc) -> None:
        if hasattr(self.layer, "activation"):
            self.layer.activation = self.activation
        if self.bias is not None:
            self.bias.assign(self.saved)
