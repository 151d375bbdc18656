"""HeScaled: variance, distributions, fans, data calibration, seeds, Keras plumbing.

References are independent of the code under test: SciPy's distributions,
NumPy averages of the data, Keras's own HeNormal / HeUniform / VarianceScaling,
and hand-counted fans.
"""

import json

import keras
import numpy as np
import pytest
import scipy.stats
from tests._tf import tf
from sklearn.datasets import load_breast_cancer

import keras_biasinit as kbi
from keras_biasinit import HeScaled
from tests.initializers._strategy import assert_mirrored_kernel_and_fit

pytestmark = pytest.mark.keras  # runs under every backend (conftest.py)

# Keras's truncation constant: the std of a unit normal truncated to [-2, 2].
KERAS_TRUNCATION = 0.87962566103423978


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _reference(distribution, variance):
    """The SciPy distribution each name promises, with the given variance."""
    std = np.sqrt(variance)
    if distribution == "truncated_normal":
        return scipy.stats.truncnorm(-2, 2, scale=std / KERAS_TRUNCATION)
    if distribution == "normal":
        return scipy.stats.norm(scale=std)
    limit = np.sqrt(3 * variance)
    return scipy.stats.uniform(loc=-limit, scale=2 * limit)


DISTRIBUTIONS = ("truncated_normal", "normal", "uniform")


def test_keras_truncation_constant_is_the_truncated_normal_std():
    assert scipy.stats.truncnorm(-2, 2).std() == pytest.approx(
        KERAS_TRUNCATION, rel=1e-12
    )


@pytest.mark.parametrize("shape", [(7, 5), (3, 3, 4, 6), (64,)])
@pytest.mark.parametrize(
    "distribution, keras_init",
    [
        ("truncated_normal", lambda s: keras.initializers.HeNormal(seed=s)),
        ("uniform", lambda s: keras.initializers.HeUniform(seed=s)),
        (
            "normal",
            lambda s: keras.initializers.VarianceScaling(
                2.0, "fan_in", "untruncated_normal", seed=s
            ),
        ),
    ],
)
def test_uncalibrated_equals_keras_he(shape, distribution, keras_init):
    ours = _np(HeScaled(distribution=distribution, seed=11)(shape))
    np.testing.assert_array_equal(ours, _np(keras_init(11)(shape)))


def test_untruncated_normal_is_an_alias_of_normal():
    init = HeScaled(distribution="untruncated_normal", seed=3)
    assert init.distribution == "normal"
    np.testing.assert_array_equal(
        _np(init((20, 30))), _np(HeScaled(distribution="normal", seed=3)((20, 30)))
    )


def test_second_moment_divides_the_variance():
    plain = _np(HeScaled(seed=5)((40, 50)))
    scaled = _np(HeScaled(seed=5, second_moment=16.0)((40, 50)))
    np.testing.assert_allclose(scaled, plain / 4.0, rtol=1e-6)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_variance_and_distribution(distribution):
    fan_in, second_moment, scale = 512, 4.0, 2.0
    variance = scale / (fan_in * second_moment)
    w = _np(
        HeScaled(scale, distribution=distribution, seed=7, second_moment=second_moment)(
            (fan_in, 512)
        )
    ).astype(np.float64).ravel()
    n = w.size
    ref = _reference(distribution, variance)
    assert ref.var() == pytest.approx(variance, rel=1e-12)
    # The sample variance has standard error sqrt((mu4 - var^2) / n).
    se_var = np.sqrt((ref.moment(4) - variance**2) / n)
    assert abs(w.var() - variance) < 5 * se_var
    assert abs(w.mean()) < 5 * np.sqrt(variance / n)
    # The shape: the intended distribution fits, the other two are rejected.
    assert scipy.stats.kstest(w, ref.cdf).pvalue > 1e-3
    for other in DISTRIBUTIONS:
        if other != distribution:
            assert scipy.stats.kstest(w, _reference(other, variance).cdf).pvalue < 1e-6


@pytest.mark.parametrize(
    "shape, mode, fan",
    [
        ((64, 300), "fan_in", 64),  # Dense (in, out)
        ((3, 4000), "fan_in", 3),
        ((3, 3, 16, 32), "fan_in", 3 * 3 * 16),  # Conv2D (kh, kw, in, out)
        ((2, 5, 5, 4, 8), "fan_in", 2 * 5 * 5 * 4),  # Conv3D
        ((5, 6, 200), "fan_in", 5 * 6),  # Conv1D (k, in, out)
        ((3, 3, 16, 32), "fan_out", 3 * 3 * 32),
        ((3, 3, 16, 32), "fan_avg", (3 * 3 * 16 + 3 * 3 * 32) / 2),
    ],
)
def test_fans_are_counted_as_keras_counts_them(shape, mode, fan):
    # Uniform draws fill (-limit, limit]: the max |w| pins the fan down.
    w = _np(HeScaled(mode=mode, distribution="uniform", seed=2)(shape)).ravel()
    limit = np.sqrt(3 * 2.0 / fan)
    assert np.abs(w).max() <= limit * (1 + 1e-6)
    # P(max |w| < limit (1 - d)) = (1 - d)^n <= exp(-20) for d = 20 / n.
    assert np.abs(w).max() > limit * (1 - 20 / w.size)


# --- Calibration on data ----------------------------------------------------


def _weighted_second_moment(x, w=None):
    x = x.reshape(len(x), -1).astype(np.float64)
    return float(np.mean(np.average(x**2, axis=0, weights=w)))


@pytest.fixture(scope="module")
def cancer():
    x, y = load_breast_cancer(return_X_y=True)
    return x, y.astype("float32")


def test_from_dataset_numpy_is_the_mean_second_moment(cancer):
    x, _ = cancer
    init = HeScaled.from_dataset(x, verbose=0)
    assert init.second_moment == pytest.approx(_weighted_second_moment(x), rel=1e-12)


def test_from_dataset_respects_sample_weights_and_steps(cancer, rng):
    x, y = cancer
    w = rng.uniform(0.0, 3.0, size=len(x))
    ds = tf.data.Dataset.from_tensor_slices((x, y, w)).batch(100)
    init = HeScaled.from_dataset(ds, verbose=0)
    assert init.second_moment == pytest.approx(
        _weighted_second_moment(x, w), rel=1e-10
    )
    init = HeScaled.from_dataset(ds, steps=2, verbose=0)
    assert init.second_moment == pytest.approx(
        _weighted_second_moment(x[:200], w[:200]), rel=1e-10
    )


def test_from_dataset_unbatched_dict_and_images(rng):
    images = rng.integers(0, 17, size=(300, 8, 8, 1)).astype("float32")
    labels = rng.integers(0, 10, size=300)
    ds = tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})
    init = HeScaled.from_dataset(ds, features="image", verbose=0)
    assert init.second_moment == pytest.approx(np.mean(images**2.0), rel=1e-6)
    with pytest.raises(ValueError, match="features="):
        HeScaled.from_dataset(ds, verbose=0)


def test_from_dataset_passes_the_other_arguments(cancer):
    x, _ = cancer
    init = HeScaled.from_dataset(
        x, verbose=0, scale=1.0, mode="fan_avg", distribution="uniform", seed=4
    )
    config = init.get_config()
    kept = {k: config[k] for k in ("scale", "mode", "distribution", "seed")}
    assert kept == {
        "scale": 1.0, "mode": "fan_avg", "distribution": "uniform", "seed": 4
    }


def _preactivation_check(x, init, scale, weights=None, units=16384):
    """Measured and expected second moment of x @ W, and a 5-sigma tolerance.

    Per unit j, q_j = w_j' M w_j with M = the data's (weighted) second-moment
    matrix and w_j i.i.d. with variance s2 = scale / tr(M). E[q_j] = scale and
    Var(q_j) = (mu4 - 3 s2^2) sum_i M_ii^2 + 2 s2^2 tr(M^2) <= 2 s2^2 tr(M^2)
    since all three distributions have kurtosis <= 3. The mean over `units`
    independent units thus has std <= s2 sqrt(2 tr(M^2) / units).
    """
    x = x.astype(np.float64)
    p = np.full(len(x), 1.0 / len(x)) if weights is None else weights / weights.sum()
    m = (x * p[:, None]).T @ x
    s2 = scale / np.trace(m)
    kernel = _np(init((x.shape[1], units))).astype(np.float64)
    z = x @ kernel
    measured = float(p @ (z * z).mean(axis=1))
    return measured, 5 * s2 * np.sqrt(2 * np.trace(m @ m) / units)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
@pytest.mark.parametrize("scale", [2.0, 1.0])
def test_preactivations_have_second_moment_scale_on_raw_data(
    cancer, distribution, scale
):
    x, _ = cancer  # raw: "area" columns in the hundreds-thousands, others < 1
    assert x.max() > 1000 and np.median(x.max(axis=0)) < 30
    init = HeScaled.from_dataset(
        x, verbose=0, scale=scale, distribution=distribution, seed=13
    )
    measured, tolerance = _preactivation_check(x, init, scale)
    assert abs(measured - scale) < tolerance
    assert tolerance < 0.1 * scale  # the check is sharp enough to mean something


def test_preactivations_thousands_next_to_unit_interval(rng):
    x = np.stack(
        [rng.normal(3000.0, 800.0, 2000), rng.uniform(0.0, 1.0, 2000)], axis=1
    )
    weights = rng.uniform(0.5, 2.0, 2000)
    data = (x, np.zeros(2000), weights)
    init = HeScaled.from_dataset(data, verbose=0, seed=21)
    measured, tolerance = _preactivation_check(x, init, 2.0, weights=weights)
    assert abs(measured - 2.0) < tolerance
    # Keras's HeNormal on the same raw data: the pre-activations are ~1e7 too big,
    # so the check above can fail.
    measured, _ = _preactivation_check(x, keras.initializers.HeNormal(seed=21), 2.0)
    assert measured > 1e6


def test_a_dense_layer_sees_it_end_to_end(cancer):
    x, _ = cancer
    layer = keras.layers.Dense(
        4096, use_bias=False, kernel_initializer=HeScaled.from_dataset(x, verbose=0)
    )
    z = _np(layer(x.astype("float32"))).astype(np.float64)
    # One column dominates E[x^2], so the relative std over 4096 units is about
    # sqrt(2 / 4096) = 0.022 (see _preactivation_check): 0.1 is ~4.5 sigma.
    assert np.mean(z**2) == pytest.approx(2.0, rel=0.1)


# --- Bad input --------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"scale": 0.0}, "`scale`"),
        ({"scale": -2.0}, "`scale`"),
        ({"scale": float("nan")}, "`scale`"),
        ({"scale": "2"}, "`scale`"),
        ({"mode": "fan"}, "`mode`"),
        ({"distribution": "gaussian"}, "`distribution`"),
        ({"second_moment": 0.0}, "`second_moment`"),
        ({"second_moment": -1.0}, "`second_moment`"),
        ({"second_moment": float("inf")}, "`second_moment`"),
        ({"second_moment": 1e-320}, "overflows"),
        ({"seed": "abc"}, "`seed`"),
        ({"seed": 1.5}, "`seed`"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HeScaled(**kwargs)


def test_bad_arguments_fail_before_reading_the_data():
    def batches():
        yield np.ones((4, 2))
        raise AssertionError("the data was read")

    with pytest.raises(ValueError, match="`distribution`"):
        HeScaled.from_dataset(batches(), distribution="gaussian", verbose=0)


def test_all_zero_features_are_an_error():
    with pytest.raises(ValueError, match="Every feature value is 0"):
        HeScaled.from_dataset(np.zeros((10, 3)), verbose=0)


def test_nan_features_are_an_error():
    x = np.ones((10, 3))
    x[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        HeScaled.from_dataset(x, verbose=0)


# --- Seeds, the way Keras tests them ------------------------------------------


def test_fixed_int_seed_repeats_its_values():
    init = HeScaled(seed=1337)
    assert init.seed == 1337
    np.testing.assert_array_equal(_np(init((25, 20))), _np(init((25, 20))))


def test_seed_generator_gives_new_values_each_call():
    init = HeScaled(seed=keras.random.SeedGenerator(1337))
    assert not np.allclose(_np(init((25, 20))), _np(init((25, 20))))


def test_unseeded_clone_differs_and_seeded_clone_matches():
    init = HeScaled(second_moment=3.0)
    clone = HeScaled.from_config(init.get_config())
    assert init.get_config()["seed"] is None
    assert not np.allclose(_np(init((25, 20))), _np(clone((25, 20))))
    init = HeScaled(seed=1337, second_moment=3.0)
    clone = HeScaled.from_config(init.get_config())
    np.testing.assert_array_equal(_np(init((25, 20))), _np(clone((25, 20))))


def test_unseeded_follows_keras_set_random_seed():
    keras.utils.set_random_seed(3)
    first = _np(HeScaled()((10, 10)))
    keras.utils.set_random_seed(3)
    np.testing.assert_array_equal(first, _np(HeScaled()((10, 10))))


def test_seed_generator_config_round_trips():
    init = HeScaled(seed=keras.random.SeedGenerator(42))
    clone = HeScaled.from_config(json.loads(json.dumps(init.get_config())))
    assert isinstance(clone.seed, keras.random.SeedGenerator)
    np.testing.assert_array_equal(_np(init((6, 7))), _np(clone((6, 7))))


# --- Keras plumbing ---------------------------------------------------------


def test_config_is_json_and_round_trips_through_keras_serialization():
    init = HeScaled(1.0, "fan_in", "uniform", seed=9, second_moment=12.5)
    config = init.get_config()
    assert json.loads(json.dumps(config, sort_keys=True)) == config
    assert HeScaled.from_config(config).get_config() == config
    blob = json.dumps(keras.initializers.serialize(init))
    restored = keras.initializers.deserialize(json.loads(blob))
    assert isinstance(restored, HeScaled) and restored.get_config() == config
    np.testing.assert_array_equal(_np(init((4, 3))), _np(restored((4, 3))))
    assert keras.saving.get_registered_name(HeScaled) == "keras_biasinit>HeScaled"
    assert kbi.initializers.HeScaled is HeScaled


def test_model_saves_and_loads_without_custom_objects(cancer, tmp_path):
    x, _ = cancer
    init = HeScaled.from_dataset(x, verbose=0, seed=8)
    model = keras.Sequential(
        [
            keras.Input((30,)),
            keras.layers.Dense(8, activation="relu", kernel_initializer=init),
            keras.layers.Dense(1),
        ]
    )
    path = tmp_path / "he.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    restored = loaded.layers[0].kernel_initializer
    assert isinstance(restored, HeScaled)
    assert restored.get_config() == init.get_config()
    np.testing.assert_array_equal(
        _np(loaded.layers[0].kernel), _np(model.layers[0].kernel)
    )


@pytest.mark.tf_only
def test_graph_mode_matches_eager():
    init = HeScaled(seed=17, second_moment=2.0)
    graph = tf.function(lambda: init((12, 9)), autograph=False)()
    np.testing.assert_array_equal(_np(graph), _np(init((12, 9))))


def test_mirrored_strategy_builds_and_trains(two_cpu_strategy, cancer):
    x, y = cancer
    init = HeScaled.from_dataset(x, verbose=0, seed=19)
    assert_mirrored_kernel_and_fit(two_cpu_strategy, init, x, y)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_gets_float32_kernels(policy):
    keras.config.set_dtype_policy(policy)
    layer = keras.layers.Dense(5, kernel_initializer=HeScaled(seed=2))
    layer.build((None, 4))
    assert layer.kernel.dtype == "float32"
    np.testing.assert_array_equal(_np(layer.kernel), _np(HeScaled(seed=2)((4, 5))))


@pytest.mark.parametrize(
    "dtype", ["float16", "bfloat16", pytest.param("float64", marks=pytest.mark.float64)]
)
def test_other_float_dtypes(dtype):
    values = HeScaled(seed=2)((40, 30), dtype=dtype)
    assert keras.backend.standardize_dtype(values.dtype) == dtype
    assert np.std(_np(values).astype(np.float64)) == pytest.approx(
        np.sqrt(2 / 40), rel=0.1
    )
