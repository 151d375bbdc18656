"""`layer=` and `activation=`, and the input sample a trace runs on."""

import itertools

import keras
import numpy as np
import pytest

from keras_biasinit.heads import InputSample
from keras_biasinit.heads.arguments import activation_arg
from keras_biasinit.heads.arguments import layer_arg
from keras_biasinit.heads.arguments import per_output

pytestmark = pytest.mark.keras
L = keras.layers


@pytest.fixture(scope="module")
def nested():
    inner = keras.Sequential([keras.Input((3,)), L.Dense(2, name="deep")],
                             name="inner")
    inputs = keras.Input((3,))
    return keras.Model(inputs, inner(inputs))


def test_layer_by_name_or_object_nested_too(nested):
    deep = layer_arg(nested, "deep")
    assert deep.name == "deep" and layer_arg(nested, deep) is deep
    with pytest.raises(ValueError, match="names no layer.*'deep'"):
        layer_arg(nested, "nope")
    with pytest.raises(ValueError, match="not a layer of this model"):
        layer_arg(nested, L.Dense(2))
    with pytest.raises(TypeError, match="`layer` must be"):
        layer_arg(nested, 3)


def test_activation_and_per_output():
    assert activation_arg(None) == (None, None)
    name, fn = activation_arg(keras.activations.sigmoid)
    assert name == "sigmoid" and fn is keras.activations.sigmoid
    with pytest.raises(ValueError, match="Keras activation"):
        activation_arg("no_such_activation")
    assert per_output({"a": 1}, ["a", "b"], "layer") == [1, None]
    assert per_output(2, ["a", "b"], "layer") == [2, 2]
    with pytest.raises(ValueError, match=r"keys \['c'\]"):
        per_output({"c": 1}, ["a", "b"], "layer")


def test_sample_rows_from_each_kind_of_input():
    tf = pytest.importorskip("tensorflow")

    x, y = np.arange(12.0).reshape(6, 2), np.arange(6)
    assert InputSample((x, y))().shape == (2, 2)
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    np.testing.assert_array_equal(InputSample(ds)(), x[:2])
    np.testing.assert_array_equal(InputSample(ds.batch(3))(), x[:2])
    generator = ((x[i:i + 3], y[i:i + 3]) for i in (0, 3))
    sample = InputSample(generator)
    np.testing.assert_array_equal(sample(), x[:2])
    # The peeked element comes back in front: nothing is lost.
    rows = [b[1].tolist() for b in itertools.islice(sample.data, 5)]
    assert rows == [[0, 1, 2], [3, 4, 5]]
