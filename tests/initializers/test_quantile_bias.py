"""QuantileBias: the exact (weighted) q-quantile; expected_loss the mean pinball
loss, checked against NumPy and against a Keras model's own `evaluate`."""

import json

import keras
import numpy as np
import pytest
from tests._tf import tf

import keras_biasinit as kbi

pytestmark = pytest.mark.keras  # runs under every backend (conftest.py)


def pinball_loss(q):
    """The pinball loss as a Keras loss function (keras.ops only)."""
    def loss(y_true, y_pred):
        r = y_true - y_pred
        return keras.ops.mean(keras.ops.maximum(q * r, (q - 1) * r), axis=-1)
    return loss


@pytest.mark.parametrize("q", [0.1, 0.5, 0.9])
def test_from_dataset_equals_numpy_and_keras_evaluate(rng, q):
    x = rng.normal(size=(600, 3)).astype("float32")
    y = (rng.lognormal(3, 1, size=(600, 2)) * [1.0, 10.0]).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
    init = kbi.QuantileBias.from_dataset(ds, q=q, verbose=0)
    np.testing.assert_allclose(
        init.bias, np.quantile(y.astype(np.float64), q, axis=0,
                               method="averaged_inverted_cdf"), rtol=1e-15)
    model = keras.Sequential([
        keras.Input((3,)),
        keras.layers.Dense(2, kernel_initializer="zeros", bias_initializer=init),
    ])
    model.compile(loss=pinball_loss(q))
    measured = model.evaluate(ds, verbose=0)
    assert measured == pytest.approx(init.expected_loss, rel=1e-5)


def test_sample_weights_weight_the_quantile_and_the_loss(rng):
    x = rng.normal(size=(500, 2)).astype("float32")
    y = rng.normal(size=(500, 1)).astype("float32")
    w = rng.integers(1, 4, size=500).astype("float32")
    init = kbi.QuantileBias.from_dataset((x, y, w), q=0.8, verbose=0)
    repeated = np.repeat(y[:, 0].astype(np.float64), w.astype(int))
    assert init.bias[0] == pytest.approx(
        np.quantile(repeated, 0.8, method="averaged_inverted_cdf"), rel=1e-12)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(
        1, kernel_initializer="zeros", bias_initializer=init)])
    model.compile(loss=pinball_loss(0.8))
    measured = model.evaluate(x, y, sample_weight=w, batch_size=500, verbose=0)
    assert measured == pytest.approx(init.expected_loss, rel=1e-5)


def test_q_one_half_gives_median_bias_numbers(rng):
    y = rng.normal(size=1001)
    quantile = kbi.QuantileBias.from_dataset(y, q=0.5, verbose=0)
    median = kbi.MedianBias.from_dataset(y, verbose=0)
    assert quantile.bias.tolist() == median.bias.tolist()
    assert quantile.expected_loss == pytest.approx(median.expected_loss / 2,
                                                   rel=1e-12)


def test_config_round_trips_and_a_model_reloads(tmp_path, rng):
    init = kbi.QuantileBias.from_dataset(rng.normal(size=(50, 2)), q=0.25,
                                         verbose=0)
    config = json.loads(json.dumps(init.get_config()))
    assert config["q"] == 0.25 and len(config["quantile"]) == 2
    assert kbi.QuantileBias.from_config(config).get_config() == init.get_config()
    model = keras.Sequential([keras.Input((3,)),
                              keras.layers.Dense(2, bias_initializer=init)])
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    restored = loaded.layers[-1].bias_initializer
    assert type(restored) is kbi.QuantileBias
    assert restored.get_config() == init.get_config()


@pytest.mark.parametrize("q", [0.0, 1.0, 2, "0.9", None])
def test_bad_q_is_a_clear_error(q):
    with pytest.raises(ValueError, match="`q` must"):
        kbi.QuantileBias([1.0], q=q)
    with pytest.raises(ValueError, match="`q` must"):
        kbi.QuantileBias.from_dataset(np.ones(3), q=q, verbose=0)
