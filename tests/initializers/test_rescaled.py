"""Rescaled: gain times another initializer's values, and its config round trip."""

import json
import os

import keras
import numpy as np
import pytest

import keras_biasinit as kbi

pytestmark = pytest.mark.keras


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_values_are_the_gain_times_the_original():
    original = keras.initializers.RandomNormal(stddev=2.0, seed=7)
    reference = _np(keras.initializers.RandomNormal(stddev=2.0, seed=7)((5, 3)))
    values = _np(kbi.Rescaled(original, 0.25)((5, 3)))
    np.testing.assert_allclose(values, 0.25 * reference, rtol=1e-6)
    assert values.dtype == np.float32


def test_name_and_config_forms_and_folding():
    assert isinstance(kbi.Rescaled("ones", 3.0).initializer, keras.initializers.Ones)
    inner = kbi.Rescaled(keras.initializers.Constant(2.0), 3.0)
    outer = kbi.Rescaled(inner, 0.5)  # folded: one Rescaled, gains multiplied
    assert isinstance(outer.initializer, keras.initializers.Constant)
    assert outer.gain == pytest.approx(1.5)
    np.testing.assert_allclose(_np(outer((2, 2))), np.full((2, 2), 3.0))


@pytest.mark.parametrize("gain", [0, -1.0, float("nan"), float("inf"), "2", True])
def test_bad_gain_is_refused(gain):
    with pytest.raises(ValueError, match="gain"):
        kbi.Rescaled("ones", gain)


def test_config_round_trip_is_plain_json():
    init = kbi.Rescaled(keras.initializers.HeNormal(seed=3), 0.125)
    config = init.get_config()
    assert json.loads(json.dumps(config, sort_keys=True)) == config
    again = kbi.Rescaled.from_config(config)
    np.testing.assert_allclose(_np(again((4, 4))), _np(init((4, 4))), rtol=1e-6)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(init))
    assert isinstance(restored, kbi.Rescaled) and restored.gain == 0.125
    assert isinstance(restored.initializer, keras.initializers.HeNormal)


def test_nested_keras_biasinit_initializer_and_keras_file(tmp_path):
    init = kbi.Rescaled(kbi.HeScaled(seed=1, second_moment=4.0), 2.0)
    model = keras.Sequential([keras.Input((3,)),
                              keras.layers.Dense(2, kernel_initializer=init)])
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    restored = loaded.layers[0].kernel_initializer
    assert isinstance(restored, kbi.Rescaled) and restored.gain == 2.0
    assert restored.initializer.second_moment == 4.0
    np.testing.assert_array_equal(_np(loaded.layers[0].kernel),
                                  _np(model.layers[0].kernel))
