"""Subclassed tracing: the producer of each output, from one recorded call."""

import keras
import numpy as np
import pytest

from keras_biasinit.heads.path import Unproven
from keras_biasinit.heads.trace import trace
from keras_biasinit.heads.trace import walk_trace

pytestmark = [
    pytest.mark.keras,
    # Each mode leaves some sublayers of `Model` unused, which Keras warns of.
    pytest.mark.filterwarnings("ignore:`build\\(\\)` was called:UserWarning"),
]
L = keras.layers


class Block(keras.layers.Layer):
    """A layer whose output comes from an op outside its sublayers."""

    def __init__(self):
        super().__init__()
        self.dense = L.Dense(2, name="inner")

    def call(self, inputs):
        return self.dense(inputs) * 2.0


class Model(keras.Model):
    def __init__(self, mode):
        super().__init__()
        self.out = L.Dense(2, name="out")
        self.hidden = L.Dense(3, name="hidden")
        self.drop = L.Dropout(0.1)
        self.block = Block()
        self.mode = mode

    def call(self, inputs):
        h = self.hidden(inputs)
        if self.mode == "block":
            return self.block(h)
        if self.mode == "dict":
            return {"a": self.drop(self.out(h)), "b": self.hidden(inputs)}
        return keras.ops.sigmoid(self.out(h))


X = np.ones((2, 4), "float32")


def test_dict_outputs_and_layers_that_return_their_input():
    model = Model("dict")
    recorded = trace(model, X)
    outputs = dict(recorded.named_outputs())
    assert walk_trace(recorded, outputs["a"]).head.name == "out"
    assert walk_trace(recorded, outputs["b"]).head.name == "hidden"
    # The model's own call is recorded last, and is nobody's producer.
    assert recorded.calls[-1].layer is model


def test_an_op_in_call_needs_the_activation():
    recorded = trace(Model("op"), X)
    (_, output), = recorded.named_outputs()
    with pytest.raises(Unproven, match="outside any layer"):
        walk_trace(recorded, output)
    path = walk_trace(recorded, output, activation=keras.activations.sigmoid)
    assert path.head.name == "out"
    with pytest.raises(Unproven, match="no layer's output"):
        walk_trace(recorded, output, activation=keras.activations.softmax)


def test_a_layer_computing_outside_its_sublayers_stops_the_walk():
    recorded = trace(Model("block"), X)
    (_, output), = recorded.named_outputs()
    with pytest.raises(Unproven, match="operations outside them"):
        walk_trace(recorded, output)


def test_the_recording_is_undone():
    call = keras.layers.Layer.__call__
    trace(Model("op"), X)
    assert keras.layers.Layer.__call__ is call
