"""The same numbers on every Keras backend, and `.keras` files that move.

The statistics are NumPy on the host, so every backend must hold exactly what
NumPy computes: each initializer built into a variable under the running
backend (TensorFlow, JAX or torch; `make test` runs all three) is compared
with a NumPy reference computed here, bit for bit where the statistic is exact
(median, quantile), and always bit for
bit with the float32 of the initializer's own float64 numbers (so every
backend holds the same float32 numbers). A model saved
under this backend is loaded by another in a subprocess (one per run).
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_biasinit as kbi

pytestmark = pytest.mark.keras

BACKEND = keras.backend.backend()

# Deterministic data whose values are exact in float32 (multiples of 1/8, 1/4).
_I = np.arange(997)
Y = np.stack([((_I * 7919) % 1013 - 506) / 8,
              ((_I * 104729) % 499) / 4 - 60.0], axis=1).astype(np.float32)
IDS = (_I * _I) % 13 % 4  # 4 classes, skewed
X = np.stack([(_I % 13) - 6.0, (_I % 7) * 0.5], axis=1).astype(np.float32)
# Uneven batches, so the streaming merges run.
CUTS = [0, 100, 101, 600, 997]
BATCHES = [(X[a:b], Y[a:b]) for a, b in zip(CUTS, CUTS[1:])]


def _huber_location(y, delta):
    """Root of sum(clip(y - b, -delta, delta)) by bisection (float64)."""
    lo, hi = float(y.min()), float(y.max())
    for _ in range(200):
        mid = (lo + hi) / 2
        if np.clip(y - mid, -delta, delta).sum() > 0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _variable(init, units):
    layer = keras.layers.Dense(units, bias_initializer=init)
    layer.build((None, 2))
    value = keras.ops.convert_to_numpy(layer.bias)
    assert value.dtype == np.float32
    # The backend adds nothing: the float32 of the initializer's float64 numbers.
    np.testing.assert_array_equal(value, init.bias.astype(np.float32))
    return value


def test_exact_statistics_are_numpys_bit_for_bit():
    y = Y.astype(np.float64)
    median = kbi.MedianBias.from_dataset(BATCHES, verbose=0)
    quartile = kbi.QuantileBias.from_dataset(BATCHES, q=0.25, verbose=0)
    references = [
        (median, np.median(y, axis=0)),
        (quartile, np.quantile(y, 0.25, axis=0, method="averaged_inverted_cdf")),
    ]
    for init, reference in references:
        np.testing.assert_array_equal(init.bias, reference)
        np.testing.assert_array_equal(_variable(init, 2),
                                      reference.astype(np.float32))


def test_other_statistics_match_numpy_and_every_backend_casts_alike():
    y = Y.astype(np.float64)
    freq = np.bincount(IDS, minlength=4) / IDS.size
    positive = np.stack([IDS == 0, IDS == 2], axis=1).astype(np.float32)
    rate = positive.mean(axis=0, dtype=np.float64)
    cases = [
        (kbi.MeanBias.from_dataset(BATCHES, verbose=0), np.mean(y, axis=0)),
        (kbi.ClassPriorBias.from_dataset((X, IDS), verbose=0), np.log(freq)),
        (kbi.ClassPriorBias.from_dataset((X, positive), activation="sigmoid",
                                         verbose=0), np.log(rate / (1 - rate))),
        (kbi.HuberBias.from_dataset(BATCHES, delta=2.0, verbose=0),
         np.array([_huber_location(y[:, j], 2.0) for j in range(2)])),
    ]
    for init, reference in cases:
        np.testing.assert_allclose(init.bias, reference, rtol=1e-12, atol=1e-12)
        _variable(init, reference.size)
    he = kbi.HeScaled.from_dataset(X, verbose=0)
    assert he.second_moment == pytest.approx(np.mean(X.astype(np.float64) ** 2),
                                             rel=1e-12)


def _model():
    x = keras.Input((2,))
    hidden = keras.layers.Dense(4, activation="relu", name="hidden")(x)
    ids = keras.layers.Dense(4, activation="softmax", kernel_initializer="zeros",
                             name="ids")(hidden)
    reg = keras.layers.Dense(2, kernel_initializer="zeros", name="reg")(hidden)
    model = keras.Model(x, {"ids": ids, "reg": reg})
    model.compile(loss={"ids": "sparse_categorical_crossentropy", "reg": "mae"})
    return model


@pytest.fixture(scope="module")
def adapted():
    """The hidden kernel scaled from data (a `Rescaled` initializer), then
    every output bias set (`adapt_model`)."""
    model = _model()
    kbi.adapt_model(model, (X, {"ids": IDS, "reg": Y}), verbose=0)
    return model


def test_adapt_output_bias_assigns_numpys_numbers(adapted):
    freq = np.bincount(IDS, minlength=4) / IDS.size
    ids_bias = keras.ops.convert_to_numpy(adapted.get_layer("ids").bias)
    np.testing.assert_allclose(ids_bias, np.log(freq), rtol=1e-6)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(adapted.get_layer("reg").bias),
        np.median(Y.astype(np.float64), axis=0).astype(np.float32))


_LOAD = textwrap.dedent("""
    import json, sys
    import keras
    import keras_biasinit  # registers the initializers

    model = keras.models.load_model(sys.argv[1], compile=False)
    hidden = model.get_layer("hidden")
    print(json.dumps({
        **{name: [keras.ops.convert_to_numpy(model.get_layer(name).bias).tolist(),
                  keras.saving.serialize_keras_object(
                      model.get_layer(name).bias_initializer)]
           for name in ("ids", "reg")},
        "hidden": [keras.ops.convert_to_numpy(hidden.kernel).tolist(),
                   keras.saving.serialize_keras_object(hidden.kernel_initializer)],
    }))
""")


def _another_backend():
    modules = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
    for backend in ("jax", "tensorflow", "torch"):
        if backend != BACKEND and importlib.util.find_spec(modules[backend]):
            return backend
    return None


def test_a_keras_file_loads_under_another_backend_with_the_same_biases_and_gains(
        adapted, tmp_path):
    other = _another_backend()
    if other is None:
        pytest.skip(f"no Keras backend other than {BACKEND} is installed")
    path = str(tmp_path / "model.keras")
    adapted.save(path)
    result = subprocess.run(
        [sys.executable, "-c", _LOAD, path], capture_output=True, text=True,
        env=dict(os.environ, KERAS_BACKEND=other), timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    for name in ("ids", "reg"):
        layer = adapted.get_layer(name)
        bias, config = loaded[name]
        np.testing.assert_array_equal(  # float32 -> JSON -> float32: exact
            np.asarray(bias, np.float32), keras.ops.convert_to_numpy(layer.bias))
        assert config == keras.saving.serialize_keras_object(layer.bias_initializer)
        assert config["registered_name"].startswith("keras_biasinit>")
    kernel, config = loaded["hidden"]
    hidden = adapted.get_layer("hidden")
    np.testing.assert_array_equal(
        np.asarray(kernel, np.float32), keras.ops.convert_to_numpy(hidden.kernel))
    assert config == keras.saving.serialize_keras_object(hidden.kernel_initializer)
    assert config["registered_name"] == "keras_biasinit>Rescaled"
    assert config["config"]["gain"] != 1.0  # the data's scale, not the default
