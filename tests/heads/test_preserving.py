"""Which layers preserve the output, and how the shape-only ones move units."""

import keras
import numpy as np
import pytest

from keras_biasinit.heads.preserving import ACTIVATION
from keras_biasinit.heads.preserving import AFFINE
from keras_biasinit.heads.preserving import SHAPE
from keras_biasinit.heads.preserving import activation_name
from keras_biasinit.heads.preserving import affine_parts
from keras_biasinit.heads.preserving import kind_of
from keras_biasinit.heads.preserving import move_units

pytestmark = pytest.mark.keras
L = keras.layers


@pytest.mark.parametrize("layer, kind", [
    (L.Activation("relu"), ACTIVATION), (L.Softmax(), ACTIVATION),
    (L.LeakyReLU(), ACTIVATION), (L.PReLU(), ACTIVATION),
    (L.Reshape((2, 2)), SHAPE), (L.Flatten(), SHAPE), (L.Permute((2, 1)), SHAPE),
    (L.Dropout(0.5), SHAPE), (L.GaussianNoise(0.1), SHAPE),
    (L.SpatialDropout1D(0.1), SHAPE), (L.Identity(), SHAPE),
    (L.ActivityRegularization(0.1), SHAPE), (L.Rescaling(2.0), AFFINE),
    (L.Dense(2), None), (L.BatchNormalization(), None),
    (L.Lambda(lambda t: t), None), (L.Add(), None),
])
def test_kind_of(layer, kind):
    assert kind_of(layer) == kind


def test_keras_ops_activations_in_a_graph():
    inputs = keras.Input((3,))
    for fn, name in ((keras.ops.softmax, "softmax"), (keras.ops.exp, "exponential"),
                     (keras.ops.sigmoid, "sigmoid")):
        op = fn(inputs)._keras_history.operation
        assert kind_of(op) == ACTIVATION and activation_name(op) == name
    op = keras.ops.softmax(inputs, axis=0)._keras_history.operation
    assert activation_name(op) == "softmax(axis=0)"
    assert kind_of(keras.ops.tanh(inputs)._keras_history.operation) is None


def test_activation_names():
    assert activation_name(L.Softmax(axis=1)) == "softmax(axis=1)"
    assert activation_name(L.ReLU()) == "relu"
    assert activation_name(L.ReLU(max_value=6.0)) != "relu"
    assert activation_name(L.Dense(2)) == "linear"
    assert activation_name(L.Activation("exponential")) == "exponential"


def test_moves_match_keras():
    """Each move of an index array equals the layer's own call on it."""
    x = np.arange(24, dtype="float32").reshape(1, 2, 3, 4)
    for layer in (L.Reshape((6, 4)), L.Permute((3, 1, 2)), L.Flatten(),
                  L.Flatten(data_format="channels_first"), L.Dropout(0.5)):
        keras_out = keras.ops.convert_to_numpy(layer(x, training=False))[0]
        np.testing.assert_array_equal(move_units(layer, x[0]), keras_out)


def test_affine_parts_broadcast_and_zero_scale():
    scale, offset = affine_parts(L.Rescaling([1.0, 2.0], offset=0.5), (3, 2))
    assert scale.shape == offset.shape == (3, 2)
    np.testing.assert_array_equal(scale[:, 1], [2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="zero scale"):
        affine_parts(L.Rescaling(0.0), (2,))
    with pytest.raises(ValueError, match="do not broadcast"):
        affine_parts(L.Rescaling([1.0, 2.0, 3.0]), (2,))
