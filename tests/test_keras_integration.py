"""The four bias initializers wherever a Keras initializer works."""

import json

import keras
import numpy as np
import pytest
from tests._tf import tf
from scipy import special

import keras_biasinit as kbi

pytestmark = pytest.mark.keras  # runs under every backend (conftest.py)

N, D = 96, 5


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(N, D)).astype("float32")
    ids = rng.choice(3, size=N, p=[0.7, 0.2, 0.1])
    multi = (rng.random((N, 2)) < [0.3, 0.1]).astype("float32")
    y = np.column_stack([rng.normal(150, 70, N), rng.standard_t(2, N) * 5])
    w = rng.random(N).astype("float32") * 2
    return {"x": x, "ids": ids, "multi": multi, "y": y.astype("float32"), "w": w}


@pytest.fixture(scope="module")
def initializers(data):
    x, w = data["x"], data["w"]
    return {
        "prior": kbi.ClassPriorBias.from_dataset((x, data["ids"]), verbose=0),
        "mean": kbi.MeanBias.from_dataset((x, data["y"]), verbose=0),
        "median": kbi.MedianBias.from_dataset((x, data["y"], w), verbose=0),
        "huber": kbi.HuberBias.from_dataset((x, data["y"]), delta=2.0, verbose=0),
    }


UNITS = {"prior": 3, "mean": 2, "median": 2, "huber": 2}
NAMES = sorted(UNITS)


def _plain(value):
    """True if value is made of JSON-plain Python types only."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or type(value) in (str, int, float, bool)


# ---------------------------------------------------------------- config


@pytest.mark.parametrize("name", NAMES)
def test_config_is_json_plain_and_round_trips(initializers, name):
    init = initializers[name]
    config = init.get_config()
    assert _plain(config), config
    assert json.loads(json.dumps(config, sort_keys=True)) == config
    clone = type(init).from_config(json.loads(json.dumps(config)))
    assert clone.get_config() == config
    np.testing.assert_array_equal(clone.bias, init.bias)
    assert clone.expected_loss == init.expected_loss is not None


@pytest.mark.parametrize("name", NAMES)
def test_keras_serialize_deserialize_through_json(initializers, name):
    init = initializers[name]
    serialized = json.loads(json.dumps(keras.initializers.serialize(init)))
    assert serialized["registered_name"] == f"keras_biasinit>{type(init).__name__}"
    restored = keras.initializers.deserialize(serialized)
    assert type(restored) is type(init)
    assert restored.get_config() == init.get_config()
    via_get = keras.initializers.get(serialized)
    np.testing.assert_array_equal(via_get.bias, init.bias)


@pytest.mark.parametrize(
    "cls, config, match",
    [
        (kbi.ClassPriorBias, {"priors": [0.5, -0.5]}, "prior must be positive"),
        (kbi.ClassPriorBias, {"priors": [0.5, 0.0]}, "prior must be positive"),
        (kbi.ClassPriorBias, {"priors": [1.0]}, "at least 2 class priors"),
        (kbi.ClassPriorBias, {"priors": []}, "must not be empty"),
        (kbi.ClassPriorBias, {"priors": [0.5, float("nan")]}, "finite"),
        (kbi.ClassPriorBias, {"priors": [0.2, 1.5], "activation": "sigmoid"},
         r"\(0, 1\)"),
        (kbi.MeanBias, {"mean": [1.0, float("inf")]}, "finite"),
        (kbi.MeanBias, {"mean": []}, "must not be empty"),
        (kbi.MedianBias, {"median": {"a": 1}}, "number or a flat list"),
        (kbi.HuberBias, {"location": [1.0], "delta": -2.0}, "`delta` must be"),
        (kbi.MeanBias, {"mean": 1.0, "expected_loss": float("nan")},
         "`expected_loss` must be"),
    ],
)
def test_tampered_config_is_rejected(cls, config, match):
    with pytest.raises(ValueError, match=match):
        cls.from_config(config)


def test_wrong_length_config_fails_when_the_layer_is_built():
    layer = keras.layers.Dense(3, bias_initializer=kbi.MeanBias.from_config(
        {"mean": [1.0, 2.0], "expected_loss": None}))
    with pytest.raises(ValueError, match=r"MeanBias holds 2 values.*shape \(3,\)"):
        layer.build((None, 4))


# ---------------------------------------------------------------- saving


def _heads_model(initializers):
    inputs = keras.Input((D,))
    hidden = keras.layers.Dense(4, activation="relu")(inputs)
    outputs = [
        keras.layers.Dense(UNITS[n], name=n, bias_initializer=initializers[n])(hidden)
        for n in NAMES
    ]
    return keras.Model(inputs, outputs)


def test_model_saves_and_loads_without_custom_objects(initializers, tmp_path):
    model = _heads_model(initializers)
    path = tmp_path / "heads.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects
    for name in NAMES:
        layer = loaded.get_layer(name)
        init = initializers[name]
        assert type(layer.bias_initializer) is type(init)
        assert layer.bias_initializer.get_config() == init.get_config()
        np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.bias),
                                   init.bias, rtol=1e-6)
    # The layer config alone (what a fresh layer is built from) recreates it.
    clone = keras.Model.from_config(json.loads(json.dumps(model.get_config())))
    for name in NAMES:
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(clone.get_layer(name).bias),
            initializers[name].bias, rtol=1e-6)


# ---------------------------------------------------------------- runtimes


@pytest.mark.tf_only
def test_graph_mode(initializers):
    for name in NAMES:
        init = initializers[name]
        units = UNITS[name]
        fn = tf.function(lambda init=init, units=units: init(shape=(units,)))
        graph_value = fn()
        np.testing.assert_allclose(graph_value.numpy(), init.bias, rtol=1e-6)
        assert fn.get_concrete_function().graph.get_operations()  # really traced


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(initializers, data, policy):
    keras.config.set_dtype_policy(policy)
    model = _heads_model(initializers)
    outputs = model(data["x"][:4])
    for name, out in zip(NAMES, outputs):
        layer = model.get_layer(name)
        assert layer.bias.dtype == "float32"  # variables stay float32
        assert keras.backend.standardize_dtype(out.dtype) == policy.split("_")[1]
        np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.bias),
                                   initializers[name].bias, rtol=1e-6)


def test_sequence_and_mask_targets_match_keras_losses(rng):
    # Keras reduces the last axis and weights every other element: the priors
    # and expected losses pool the time steps / pixels the same way.
    y = np.eye(4)[rng.choice(4, size=(60, 5), p=[0.4, 0.3, 0.2, 0.1])]
    steps_w = rng.uniform(0.2, 3.0, size=(60, 5))
    init = kbi.ClassPriorBias.from_dataset((np.zeros(60), y, steps_w), verbose=0)
    freq = np.einsum("nt,ntc->c", steps_w, y)
    np.testing.assert_allclose(init.priors, freq / freq.sum(), rtol=1e-12)
    predicted = np.broadcast_to(freq / freq.sum(), y.shape).astype("float32")
    reference = keras.losses.CategoricalCrossentropy()(y, predicted, steps_w)
    np.testing.assert_allclose(init.expected_loss, float(reference), rtol=1e-5)

    masks = (rng.random((30, 6, 6, 1)) < 0.2).astype("float32")
    w = rng.uniform(0.5, 1.5, size=30)
    init = kbi.ClassPriorBias.from_dataset(
        (np.zeros(30), masks, w), activation="sigmoid", verbose=0
    )
    rate = np.sum(w[:, None, None, None] * masks) / (36 * w.sum())
    np.testing.assert_allclose(init.priors, [rate], rtol=1e-12)
    reference = keras.losses.BinaryCrossentropy()(
        masks, np.full(masks.shape, rate, "float32"), w[:, None, None]
    )
    np.testing.assert_allclose(init.expected_loss, float(reference), rtol=1e-5)

    targets = rng.normal(size=(30, 4, 2))
    init = kbi.MeanBias.from_dataset((np.zeros(30), targets, w), verbose=0)
    mean = np.einsum("n,ntd->d", w, targets) / (4 * w.sum())
    np.testing.assert_allclose(init.bias, mean, rtol=1e-12)
    reference = keras.losses.MeanSquaredError()(
        targets, np.broadcast_to(mean, targets.shape), w[:, None]
    )
    np.testing.assert_allclose(init.expected_loss, float(reference), rtol=1e-5)


def test_a_bias_that_overflows_the_variable_dtype_is_an_error():
    # 70000 is inf in float16 (max 65504): never a silent inf bias.
    init = kbi.MeanBias(70000.0)
    with pytest.raises(ValueError, match="overflows to inf in float16"):
        init((1,), dtype="float16")
    keras.config.set_dtype_policy("float16")
    with pytest.raises(ValueError, match="mixed_float16"):
        keras.layers.Dense(1, bias_initializer=init).build((None, 2))
    # Under mixed_float16 the variable is float32 and holds it exactly.
    keras.config.set_dtype_policy("mixed_float16")
    layer = keras.layers.Dense(1, bias_initializer=init)
    layer.build((None, 2))
    assert keras.ops.convert_to_numpy(layer.bias).tolist() == [70000.0]
    assert float(np.finfo(np.float16).max) < 70000.0 < np.finfo(np.float32).max


def test_mirrored_strategy_two_cpus(initializers, data, two_cpu_strategy):
    assert two_cpu_strategy.num_replicas_in_sync == 2
    with two_cpu_strategy.scope():
        inputs = keras.Input((D,))
        hidden = keras.layers.Dense(4, activation="relu")(inputs)
        outputs = keras.layers.Dense(
            3, activation="softmax", kernel_initializer="zeros",
            bias_initializer=initializers["prior"])(hidden)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.SGD(0.1),
                      loss="sparse_categorical_crossentropy")
    bias = model.layers[-1].bias
    assert isinstance(bias.value, tf.distribute.DistributedValues)
    for replica_value in two_cpu_strategy.experimental_local_results(bias.value):
        np.testing.assert_allclose(replica_value.numpy(), initializers["prior"].bias,
                                   rtol=1e-6)
    kernel = model.layers[-1].kernel
    history = model.fit(data["x"], data["ids"], batch_size=N, epochs=1, verbose=0)
    # One step ran: its loss is the loss at init, and the kernel moved. The bias
    # did not: at the optimal constant the bias gradient, mean(softmax(b) - y),
    # is F - F = 0.
    assert history.history["loss"][0] == pytest.approx(
        initializers["prior"].expected_loss, rel=1e-5)
    assert np.abs(keras.ops.convert_to_numpy(kernel)).max() > 1e-4
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bias),
                               initializers["prior"].bias, atol=1e-6)


# ---------------------------------------------------------------- loss @ init


def _evaluate_at_init(x, y, w, units, activation, bias_initializer, loss):
    """model.evaluate before any training, with a zero final kernel."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((x.shape[1],))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    outputs = keras.layers.Dense(units, activation=activation,
                                 kernel_initializer="zeros",
                                 bias_initializer=bias_initializer)(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(loss=loss)
    ds = tf.data.Dataset.from_tensor_slices((x, y) if w is None else (x, y, w))
    return model.evaluate(ds.batch(40), verbose=0)


def _case(data, case):
    """(target, from_dataset function, Keras loss, units, final activation)."""
    ids, y = data["ids"], data["y"]
    prior = kbi.ClassPriorBias.from_dataset
    return {
        "sparse_ce": (ids, prior, "sparse_categorical_crossentropy", 3, "softmax"),
        "categorical_ce": (np.eye(3, dtype="float32")[ids], prior,
                           "categorical_crossentropy", 3, "softmax"),
        "binary_ce": (data["multi"],
                      lambda ds, **kw: prior(ds, activation="sigmoid", **kw),
                      "binary_crossentropy", 2, "sigmoid"),
        "mse": (y, kbi.MeanBias.from_dataset, "mse", 2, None),
        "mae": (y, kbi.MedianBias.from_dataset, "mae", 2, None),
        "huber": (y, lambda ds, **kw: kbi.HuberBias.from_dataset(ds, delta=3.0, **kw),
                  keras.losses.Huber(3.0), 2, None),
    }[case]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize(
    "case", ["sparse_ce", "categorical_ce", "binary_ce", "mse", "mae", "huber"]
)
def test_loss_at_init_equals_expected_loss(data, case, weighted):
    x, w = data["x"], data["w"] if weighted else None
    y, from_dataset, loss, units, activation = _case(data, case)
    element = (x, y) if w is None else (x, y, w)
    init = from_dataset(tf.data.Dataset.from_tensor_slices(element).batch(33),
                        verbose=0)
    measured = _evaluate_at_init(x, y, w, units, activation, init, loss)
    assert measured == pytest.approx(init.expected_loss, rel=2e-5)


def test_expected_loss_of_softmax_is_entropy_in_a_real_model(data):
    # Independent of the package's own loss code: H(F) from SciPy.
    ids = data["ids"]
    freq = np.bincount(ids) / ids.size
    init = kbi.ClassPriorBias.from_dataset(ids, verbose=0)
    measured = _evaluate_at_init(data["x"], ids, None, 3, "softmax", init,
                                 "sparse_categorical_crossentropy")
    assert measured == pytest.approx(-(freq * np.log(freq)).sum(), rel=2e-5)
    np.testing.assert_allclose(special.softmax(init.bias), freq, rtol=1e-12)
