"""The package under every Keras backend `make test` runs: TensorFlow and JAX.

The rest of the suite runs under both backends through the `keras` mark
(conftest.py). This module checks that the second run is really another
backend, that every module that uses Keras is part of it, and what has no
TensorFlow counterpart to reuse: `jax.jit` tracing (JAX's graph mode) and
`keras.distribution.DataParallel` (JAX's replicated variables).
"""

import ast
import os
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_biasinit as kbi

pytestmark = pytest.mark.keras  # runs under every backend (conftest.py)

BACKEND = keras.backend.backend()
only_jax = pytest.mark.skipif(BACKEND != "jax", reason="JAX-only check")


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _imports_keras(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            if any(a.name.split(".")[0] == "keras" for a in node.names):
                return True
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] == "keras":
                return True
    return False


def _marked_keras(tree):
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            return "mark.keras" in ast.unparse(node.value)
    return False


def test_every_test_module_that_uses_keras_runs_under_every_backend():
    # A new module that imports keras but lacks `pytestmark = pytest.mark.keras`
    # would silently run under TensorFlow only.
    tests = Path(__file__).resolve().parent
    unmarked = []
    for path in sorted(tests.rglob("test_*.py")):
        tree = ast.parse(path.read_text())
        if _imports_keras(tree) and not _marked_keras(tree):
            unmarked.append(str(path.relative_to(tests)))
    assert not unmarked, (
        f"{unmarked} import keras but are not marked: add "
        "`pytestmark = pytest.mark.keras` so `make test` runs them under JAX too"
    )


def _all_initializers():
    return {
        "prior": kbi.ClassPriorBias([0.7, 0.2, 0.1]),
        "sigmoid": kbi.ClassPriorBias([0.08], activation="sigmoid"),
        "mean": kbi.MeanBias([150.0, -2.5]),
        "median": kbi.MedianBias(140.5),
        "huber": kbi.HuberBias([3.0, -1.0], delta=2.0),
        "he": kbi.HeScaled(seed=17, second_moment=4.0),
        "sparse": kbi.Sparse(5, seed=17),
    }


SHAPES = {"prior": (3,), "sigmoid": (1,), "mean": (2,), "median": (4,),
          "huber": (2,), "he": (12, 9), "sparse": (3, 3, 4, 10)}


def test_the_backend_is_the_one_asked_for_and_returns_its_tensors():
    asked = os.environ.get("KERAS_BACKEND")
    if asked:
        assert BACKEND == asked
    for name, init in _all_initializers().items():
        value = init(SHAPES[name])
        assert keras.ops.is_tensor(value), (name, type(value))
        assert not isinstance(value, np.ndarray), name
        assert keras.backend.standardize_dtype(value.dtype) == "float32"


def test_seed_generators_advance_as_kerass_own():
    # The same SeedGenerator seed gives Keras's HeNormal sequence, call by call,
    # under whichever backend runs (the numbers differ between backends).
    ours = kbi.HeScaled(seed=keras.random.SeedGenerator(5))
    theirs = keras.initializers.HeNormal(seed=keras.random.SeedGenerator(5))
    draws = [_np(ours((6, 4))) for _ in range(3)]
    for draw in draws:
        np.testing.assert_array_equal(draw, _np(theirs((6, 4))))
    assert not np.array_equal(draws[0], draws[1])
    np.testing.assert_array_equal(
        _np(kbi.HeScaled(seed=11)((7, 3))),
        _np(keras.initializers.HeNormal(seed=11)((7, 3))),
    )


@only_jax
def test_jax_jit_traces_every_initializer_like_eager():
    # `jax.jit` is JAX's graph mode: a NumPy-only path in `__call__` would fail
    # on the tracers, as it would inside a tf.function under TensorFlow.
    import jax

    for name, init in _all_initializers().items():
        shape = SHAPES[name]
        traced = jax.jit(lambda init=init, shape=shape: init(shape))()
        assert isinstance(traced, jax.Array)
        np.testing.assert_array_equal(np.asarray(traced), _np(init(shape)))
        if hasattr(init, "bias"):  # the bias initializers: their numbers
            expected = np.broadcast_to(init.bias, shape).astype("float32")
            np.testing.assert_array_equal(np.asarray(traced), expected)


@only_jax
def test_jax_data_parallel_replicates_the_bias_and_trains(rng):
    # JAX's counterpart of the MirroredStrategy tests: two host devices
    # (XLA_FLAGS, set in conftest.py), variables replicated on both.
    devices = keras.distribution.list_devices("cpu")
    if len(devices) < 2:
        pytest.skip(f"needs 2 JAX CPU devices; XLA_FLAGS gave {devices}")
    x = rng.normal(size=(64, 5)).astype("float32")
    y = rng.choice(3, size=64, p=[0.6, 0.3, 0.1])
    prior = kbi.ClassPriorBias.from_dataset((x, y), verbose=0)
    hidden = kbi.HeScaled.from_dataset(x, verbose=0, seed=3)
    with keras.distribution.DataParallel(devices=devices[:2]).scope():
        model = keras.Sequential([
            keras.Input((5,)),
            keras.layers.Dense(8, activation="relu", kernel_initializer=hidden),
            keras.layers.Dense(3, activation="softmax", kernel_initializer="zeros",
                               bias_initializer=prior),
        ])
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        bias = model.layers[-1].bias.value
        shards = bias.addressable_shards
        assert len({s.device for s in shards}) == 2
        for shard in shards:
            np.testing.assert_allclose(np.asarray(shard.data), prior.bias, rtol=1e-6)
        np.testing.assert_array_equal(
            _np(model.layers[0].kernel), _np(hidden((5, 8)))
        )
        history = model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    # One step on all rows: its loss is the loss at init, H(F).
    freq = np.bincount(y, minlength=3) / y.size
    assert history.history["loss"][0] == pytest.approx(
        -(freq * np.log(freq)).sum(), rel=1e-5
    )
