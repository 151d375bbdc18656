"""The graph walk: functional, Sequential and nested models."""

import keras
import pytest

from keras_biasinit.heads.graph import graph_outputs
from keras_biasinit.heads.graph import walk_graph
from keras_biasinit.heads.graph import walk_layers
from keras_biasinit.heads.path import Unproven

pytestmark = pytest.mark.keras
L = keras.layers


def test_walk_stops_at_the_first_layer_with_a_bias():
    inputs = keras.Input((3,))
    hidden = L.Activation("relu")(L.Dense(4, name="hidden")(inputs))
    out = L.Dropout(0.1)(L.Softmax()(L.Dense(2, name="head")(hidden)))
    (name, tensor), = graph_outputs(keras.Model(inputs, out))
    path = walk_graph(tensor)
    assert path.head.name == "head" and path.head_shape == (2,)
    assert [type(a).__name__ for a in path.after] == ["Softmax", "Dropout"]


def test_walk_enters_and_leaves_nested_models():
    inner = keras.Sequential([keras.Input((4,)), L.Softmax()], name="inner")
    inputs = keras.Input((3,))
    model = keras.Model(inputs, inner(L.Dense(4, name="head")(inputs)))
    (name, tensor), = graph_outputs(model)
    assert name == "inner"
    path = walk_graph(tensor)
    assert path.head.name == "head" and len(path.after) == 1


def test_walk_stops_at_what_it_cannot_see():
    inputs = keras.Input((3,))
    out = L.BatchNormalization(name="bn")(L.Dense(2)(inputs))
    (_, tensor), = graph_outputs(keras.Model(inputs, out))
    with pytest.raises(Unproven, match="'bn'"):
        walk_graph(tensor)
    path = walk_graph(tensor, target=out._keras_history.operation)
    assert path.head.name == "bn"


def test_outputs_named_as_compile_names_them():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, {"b": L.Dense(1)(inputs), "a": L.Dense(2)(inputs)})
    assert [n for n, _ in graph_outputs(model)] == ["b", "a"]
    assert graph_outputs(keras.Sequential([L.Dense(2)])) is None


def test_walk_layers_of_an_unbuilt_sequential():
    layers = [L.Dense(3), L.Dense(2, name="head"), L.Activation("sigmoid")]
    path = walk_layers(layers)
    assert path.head.name == "head" and path.head_shape is None
    with pytest.raises(Unproven, match="no layer with a bias"):
        walk_layers([L.Softmax()])


def test_an_unknown_keras_op_stops_the_walk():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.ops.tanh(L.Dense(2)(inputs)))
    (_, tensor), = graph_outputs(model)
    with pytest.raises(Unproven, match="from `keras.ops`"):
        walk_graph(tensor)
