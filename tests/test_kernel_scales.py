"""adapt_kernel_scales on five small models: second moments on held-out data
(NumPy), residual sums, normalised and output layers, saving, bad data."""

import os

import keras
import numpy as np
import pytest

import keras_biasinit as kbi
from tests._network_models import BUILDERS
from tests._network_models import mlp
from tests._network_models import resnet

pytestmark = pytest.mark.keras

L = keras.layers


def _np(x):
    return keras.ops.convert_to_numpy(x).astype(np.float64)


@pytest.fixture(scope="module", params=BUILDERS, ids=lambda f: f.__name__)
def adapted(request):
    """A model adapted on the first half of its data; the second half held out."""
    keras.utils.set_random_seed(0)
    model, x, y, loss = request.param(np.random.default_rng(0))
    half = len(x) // 2
    originals = {layer.name: layer.get_config() for layer in model.layers}
    scales = kbi.adapt_kernel_scales(model, x[:half], verbose=0)
    return model, scales, x[:half], x[half:], y, loss, originals


def _output(model, name, x):
    part = keras.Model(model.inputs, model.get_layer(name).output)
    return _np(part.predict(x, verbose=0, batch_size=len(x)))


def test_every_scaled_output_is_at_the_target_on_held_out_data(adapted):
    model, scales, _, held_out, *_ = adapted
    checked = set()
    for record in scales.layers:
        if record.role == "scale":
            moment = np.mean(_output(model, record.measured_at, held_out) ** 2)
            assert 0.8 <= moment <= 1.25, (record.name, record.measured_at, moment)
            checked.add(record.name)
    assert checked == {r.name for r in scales.layers if r.role == "scale"}
    assert set(scales) >= checked and checked


def test_output_layer_kernel_part_is_scaled_down_only(adapted):
    model, scales, fit, *_ = adapted
    out = model.layers[-1]
    record = next(r for r in scales.layers if r.name == out.name)
    assert record.role == "output" and record.gain < 1
    inputs = _output(model, model.layers[-2].name, fit)
    part = inputs @ _np(out.kernel)  # W x, in NumPy
    assert np.mean(part ** 2) == pytest.approx(1e-4, rel=1e-3)  # the default


def test_gains_are_in_the_initializers_and_survive_clone_and_reload(
        adapted, tmp_path):
    model, scales, *_, originals = adapted
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    for rebuilt in (keras.models.clone_model(model), keras.models.load_model(path)):
        for name, gain in scales.items():
            layer = rebuilt.get_layer(name)
            init = getattr(layer, "_kernel_initializer", None) or next(
                getattr(layer, a) for a in ("pointwise_initializer",
                                            "depthwise_initializer",
                                            "embeddings_initializer",
                                            "kernel_initializer")
                if hasattr(layer, a))
            assert isinstance(init, kbi.Rescaled), name
            assert init.gain == pytest.approx(gain, rel=1e-12)
            assert keras.initializers.serialize(init.initializer)["class_name"] == \
                _original_initializer_class(originals[name])
            if isinstance(layer, L.MultiHeadAttention):  # its four projections
                for sub in (layer._query_dense, layer._key_dense,
                            layer._value_dense, layer._output_dense):
                    assert sub.kernel_initializer.gain == pytest.approx(gain)


def _original_initializer_class(config):
    for key in ("pointwise_initializer", "depthwise_initializer",
                "embeddings_initializer", "kernel_initializer"):
        if key in config:
            return config[key]["class_name"]
    raise AssertionError(config)


def test_clone_draws_kernels_of_the_same_scale():
    keras.utils.set_random_seed(1)
    model, x, *_ = mlp(np.random.default_rng(1))
    kbi.adapt_kernel_scales(model, x, verbose=0)
    clone = keras.models.clone_model(model)
    for layer, fresh in zip(model.layers[2:-1], clone.layers[2:-1]):
        ratio = np.mean(_np(fresh.kernel) ** 2) / np.mean(_np(layer.kernel) ** 2)
        assert 0.8 < ratio < 1.25, layer.name


def test_relu_gain_is_exact_in_one_step():
    rng = np.random.default_rng(2)
    x = (rng.normal(size=(64, 5)) * 100).astype("float32")
    model = keras.Sequential([keras.Input((5,)), L.Dense(7, activation="relu"),
                              L.Dense(7, activation="relu"), L.Dense(1)])
    w0 = _np(model.layers[0].kernel)
    scales = kbi.adapt_kernel_scales(model, x, target=2.0, verbose=0)
    expected = np.sqrt(2.0 / np.mean(np.maximum(x @ w0, 0) ** 2))
    assert scales[model.layers[0].name] == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(_np(model.layers[0].kernel), expected * w0, rtol=1e-5)
    h = _output(model, model.layers[1].name, x)
    assert np.mean(h ** 2) == pytest.approx(2.0, rel=1e-4)


def test_residual_sum_is_at_the_target_not_only_each_branch():
    keras.utils.set_random_seed(3)
    model, x, *_ = resnet(np.random.default_rng(3))
    scales = kbi.adapt_kernel_scales(model, x, verbose=0)
    sums = [r for r in scales.layers if r.role == "sum"]
    assert len(sums) == 3
    for record in sums:
        total = np.mean(_output(model, record.name, x) ** 2)
        assert total == pytest.approx(record.after, rel=1e-3)
        branch = model.get_layer(record.name).input[1]
        end = np.mean(_output(model, branch._keras_history.operation.name, x) ** 2)
        if record.note:  # the shortcut alone is at the target: a small branch
            assert "shortcut alone" in record.note
            assert end == pytest.approx(0.01, rel=1e-3)
            assert 0.8 <= total <= 1.25
        else:  # the sum at the target, the branch no longer on its own
            assert total == pytest.approx(1.0, rel=1e-3)
            assert end < 0.95


def test_layer_normalised_right_after_is_left_alone():
    rng = np.random.default_rng(4)
    x = (rng.normal(size=(64, 6, 6, 2)) * 50).astype("float32")
    inputs = keras.Input((6, 6, 2))
    h = L.Conv2D(4, 3, use_bias=False, name="conv")(inputs)
    h = L.BatchNormalization(name="bn")(h)
    h = L.Dense(4, activation="relu", name="after")(L.Activation("relu")(h))
    model = keras.Model(inputs, L.Dense(1)(L.Flatten()(h)))
    kernel = _np(model.get_layer("conv").kernel)
    moving = [_np(v) for v in model.get_layer("bn").non_trainable_variables]
    scales = kbi.adapt_kernel_scales(model, x, verbose=0)
    record = next(r for r in scales.layers if r.name == "conv")
    assert record.role == "normalised" and "'bn'" in record.note
    assert "conv" not in scales
    np.testing.assert_array_equal(_np(model.get_layer("conv").kernel), kernel)
    for before, v in zip(moving, model.get_layer("bn").non_trainable_variables):
        np.testing.assert_array_equal(_np(v), before)
    # 'after' sees the batch-normalised features, as in training.
    z = x_conv = _np(keras.ops.conv(x, model.get_layer("conv").kernel))
    z = (x_conv - z.mean((0, 1, 2))) / np.sqrt(z.var((0, 1, 2)) + 1e-3)
    out = np.maximum(np.maximum(z, 0) @ _np(model.get_layer("after").kernel), 0)
    assert np.mean(out ** 2) == pytest.approx(1.0, rel=1e-3)


def _snapshot(model):
    return [_np(w) for w in model.weights], [
        layer.get_config().get("kernel_initializer") for layer in model.layers]


@pytest.mark.parametrize("case", ["zeros", "nan", "dead second layer"])
def test_bad_layer_output_is_refused_and_nothing_changes(case):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(32, 4)).astype("float32") * 10
    second = "zeros" if case == "dead second layer" else "glorot_uniform"
    model = keras.Sequential([
        keras.Input((4,)), L.Dense(6, activation="relu", name="first"),
        L.Dense(6, activation="relu", kernel_initializer=second, name="second"),
        L.Dense(1, name="out")])
    if case == "zeros":
        x = np.zeros_like(x)
    elif case == "nan":
        x[3, 1] = np.nan
    before = _snapshot(model)
    name = "second" if case == "dead second layer" else "first"
    with pytest.raises(ValueError, match=f"'{name}'"):
        kbi.adapt_kernel_scales(model, x, verbose=0)
    after = _snapshot(model)
    for a, b in zip(before[0], after[0]):
        np.testing.assert_array_equal(a, b)
    assert before[1] == after[1]


def test_subclassed_model_and_bad_target_are_refused():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = L.Dense(2)

        def call(self, x):
            return self.dense(x)

    net = Net()
    net(np.zeros((1, 3), "float32"))
    with pytest.raises(ValueError, match="functional or Sequential"):
        kbi.adapt_kernel_scales(net, np.ones((4, 3), "float32"), verbose=0)
    model = keras.Sequential([keras.Input((3,)), L.Dense(2)])
    with pytest.raises(ValueError, match="target"):
        kbi.adapt_kernel_scales(model, np.ones((4, 3)), target=0.0, verbose=0)


def _weights_equal_model(build):
    keras.utils.set_random_seed(6)
    model, x, y, _ = build(np.random.default_rng(6))
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    return model, twin, x, y


def test_data_forms_and_steps_give_the_same_gains():
    tf = pytest.importorskip("tensorflow")

    model, twin, x, y = _weights_equal_model(mlp)
    reference = kbi.adapt_kernel_scales(model, (x[:320], y[:320]), verbose=0)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
    gains = kbi.adapt_kernel_scales(twin, ds, steps=5, verbose=0)
    assert list(gains) == list(reference)
    for name in reference:
        assert gains[name] == pytest.approx(reference[name], rel=1e-4)


class _Batches(keras.utils.PyDataset):
    def __init__(self, x, y):
        super().__init__()
        self.x, self.y = x, y

    def __len__(self):
        return 4

    def __getitem__(self, i):
        rows = slice(40 * i, 40 * (i + 1))
        return self.x[rows], self.y[rows]


def test_py_dataset_and_list_of_batches_give_the_array_gains():
    model, twin, x, y = _weights_equal_model(resnet)
    third = keras.models.clone_model(model)
    third.set_weights(model.get_weights())
    reference = kbi.adapt_kernel_scales(model, x[:160], verbose=0)
    from_py = kbi.adapt_kernel_scales(twin, _Batches(x, y), verbose=0)
    batches = [(x[i:i + 40], y[i:i + 40]) for i in range(0, 160, 40)]
    from_list = kbi.adapt_kernel_scales(third, batches, verbose=0)
    for name in reference:
        assert from_py[name] == pytest.approx(reference[name], rel=1e-4)
        assert from_list[name] == pytest.approx(reference[name], rel=1e-4)


def test_under_a_strategy_scope_the_gains_match(two_cpu_strategy):
    rng = np.random.default_rng(7)
    x = (rng.normal(size=(64, 5)) * 40).astype("float32")
    with two_cpu_strategy.scope():
        model = keras.Sequential([keras.Input((5,)), L.Dense(8, activation="relu"),
                                  L.Dense(8, activation="relu"), L.Dense(1)])
        gains = kbi.adapt_kernel_scales(model, x, verbose=0)
    h = _output(model, model.layers[1].name, x)
    assert np.mean(h ** 2) == pytest.approx(1.0, rel=1e-4)
    assert isinstance(model.layers[0].kernel_initializer, kbi.Rescaled)
    assert set(gains) == {layer.name for layer in model.layers}


def test_plus_operator_is_a_sum_and_a_nested_model_is_reported():
    rng = np.random.default_rng(8)
    x = (rng.normal(size=(128, 8)) * 30).astype("float32")
    inner_in = keras.Input((8,))
    inner = keras.Model(inner_in, L.Dense(8, activation="relu")(inner_in),
                        name="inner")
    inputs = keras.Input((8,))
    h = L.Dense(8, activation="relu")(inputs)
    summed = h + L.Dense(8, name="branch_end")(L.Dense(8, activation="relu")(h))
    model = keras.Model(inputs, L.Dense(1)(inner(summed)))
    kernel = _np(inner.layers[1].kernel)
    scales = kbi.adapt_kernel_scales(model, x, verbose=0)
    roles = {r.name: (r.role, r.measured_at) for r in scales.layers}
    assert roles["branch_end"][0] == "scale" and roles["branch_end"][1] != \
        "branch_end"
    total = keras.Model(inputs, summed).predict(x, verbose=0)
    assert 0.8 <= np.mean(_np(total) ** 2) <= 1.25
    assert roles["inner"][0] == "nested"
    np.testing.assert_array_equal(_np(inner.layers[1].kernel), kernel)


def test_a_zero_output_kernel_is_left_alone_and_a_zero_hidden_one_refused():
    rng = np.random.default_rng(9)
    x = (rng.normal(size=(64, 4)) * 20).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    model = keras.Sequential([
        keras.Input((4,)), L.Dense(8, activation="relu", name="hidden"),
        L.Dense(1, activation="sigmoid", kernel_initializer="zeros", name="out")])
    model.compile(loss="binary_crossentropy")
    scales, _ = kbi.adapt_model(model, (x, y), verbose=0)
    record = next(r for r in scales.layers if r.name == "out")
    assert record.gain == 1.0 and "zero kernel" in record.note
    assert not np.any(_np(model.get_layer("out").kernel))
    assert kbi.verify_loss_at_init(model, (x, y)).ok
    dead = keras.Sequential([keras.Input((4,)), L.Dense(
        8, kernel_initializer="zeros", name="dead"), L.Dense(1)])
    with pytest.raises(ValueError, match="'dead' outputs only zeros"):
        kbi.adapt_kernel_scales(dead, x, verbose=0)
