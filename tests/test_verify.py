"""verify_loss_at_init on small real models, against NumPy / hand calculations."""

import math

import keras
import numpy as np
import pytest
from tests._tf import tf

import keras_biasinit as kbi

pytestmark = pytest.mark.keras  # runs under every backend (conftest.py)


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(96, 3)).astype("float32")
    y = (150.0 + 40.0 * rng.normal(size=(96, 1))).astype("float32")
    return x, y


def _mlp(output_kernel, bias_initializer, activation=None, units=1, seed=3):
    return keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(
                8, activation="relu",
                kernel_initializer=keras.initializers.HeNormal(seed=seed),
            ),
            keras.layers.Dense(
                units, activation=activation, kernel_initializer=output_kernel,
                bias_initializer=bias_initializer,
            ),
        ]
    )


def _numpy_forward(model, x):
    w1, b1, w2, b2 = model.get_weights()
    return np.maximum(x @ w1 + b1, 0.0) @ w2 + b2


def test_matching_bias_and_zero_kernel_is_ok(regression):
    x, y = regression
    model = _mlp("zeros", kbi.MeanBias.from_dataset(y, verbose=0))
    model.compile(loss="mse")
    check = kbi.verify_loss_at_init(model, (x, y))
    variance = np.var(y.astype(np.float64))
    assert check.expected == pytest.approx(variance, rel=1e-6)
    assert check.measured == pytest.approx(variance, rel=1e-5)
    assert check.kernel_part == pytest.approx(0.0, abs=1e-6 * variance)
    assert check.ok
    assert "OK" in str(check) and "NOT OK" not in str(check)


def test_regularization_losses_are_named(regression):
    # An L2 bias regularizer adds 0.1 * 150^2 ~ 2250 to what evaluate reports;
    # the message must say so, not only blame the bias.
    x, y = regression
    init = kbi.MeanBias.from_dataset(y, verbose=0)
    model = keras.Sequential([
        keras.Input((3,)),
        keras.layers.Dense(1, kernel_initializer="zeros", bias_initializer=init,
                           bias_regularizer=keras.regularizers.L2(0.1)),
    ])
    model.compile(loss="mse")
    check = kbi.verify_loss_at_init(model, (x, y))
    penalty = 0.1 * float(np.mean(y, dtype=np.float64)) ** 2
    assert check.measured - check.expected == pytest.approx(penalty, rel=1e-4)
    assert not check.ok
    assert f"add {penalty:.4g}" in str(check) and "regularizers" in str(check)


def test_random_final_kernel_is_blamed_and_restored(regression):
    x, y = regression
    big = keras.initializers.RandomNormal(stddev=20.0, seed=5)
    model = _mlp(big, kbi.MeanBias.from_dataset(y, verbose=0))
    model.compile(loss="mse")
    before = model.get_weights()
    check = kbi.verify_loss_at_init(model, (x, y))
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    y64 = y.astype(np.float64)
    measured = np.mean((_numpy_forward(model, x).astype(np.float64) - y64) ** 2)
    variance = np.var(y64)
    assert check.measured == pytest.approx(measured, rel=1e-4)
    assert check.zero_kernel_loss == pytest.approx(variance, rel=1e-5)
    assert check.kernel_part == pytest.approx(measured - variance, rel=1e-3)
    assert check.bias_part == pytest.approx(0.0, abs=1e-5 * variance)
    assert not check.ok
    assert "Scale it down" in check.message
    assert "bias itself is off" not in check.message
    # The kernel was put back: the model predicts as before the check.
    np.testing.assert_allclose(model.predict(x, verbose=0), _numpy_forward(model, x),
                               rtol=1e-5, atol=1e-3)
    assert np.abs(model.layers[-1].kernel.numpy()).max() > 1.0


def test_bias_from_other_data_is_blamed(regression):
    x, y = regression
    y_other = y[:40] + 30.0  # another split, shifted
    model = _mlp("zeros", kbi.MeanBias.from_dataset(y_other, verbose=0))
    model.compile(loss="mse")
    check = kbi.verify_loss_at_init(model, (x, y))
    y64 = y.astype(np.float64)
    b = np.mean(y_other.astype(np.float64))
    by_hand = np.var(y64) + (b - np.mean(y64)) ** 2  # MSE of a constant b
    assert check.measured == pytest.approx(by_hand, rel=1e-5)
    assert check.expected == pytest.approx(np.var(y_other.astype(np.float64)), rel=1e-5)
    assert check.bias_part == pytest.approx(by_hand - check.expected, rel=1e-4)
    assert not check.ok
    assert "bias itself is off" in check.message
    assert "loss='mse'" in check.message and "MeanBias" in check.message
    assert "Scale it down" not in check.message


def test_softmax_priors_with_sample_weights_on_tf_data():
    rng = np.random.default_rng(11)
    n, classes = 120, 4
    x = rng.normal(size=(n, 3)).astype("float32")
    y = rng.choice(classes, size=n, p=[0.7, 0.15, 0.1, 0.05])
    w = rng.uniform(0.5, 2.0, size=n).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((x, y, w)).batch(32)
    init = kbi.ClassPriorBias.from_dataset(ds, num_classes=classes, verbose=0)
    model = _mlp("zeros", init, activation="softmax", units=classes)
    model.compile(loss="sparse_categorical_crossentropy")
    check = kbi.verify_loss_at_init(model, ds)
    freq = np.bincount(y, weights=w.astype(np.float64), minlength=classes)
    freq /= freq.sum()
    by_hand = np.sum(w * -np.log(freq[y])) / n  # Keras: weighted sum / rows
    assert check.expected == pytest.approx(by_hand, rel=1e-6)
    assert check.measured == pytest.approx(by_hand, rel=1e-5)
    assert check.ok


def test_explicit_expected_for_a_zero_bias():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = rng.integers(0, 5, size=64)
    # The output layer is followed by a separate activation: it is still found.
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(5, kernel_initializer="zeros", name="logits"),
            keras.layers.Activation("softmax"),
        ]
    )
    model.compile(loss="sparse_categorical_crossentropy")
    freq = np.bincount(y, minlength=5) / 64
    entropy = -np.sum(freq * np.log(freq))
    # Zeros cannot say its loss: the table's, from the data, and it says so.
    check = kbi.verify_loss_at_init(model, (x, y))
    assert check.expected == pytest.approx(entropy, rel=1e-6)
    assert "Zeros" in check.message and "does not know its expected loss" in \
        check.message
    check = kbi.verify_loss_at_init(model, (x, y), expected=math.log(5))
    assert check.measured == pytest.approx(math.log(5), rel=1e-5)  # uniform guess
    assert check.ok
    # Compared with the class frequencies' entropy, the zero bias is off.
    check = kbi.verify_loss_at_init(model, (x, y), expected=entropy, layer="logits")
    assert check.bias_part == pytest.approx(math.log(5) - entropy, rel=1e-4)
    assert check.ok == (math.log(5) - entropy <= 0.05 * entropy)


def test_trained_bias_is_reported(regression):
    x, y = regression
    model = _mlp("zeros", kbi.MeanBias.from_dataset(y, verbose=0))
    model.compile(loss="mse")
    model.build((None, 3))
    model.layers[-1].bias.assign([0.0])
    check = kbi.verify_loss_at_init(model, (x, y))
    y64 = y.astype(np.float64)
    assert check.measured == pytest.approx(np.mean(y64**2), rel=1e-5)
    assert "no longer holds" in check.message
    assert "bias itself is off" in check.message


def test_bad_calls(regression):
    x, y = regression
    model = _mlp("zeros", kbi.MeanBias.from_dataset(y, verbose=0))
    with pytest.raises(ValueError, match="compile"):
        kbi.verify_loss_at_init(model, (x, y))
    model.compile(loss="mse")
    with pytest.raises(ValueError, match="rtol"):
        kbi.verify_loss_at_init(model, (x, y), rtol=-1)
    with pytest.raises(ValueError, match="expected"):
        kbi.verify_loss_at_init(model, (x, y), expected=float("nan"))
    with pytest.raises(ValueError, match="re-iterable"):
        kbi.verify_loss_at_init(model, ((x[i:i + 32], y[i:i + 32]) for i in (0, 32)))
    with pytest.raises(TypeError, match="keras.Model"):
        kbi.verify_loss_at_init("model", (x, y))


def test_several_outputs_a_layer_that_heads_none():
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(4, name="hidden")(inputs)
    model = keras.Model(inputs, [keras.layers.Dense(1)(hidden),
                                 keras.layers.Dense(1)(hidden)])
    model.compile(loss=["mse", "mse"])
    x = np.zeros((8, 3), "float32")
    y = np.ones((8, 1), "float32")
    with pytest.raises(ValueError, match="`layer=` as a dict"):
        kbi.verify_loss_at_init(model, (x, (y, y)), layer="hidden")


def test_unbuilt_model_sigmoid_prior():
    """A Sequential without Input is built by the first evaluation."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(80, 3)).astype("float32")
    y = (rng.uniform(size=(80, 1)) < 0.1).astype("float32")
    init = kbi.ClassPriorBias.from_dataset(y, activation="sigmoid", verbose=0)
    model = keras.Sequential(
        [
            keras.layers.Dense(4, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid", kernel_initializer="zeros",
                               bias_initializer=init),
        ]
    )
    model.compile(loss="binary_crossentropy")
    assert not model.built
    check = kbi.verify_loss_at_init(model, (x, y))
    p = y.mean(dtype=np.float64)
    binary_entropy = -(p * np.log(p) + (1 - p) * np.log(1 - p))
    assert check.expected == pytest.approx(binary_entropy, rel=1e-6)
    assert check.measured == pytest.approx(binary_entropy, rel=1e-4)
    assert check.ok


def test_subclassed_model(regression):
    x, y = regression

    class TwoLayers(keras.Model):
        def __init__(self, bias):
            super().__init__()
            self.hidden = keras.layers.Dense(4, activation="relu")
            self.out = keras.layers.Dense(1, bias_initializer=bias)

        def call(self, inputs):
            return self.out(self.hidden(inputs))

    model = TwoLayers(kbi.MedianBias.from_dataset(y, verbose=0))
    model.compile(loss="mae")
    check = kbi.verify_loss_at_init(model, (x, y))
    y64 = y.astype(np.float64)
    mad = np.mean(np.abs(y64 - np.median(y64)))
    assert check.expected == pytest.approx(mad, rel=1e-6)
    assert check.zero_kernel_loss == pytest.approx(mad, rel=1e-5)


def test_hidden_l2_penalty_is_not_blamed_on_the_bias(regression):
    # An L2 penalty on a hidden layer is its own part: bias_part and
    # kernel_part exclude it.
    x, y = regression
    init = kbi.MeanBias.from_dataset(y, verbose=0)
    model = keras.Sequential([
        keras.Input((3,)),
        keras.layers.Dense(8, activation="relu",
                           kernel_initializer=keras.initializers.HeNormal(seed=1),
                           kernel_regularizer=keras.regularizers.L2(0.5)),
        keras.layers.Dense(1, kernel_initializer="zeros", bias_initializer=init),
    ])
    model.compile(loss="mse")
    check = kbi.verify_loss_at_init(model, (x, y), rtol=1e-4)
    w1 = model.layers[0].kernel.numpy().astype(np.float64)
    penalty = 0.5 * np.sum(w1 ** 2)
    assert check.regularization == pytest.approx(penalty, rel=1e-5)
    assert check.bias_part == pytest.approx(0.0, abs=1e-5 * check.expected)
    assert check.kernel_part == pytest.approx(0.0, abs=1e-5 * check.expected)
    assert check.gap == pytest.approx(
        check.kernel_part + check.bias_part + check.regularization, rel=1e-6)
    assert not check.ok
    assert "bias itself is off" not in check.message
    assert "not the bias's" in check.message


def test_prior_bias_under_focal_loss_names_adapt_output_bias():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 3)).astype("float32")
    y = (rng.uniform(size=(400, 1)) < 0.08).astype("float32")
    focal = keras.losses.BinaryFocalCrossentropy(gamma=2.0, alpha=0.25,
                                                 apply_class_balancing=True)
    init = kbi.ClassPriorBias.from_dataset(y, activation="sigmoid", verbose=0)
    model = _mlp("zeros", init, activation="sigmoid")
    model.compile(loss=focal)
    check = kbi.verify_loss_at_init(model, (x, y))
    # The expected loss is the focal loss's own best constant, computed
    # independently here on a fine grid of Keras's loss.
    grid = np.linspace(0.1, 0.35, 251)
    best = min(float(focal(y, np.full_like(y, q))) for q in grid)
    assert check.expected == pytest.approx(best, rel=1e-3)
    assert check.made_for == "binary_crossentropy"
    assert check.loss.startswith("binary_focal_crossentropy")
    assert not check.ok
    assert "adapt_output_bias" in check.message
    assert "made for another loss, binary_crossentropy" in check.message
    assert "Recompute the" not in check.message
    # The fix the message names works.
    kbi.adapt_output_bias(model, (x, y), verbose=0)
    fixed = kbi.verify_loss_at_init(model, (x, y))
    assert fixed.ok and fixed.made_for.startswith("binary_focal_crossentropy")
    assert fixed.expected == pytest.approx(check.expected, rel=1e-6)


def test_reloaded_huber_model_is_told_keras_dropped_delta(regression, tmp_path):
    x, y = regression
    init = kbi.HuberBias.from_dataset(y, delta=5.0, verbose=0)
    model = _mlp("zeros", init)
    model.compile(optimizer="sgd", loss=keras.losses.Huber(delta=5.0))
    assert kbi.verify_loss_at_init(model, (x, y)).ok
    path = str(tmp_path / "huber.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    check = kbi.verify_loss_at_init(loaded, (x, y))
    if check.loss == "huber(delta=5.0)":  # a Keras that keeps delta
        assert check.ok
        return
    assert check.loss == "huber"  # delta=1.0, Keras's default
    y64 = y.astype(np.float64)
    best = kbi.HuberBias.from_dataset(y, delta=1.0, verbose=0).expected_loss
    assert check.expected == pytest.approx(best, rel=1e-9)
    r = np.abs(y64 - init.bias[0])
    at_bias = np.mean(np.where(r <= 1, 0.5 * r * r, r - 0.5))
    assert check.measured == pytest.approx(at_bias, rel=1e-5)
    assert "drops `delta`" in check.message
    assert "keras.losses.Huber(delta=5.0)" in check.message


def test_poisson_expected_may_be_negative():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(200, 3)).astype("float32")
    y = rng.poisson(3.5, size=(200, 1)).astype("float32")
    model = _mlp("zeros", "zeros", activation="exponential")
    model.compile(loss="poisson")
    init = kbi.adapt_output_bias(model, (x, y), verbose=0)[model.layers[-1].name]
    mean = y.mean(dtype=np.float64)
    assert init.expected_loss == pytest.approx(mean - mean * np.log(mean), rel=1e-6)
    assert init.expected_loss < 0
    check = kbi.verify_loss_at_init(model, (x, y))
    assert check.ok and check.expected < 0
