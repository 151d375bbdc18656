"""MappedBias: the bias of a head whose units reach the loss moved or rescaled."""

import json

import keras
import numpy as np
import pytest

import keras_biasinit as kbi

pytestmark = pytest.mark.keras


def test_config_is_plain_and_rebuilds_it():
    init = kbi.MappedBias([0.5, 1.5, 0.5, 1.5], kbi.MeanBias([1.0, 3.0],
                                                              expected_loss=2.0))
    config = json.loads(json.dumps(init.get_config(), sort_keys=True))
    again = kbi.MappedBias.from_config(config)
    assert again.bias.tolist() == [0.5, 1.5, 0.5, 1.5]
    assert again.expected_loss == 2.0 and again.source.bias.tolist() == [1.0, 3.0]
    same = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(init))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(same((2, 2))),
                                  [[0.5, 1.5], [0.5, 1.5]])


def test_bad_values():
    with pytest.raises(ValueError, match="cannot fill a variable of shape"):
        kbi.MappedBias([1.0, 2.0, 3.0], kbi.MeanBias(1.0))((2,))
    with pytest.raises(ValueError, match="`source` must be"):
        kbi.MappedBias([1.0], "zeros")


def test_a_reshaped_head_saves_and_loads(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype("float32")
    y = rng.integers(0, 3, size=(32, 2))
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(6, name="out"),
                              keras.layers.Reshape((2, 3)), keras.layers.Softmax()])
    model.compile(loss="sparse_categorical_crossentropy")
    (init,) = kbi.adapt_output_bias(model, (x, y), verbose=0).values()
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path, compile=False).get_layer("out")
    assert isinstance(loaded.bias_initializer, kbi.MappedBias)
    assert loaded.bias_initializer.expected_loss == pytest.approx(init.expected_loss)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded.bias),
                               np.tile(init.bias, 2), rtol=1e-6)
