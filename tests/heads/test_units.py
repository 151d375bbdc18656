"""The head's units pushed to the loss: index, scale, offset, activation."""

import keras
import numpy as np
import pytest

from keras_biasinit.heads.units import UnitMap
from keras_biasinit.heads.units import follow

pytestmark = pytest.mark.keras
L = keras.layers


def _dense(units, activation=None):
    layer = L.Dense(units, activation=activation, name="head")
    layer.build((None, 3))
    return layer


def test_trivial_map_is_the_constants():
    m = follow(_dense(3), (3,), (3,), [L.Dropout(0.1), L.Softmax()])
    assert m.trivial and m.activation == "softmax" and m.units == 3


def test_reshape_and_rescaling_solve_for_the_bias():
    """loss[t, k] = 2 * bias[2t + k] + 1 must be c[k]."""
    m = follow(_dense(4), (4,), (4,), [L.Reshape((2, 2)), L.Rescaling(2.0, 1.0)])
    assert not m.trivial and m.units == 2
    bias = m.bias([5.0, -1.0], "head")
    np.testing.assert_allclose(2 * bias + 1, [5.0, -1.0, 5.0, -1.0])


def test_unknown_steps_broadcast_the_bias():
    m = follow(_dense(2), (2,), (None, 2), [])
    assert m.trivial and m.index.shape == (1, 2)


def test_inconsistent_unit_is_an_error():
    m = UnitMap(np.array([0, 0]), np.ones(2), np.zeros(2), "linear", (1,))
    with pytest.raises(ValueError, match="Bias unit 0 of layer 'x'"):
        m.bias([1.0, 2.0], "x")


def test_two_nonlinear_activations_are_an_error():
    with pytest.raises(ValueError, match="sigmoid and then softmax"):
        follow(_dense(2, "sigmoid"), (2,), (2,), [L.Softmax()])
    with pytest.raises(ValueError, match="`activation=`"):
        follow(_dense(2, "sigmoid"), (2,), (2,), [], activation="softmax")
    assert follow(_dense(2), (2,), (2,), [], activation="softmax").activation == \
        "softmax"
