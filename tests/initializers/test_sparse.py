"""Sparse: exact nonzero counts, value law, uniform positions, seeds, Keras plumbing.

Counts are checked with NumPy on the returned kernel; the value law against
SciPy's normal; the positions with a chi-square test; the scaling by hand.
"""

import json

import keras
import numpy as np
import pytest
import scipy.stats
from tests._tf import tf

import keras_biasinit as kbi
from keras_biasinit import Sparse
from tests.initializers._strategy import assert_mirrored_kernel_and_fit

pytestmark = pytest.mark.keras  # runs under every backend (conftest.py)


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _nonzeros_per_unit(kernel):
    kernel = _np(kernel)
    return np.count_nonzero(kernel.reshape(-1, kernel.shape[-1]), axis=0)


@pytest.mark.parametrize(
    "shape, connections",
    [
        ((100, 300), 15),  # Dense
        ((3, 3, 8, 16), 15),  # Conv2D: fan-in 72
        ((5, 4, 7), 20),  # Conv1D: fan-in 20 == connections: dense
        ((2, 3, 3, 2, 5), 1),  # Conv3D: fan-in 36
        ((15, 4), 15),
    ],
)
def test_every_unit_gets_exactly_connections_nonzeros(shape, connections):
    kernel = Sparse(connections, seed=3)(shape)
    assert tuple(kernel.shape) == shape
    counts = _nonzeros_per_unit(kernel)
    np.testing.assert_array_equal(counts, np.full(shape[-1], connections))


@pytest.fixture(scope="module")
def big_kernel():
    return _np(Sparse(seed=2026)((4096, 4096))).astype(np.float64)


def test_4096_square_kernel_is_exact(big_kernel):
    counts = np.count_nonzero(big_kernel, axis=0)
    assert counts.min() == counts.max() == 15
    assert np.count_nonzero(big_kernel) == 15 * 4096


def test_nonzero_values_are_normal_with_he_stddev(big_kernel):
    values = big_kernel[big_kernel != 0]
    stddev = np.sqrt(2 / 15)
    n = values.size
    # Sample variance of a normal: standard error sqrt(2 / n) * stddev^2.
    assert abs(values.var() - stddev**2) < 5 * np.sqrt(2 / n) * stddev**2
    assert abs(values.mean()) < 5 * stddev / np.sqrt(n)
    assert scipy.stats.kstest(values, scipy.stats.norm(scale=stddev).cdf).pvalue > 1e-3


def test_positions_are_uniform_and_differ_between_units(big_kernel):
    # Each input row is picked by each unit with probability 15 / 4096.
    hits = np.count_nonzero(big_kernel, axis=1)
    assert scipy.stats.chisquare(hits).pvalue > 1e-3
    patterns = {tuple(np.flatnonzero(col)) for col in big_kernel.T[:200]}
    assert len(patterns) == 200


def test_he_like_scaling_for_unit_second_moment_inputs(rng):
    x = rng.normal(size=(1000, 256))
    m = np.mean(x**2)  # ~1: the inputs' second moment, averaged over features
    kernel = _np(Sparse(15, seed=5)((256, 4096))).astype(np.float64)
    per_unit = np.mean((x @ kernel) ** 2, axis=0)
    # E[z^2] = connections * stddev^2 * m = 2 m. Units are i.i.d. given the
    # data, so the mean over 4096 units has standard error std / sqrt(4096).
    assert abs(per_unit.mean() - 2 * m) < 5 * per_unit.std() / np.sqrt(per_unit.size)


def test_martens_unit_gaussian_and_custom_stddev():
    kernel = _np(Sparse(15, stddev=1.0, seed=8)((500, 2000))).astype(np.float64)
    values = kernel[kernel != 0]
    assert values.size == 15 * 2000
    assert abs(values.var() - 1.0) < 5 * np.sqrt(2 / values.size)


def test_zero_units_give_an_empty_kernel():
    assert tuple(Sparse(seed=1)((20, 0)).shape) == (20, 0)


# --- Bad input --------------------------------------------------------------


@pytest.mark.parametrize("connections", [0, -3, 1.5, 15.0, True, "15", None])
def test_bad_connections_fail_in_init(connections):
    with pytest.raises(ValueError, match="`connections` must be a positive integer"):
        Sparse(connections)


def test_numpy_int_connections_are_fine():
    assert Sparse(np.int64(4)).get_config()["connections"] == 4


@pytest.mark.parametrize("stddev", [0.0, -1.0, float("nan"), "1"])
def test_bad_stddev_fails_in_init(stddev):
    with pytest.raises(ValueError, match="`stddev`"):
        Sparse(stddev=stddev)


@pytest.mark.parametrize("shape, fan_in", [((10, 20), 10), ((2, 2, 3, 8), 12)])
def test_more_connections_than_fan_in_fails_in_call(shape, fan_in):
    init = Sparse(15, seed=1)
    with pytest.raises(ValueError, match=rf"`connections=15` is more .* {fan_in} "):
        init(shape)


def test_rank_one_shape_is_an_error():
    with pytest.raises(ValueError, match="rank 2 or more"):
        Sparse(seed=1)((64,))


def test_bad_seed_is_an_error():
    with pytest.raises(ValueError, match="`seed`"):
        Sparse(seed="abc")


# --- Seeds, the way Keras tests them ------------------------------------------


def test_fixed_int_seed_repeats_its_values():
    init = Sparse(5, seed=1337)
    assert init.seed == 1337
    np.testing.assert_array_equal(_np(init((25, 20))), _np(init((25, 20))))


def test_seed_generator_gives_new_values_each_call():
    init = Sparse(5, seed=keras.random.SeedGenerator(1337))
    first, second = _np(init((25, 20))), _np(init((25, 20)))
    assert not np.array_equal(first != 0, second != 0)
    np.testing.assert_array_equal(_nonzeros_per_unit(second), np.full(20, 5))


def test_unseeded_clone_differs_and_seeded_clone_matches():
    init = Sparse(5)
    clone = Sparse.from_config(init.get_config())
    assert init.get_config()["seed"] is None
    np.testing.assert_array_equal(_np(init((25, 20))), _np(init((25, 20))))
    assert not np.array_equal(_np(init((25, 20))), _np(clone((25, 20))))
    init = Sparse(5, seed=1337)
    clone = Sparse.from_config(init.get_config())
    np.testing.assert_array_equal(_np(init((25, 20))), _np(clone((25, 20))))


def test_unseeded_follows_keras_set_random_seed():
    keras.utils.set_random_seed(3)
    first = _np(Sparse(4)((10, 10)))
    keras.utils.set_random_seed(3)
    np.testing.assert_array_equal(first, _np(Sparse(4)((10, 10))))


# --- Keras plumbing ---------------------------------------------------------


def test_config_is_json_and_round_trips_through_keras_serialization():
    init = Sparse(7, stddev=0.5, seed=9)
    config = init.get_config()
    assert config == {"seed": 9, "connections": 7, "stddev": 0.5}
    assert json.loads(json.dumps(config, sort_keys=True)) == config
    blob = json.dumps(keras.initializers.serialize(init))
    restored = keras.initializers.deserialize(json.loads(blob))
    assert isinstance(restored, Sparse) and restored.get_config() == config
    np.testing.assert_array_equal(_np(init((30, 4))), _np(restored((30, 4))))
    assert keras.saving.get_registered_name(Sparse) == "keras_biasinit>Sparse"
    assert kbi.initializers.Sparse is Sparse


def test_model_saves_and_loads_without_custom_objects(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(
                6, 3, activation="relu", kernel_initializer=Sparse(5, seed=1)
            ),
            keras.layers.Flatten(),
            keras.layers.Dense(3, kernel_initializer=Sparse(15, seed=2)),
        ]
    )
    path = tmp_path / "sparse.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    for layer, original in ((0, model.layers[0]), (2, model.layers[2])):
        restored = loaded.layers[layer]
        assert isinstance(restored.kernel_initializer, Sparse)
        assert (
            restored.kernel_initializer.get_config()
            == original.kernel_initializer.get_config()
        )
        np.testing.assert_array_equal(_np(restored.kernel), _np(original.kernel))
    np.testing.assert_array_equal(_nonzeros_per_unit(loaded.layers[0].kernel), [5] * 6)


@pytest.mark.tf_only
def test_graph_mode_matches_eager():
    init = Sparse(6, seed=17)
    graph = tf.function(lambda: init((3, 3, 4, 10)), autograph=False)()
    np.testing.assert_array_equal(_np(graph), _np(init((3, 3, 4, 10))))
    np.testing.assert_array_equal(_nonzeros_per_unit(graph), [6] * 10)


def test_mirrored_strategy_builds_and_trains(two_cpu_strategy, rng):
    x, y = rng.normal(size=(64, 12)), rng.normal(size=(64, 1))
    assert_mirrored_kernel_and_fit(two_cpu_strategy, Sparse(4, seed=19), x, y)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_gets_float32_kernels(policy):
    keras.config.set_dtype_policy(policy)
    layer = keras.layers.Dense(5, kernel_initializer=Sparse(3, seed=2))
    layer.build((None, 40))
    assert layer.kernel.dtype == "float32"
    np.testing.assert_array_equal(_np(layer.kernel), _np(Sparse(3, seed=2)((40, 5))))


@pytest.mark.parametrize(
    "dtype", ["float16", "bfloat16", pytest.param("float64", marks=pytest.mark.float64)]
)
def test_other_float_dtypes_keep_exact_counts(dtype):
    values = Sparse(9, seed=2)((60, 50), dtype=dtype)
    assert keras.backend.standardize_dtype(values.dtype) == dtype
    np.testing.assert_array_equal(_nonzeros_per_unit(values), [9] * 50)
