"""A catalogue of model shapes: is the right bias set, and is the loss the minimum?

Each accepted shape is checked three ways: `adapt_output_bias`'s
`expected_loss` equals Keras's own `evaluate` with the head's kernel set to
zero, and equals an independent NumPy minimum (the entropy of the class
priors, the variance, the mean binary entropy). Refused shapes say why and
name the override. Tiny models and a few dozen rows, shared across cases.
"""

import math

import keras
import numpy as np
import pytest

import keras_biasinit as kbi

pytestmark = pytest.mark.keras

L = keras.layers
N, D = 64, 5  # evaluate batches of 32: per-output logs are exact


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D)).astype("float32")
    ids = rng.choice(3, size=N, p=[0.6, 0.3, 0.1])
    steps = rng.choice(3, size=(N, 2), p=[0.5, 0.3, 0.2])
    values = (rng.normal(size=(N, 2)) * [2.0, 5.0] + [10.0, -3.0]).astype("float32")
    return x, ids, steps, values


def _entropy(ids, k=3):
    f = np.bincount(np.ravel(ids), minlength=k) / np.size(ids)
    return float(-np.sum(f[f > 0] * np.log(f[f > 0])))


def _variance(values):
    return float(np.mean(np.var(np.asarray(values, np.float64), axis=0)))


def _zero_kernel_loss(model, layer, x, y):
    saved = keras.ops.convert_to_numpy(layer.kernel)
    layer.kernel.assign(np.zeros_like(saved))
    try:
        return float(model.evaluate(x, y, verbose=0, batch_size=N))
    finally:
        layer.kernel.assign(saved)


def _adapt_and_check(model, x, y, head, reference, **options):
    """adapt's expected loss = evaluate (zero kernel) = the NumPy minimum."""
    inits = kbi.adapt_output_bias(model, (x, y), verbose=0, **options)
    (init,) = inits.values()
    layer = model.get_layer(head) if isinstance(head, str) else head
    assert init.expected_loss == pytest.approx(reference, rel=1e-5)
    assert _zero_kernel_loss(model, layer, x, y) == pytest.approx(reference, rel=1e-4)
    return init, layer


def _ce(name=None):
    return keras.Sequential(name=name)


# --- Sequential / functional: the trailing run of output-preserving layers ---


def test_hidden_activation_after_batchnorm(data):
    x, ids, _, _ = data
    model = keras.Sequential([
        keras.Input((D,)), L.Dense(8), L.BatchNormalization(), L.Activation("relu"),
        L.Dense(3, activation="softmax", name="out")])
    model.compile(loss="sparse_categorical_crossentropy")
    init, layer = _adapt_and_check(model, x, ids, "out", _entropy(ids))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.bias),
                               np.log(np.bincount(ids, minlength=3) / N), rtol=1e-5)


def test_hidden_linear_activation_leaves_hidden_bias(data):
    x, _, _, values = data
    model = keras.Sequential([
        keras.Input((D,)), L.Dense(8, name="hidden"), L.Activation("linear"),
        L.Dense(2, name="out")])
    model.compile(loss="mse")
    _adapt_and_check(model, x, values, "out", _variance(values))
    assert not np.any(keras.ops.convert_to_numpy(model.get_layer("hidden").bias))


def test_trailing_activation_layer_sigmoid(data):
    x, _, steps, _ = data
    y = (steps > 0).astype("float32")  # two labels
    model = keras.Sequential([keras.Input((D,)), L.Dense(2, name="out"),
                              L.Activation("sigmoid")])
    model.compile(loss="binary_crossentropy")
    p = y.mean(axis=0)
    reference = float(np.mean(-p * np.log(p) - (1 - p) * np.log(1 - p)))
    _adapt_and_check(model, x, y, "out", reference)


def test_reshape_then_softmax(data):
    x, _, steps, _ = data
    model = keras.Sequential([keras.Input((D,)), L.Dense(6, name="out"),
                              L.Reshape((2, 3)), L.Softmax()])
    model.compile(loss="sparse_categorical_crossentropy")
    init, layer = _adapt_and_check(model, x, steps, "out", _entropy(steps))
    bias = keras.ops.convert_to_numpy(layer.bias)
    np.testing.assert_allclose(bias, np.tile(init.bias, 2), rtol=1e-6)
    assert isinstance(layer.bias_initializer, kbi.MappedBias)


def test_permute_moves_units(data):
    x, _, steps, _ = data
    model = keras.Sequential([keras.Input((D,)), L.Dense(6, name="out"),
                              L.Reshape((3, 2)), L.Permute((2, 1)), L.Softmax()])
    model.compile(loss="sparse_categorical_crossentropy")
    init, layer = _adapt_and_check(model, x, steps, "out", _entropy(steps))
    # Unit j of the bias lands at class j // 2 after the reshape and permute.
    bias = keras.ops.convert_to_numpy(layer.bias)
    np.testing.assert_allclose(bias, init.bias[np.arange(6) // 2], rtol=1e-6)


def test_flatten_and_dropout(data):
    x, _, _, values = data
    model = keras.Sequential([keras.Input((1, D)), L.Dense(2, name="out"),
                              L.Flatten(), L.Dropout(0.5)])
    model.compile(loss="mse")
    _adapt_and_check(model, x[:, None, :], values, "out", _variance(values))


def test_rescaling_per_channel_and_noise(data):
    x, _, _, values = data
    scale, offset = np.array([2.0, 0.5]), np.array([1.0, -3.0])
    model = keras.Sequential([
        keras.Input((D,)), L.Dense(2, name="out"),
        L.Rescaling(scale.tolist(), offset=offset.tolist()), L.GaussianNoise(0.3)])
    model.compile(loss="mse")
    _, layer = _adapt_and_check(model, x, values, "out", _variance(values))
    mean = values.astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.bias),
                               (mean - offset) / scale, rtol=1e-5)


def test_rescaling_after_sigmoid_is_refused(data):
    x, _, _, values = data
    model = keras.Sequential([keras.Input((D,)), L.Dense(2, activation="sigmoid"),
                              L.Rescaling(2.0)])
    model.compile(loss="mse")
    with pytest.raises(ValueError, match="Rescaling.*after its sigmoid"):
        kbi.adapt_output_bias(model, (x, values), verbose=0)


def test_softmax_before_reshape_is_refused(data):
    x, _, steps, _ = data
    model = keras.Sequential([keras.Input((D,)), L.Dense(6, activation="softmax"),
                              L.Reshape((2, 3))])
    model.compile(loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="moves the units.*after its softmax"):
        kbi.adapt_output_bias(model, (x, steps), verbose=0)


def test_broadcast_bias_needing_two_constants_is_refused(data):
    x, _, _, values = data
    # Dense(2) per step of (2, D): bias unit k sits at (k, t) for both steps t
    # after the Permute, where the loss wants a constant per t.
    model = keras.Sequential([keras.Input((2, D)), L.Dense(2), L.Permute((2, 1))])
    model.compile(loss="mse")
    y = np.stack([values, values], axis=1)
    with pytest.raises(ValueError, match="Bias unit 0 .*different constants"):
        kbi.adapt_output_bias(model, (np.stack([x, x], 1), y), verbose=0)


def test_lambda_refused_then_named(data):
    x, ids, _, _ = data
    model = keras.Sequential([keras.Input((D,)), L.Dense(3, name="out"),
                              L.Lambda(lambda t: t * 1.0), L.Softmax()])
    model.compile(loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="Lambda.*`layer=`.*`activation=`"):
        kbi.adapt_output_bias(model, (x, ids), verbose=0)
    # Named, the Lambda is taken on the caller's word; the softmax after it
    # is the caller's `activation=`.
    _adapt_and_check(model, x, ids, "out", _entropy(ids), layer="out",
                     activation="softmax")


def test_layer_that_is_not_the_head_is_refused(data):
    x, ids, _, _ = data
    model = keras.Sequential([keras.Input((D,)), L.Dense(4, name="hidden"),
                              L.Dense(3, activation="softmax", name="out")])
    model.compile(loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="'hidden' is not its head.*'out'"):
        kbi.adapt_output_bias(model, (x, ids), layer="hidden", verbose=0)


def test_no_bias_heads_say_so(data):
    x, _, _, values = data
    for layer, what in ((L.Dense(2, use_bias=False, name="nb"), "use_bias=False"),
                        (L.EinsumDense("ab,bc->ac", output_shape=2, name="nb"),
                         "bias_axes=None")):
        model = keras.Sequential([keras.Input((D,)), layer])
        model.compile(loss="mse")
        with pytest.raises(ValueError, match=f"'nb'.*no bias \\(`{what}`\\)"):
            kbi.adapt_output_bias(model, (x, values), verbose=0)


def test_einsum_dense_with_bias_axes(data):
    x, _, _, values = data
    model = keras.Sequential([keras.Input((D,)), L.EinsumDense(
        "ab,bc->ac", output_shape=2, bias_axes="c", name="out")])
    model.compile(loss="mse")
    _adapt_and_check(model, x, values, "out", _variance(values))


def test_own_and_call_activations_do_not_stack(data):
    x, ids, _, _ = data
    model = keras.Sequential([keras.Input((D,)), L.Dense(3, activation="softmax",
                                                         name="out"), L.Lambda(
        lambda t: t)])
    model.compile(loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="two non-linear activations"):
        kbi.adapt_output_bias(model, (x, ids), layer="out", activation="softmax",
                              verbose=0)


def test_keras_ops_activation_in_a_functional_graph(data):
    x, ids, _, _ = data
    inputs = keras.Input((D,))
    model = keras.Model(inputs, keras.ops.softmax(L.Dense(3, name="out")(inputs)))
    model.compile(loss="sparse_categorical_crossentropy")
    _adapt_and_check(model, x, ids, "out", _entropy(ids))


# --- nested models ---


def test_nested_sequential_in_functional(data):
    x, ids, _, _ = data
    inner = keras.Sequential([keras.Input((4,)), L.Dense(3, name="inner_out"),
                              L.Softmax()], name="inner")
    inputs = keras.Input((D,))
    model = keras.Model(inputs, inner(L.Dense(4)(inputs)))
    model.compile(loss="sparse_categorical_crossentropy")
    _adapt_and_check(model, x, ids, inner.get_layer("inner_out"), _entropy(ids))


def test_head_inside_nested_model_activation_outside(data):
    x, ids, _, _ = data
    inner = keras.Sequential([keras.Input((D,)), L.Dense(4), L.Dense(3, name="h")],
                             name="trunk")
    inputs = keras.Input((D,))
    model = keras.Model(inputs, L.Activation("softmax")(inner(inputs)))
    model.compile(loss="sparse_categorical_crossentropy")
    _adapt_and_check(model, x, ids, inner.get_layer("h"), _entropy(ids))


# --- subclassed models: what call() does, not creation order ---


class TwoDense(keras.Model):
    def __init__(self, output_first, softmax_in_call=False):
        super().__init__()
        if output_first:
            self.head = L.Dense(3, name="head")
            self.hidden = L.Dense(4, activation="relu", name="hidden")
        else:
            self.hidden = L.Dense(4, activation="relu", name="hidden")
            self.head = L.Dense(3, name="head")
        self.softmax_in_call = softmax_in_call

    def call(self, inputs):
        logits = self.head(self.hidden(inputs))
        return keras.ops.softmax(logits) if self.softmax_in_call else logits


@pytest.mark.parametrize("output_first", [True, False])
def test_subclassed_either_creation_order(data, output_first):
    x, ids, _, _ = data
    model = TwoDense(output_first)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    if output_first:
        model(x[:2])  # built; the other is built by the trace
    _, layer = _adapt_and_check(model, x, ids, model.head, _entropy(ids))
    assert not np.any(keras.ops.convert_to_numpy(model.hidden.bias))


def test_subclassed_softmax_in_call(data):
    x, ids, _, _ = data
    model = TwoDense(True, softmax_in_call=True)
    model.compile(loss="sparse_categorical_crossentropy")
    model(x[:2])
    with pytest.raises(ValueError, match="outside any layer.*`layer=`.*`activation=`"):
        kbi.adapt_output_bias(model, (x, ids), verbose=0)
    # Said: the traced call proves which layer's output it is.
    _adapt_and_check(model, x, ids, model.head, _entropy(ids), activation="softmax")
    check = kbi.verify_loss_at_init(model, (x, ids), activation="softmax")
    assert check.expected == pytest.approx(_entropy(ids), rel=1e-6)
    assert check.zero_kernel_loss == pytest.approx(_entropy(ids), rel=1e-4)
    # Or named outright, with a one-shot generator (the traced rows come back).
    model.head.bias.assign(np.zeros(3))
    batches = iter([(x[:32], ids[:32]), (x[32:], ids[32:])])
    inits = kbi.adapt_output_bias(model, batches, layer="head", activation="softmax",
                                  verbose=0)
    assert inits["head"].expected_loss == pytest.approx(_entropy(ids), rel=1e-6)


# --- verify: several outputs ---


@pytest.fixture(scope="module")
def two_outputs(data):
    x, ids, _, values = data
    inputs = keras.Input((D,))
    hidden = L.Dense(8, activation="relu")(inputs)
    model = keras.Model(inputs, {
        "cls": L.Dense(3, activation="softmax", name="cls")(hidden),
        "reg": L.Dense(2, name="reg")(hidden)})
    model.compile(loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
                  loss_weights={"cls": 1.0, "reg": 0.25})
    kbi.adapt_output_bias(model, (x, {"cls": ids, "reg": values}), verbose=0)
    return model, (x, {"cls": ids, "reg": values})


def test_verify_several_outputs_total_and_parts(two_outputs):
    model, data_xy = two_outputs
    x, y = data_xy
    for name in ("cls", "reg"):
        layer = model.get_layer(name)
        layer.kernel.assign(np.zeros(layer.kernel.shape))
    model.get_layer("reg").kernel.assign(np.full(model.get_layer("reg").kernel.shape,
                                                 3.0))
    check = kbi.verify_loss_at_init(model, (x, y), rtol=0.01)
    entropy, variance = _entropy(y["cls"]), _variance(y["reg"])
    assert check.outputs["cls"].expected == pytest.approx(entropy, rel=1e-6)
    assert check.outputs["cls"].ok and check.outputs["cls"].kernel_part == \
        pytest.approx(0.0, abs=1e-6)
    assert not check.outputs["reg"].ok
    assert check.outputs["reg"].bias_part == pytest.approx(0.0, abs=1e-3 * variance)
    assert check.expected == pytest.approx(entropy + 0.25 * variance, rel=1e-5)
    logs = model.evaluate(x, y, verbose=0, return_dict=True, batch_size=N)
    assert check.measured == pytest.approx(logs["loss"], rel=1e-5)
    assert not check.ok and "output(s) ['reg'] are off" in check.message


def test_verify_layer_on_one_head_does_not_blame_the_other(two_outputs):
    model, (x, y) = two_outputs
    model.get_layer("cls").kernel.assign(np.zeros(model.get_layer("cls").kernel.shape))
    model.get_layer("reg").kernel.assign(np.full(model.get_layer("reg").kernel.shape,
                                                 3.0))
    check = kbi.verify_loss_at_init(model, (x, y), layer="cls", rtol=0.01)
    assert check.output == "cls" and check.ok
    assert check.measured == pytest.approx(_entropy(y["cls"]), rel=1e-5)


# --- endless inputs ---


def test_endless_inputs_need_steps(data):
    tf = pytest.importorskip("tensorflow")

    x, ids, _, _ = data
    model = keras.Sequential([keras.Input((D,)), L.Dense(3, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy")
    ds = tf.data.Dataset.from_tensor_slices((x, ids)).batch(16).repeat()
    with pytest.raises(ValueError, match="infinite.*`steps=`"):
        kbi.verify_loss_at_init(model, ds)

    class Endless:  # what a grain `MapDataset.repeat()` says about itself
        def __len__(self):
            return 2**58

        def __iter__(self):
            while True:
                yield x[:16], ids[:16]

    for call in (lambda: kbi.adapt_output_bias(model, Endless(), verbose=0),
                 lambda: kbi.verify_loss_at_init(model, Endless()),
                 lambda: kbi.ClassPriorBias.from_dataset(Endless(), verbose=0)):
        with pytest.raises(ValueError, match="endless.*`steps=`"):
            call()
    init = kbi.adapt_output_bias(model, Endless(), steps=3, verbose=0)
    assert len(init) == 1
    assert math.isclose(sum(init[model.layers[-1].name].priors), 1.0)


def test_grain_endless_and_finite(data):
    grain = pytest.importorskip("grain")
    x, ids, _, _ = data
    model = keras.Sequential([keras.Input((D,)), L.Dense(3, activation="softmax",
                                                         name="out")])
    model.compile(loss="sparse_categorical_crossentropy")
    batches = grain.MapDataset.source([(x[:32], ids[:32]), (x[32:], ids[32:])])
    with pytest.raises(ValueError, match="endless.*`steps=`"):
        kbi.adapt_output_bias(model, batches.repeat(), verbose=0)
    with pytest.raises(ValueError, match="endless.*`steps=`"):
        kbi.MeanBias.from_dataset(batches.repeat(), verbose=0)
    _adapt_and_check(model, x, ids, "out", _entropy(ids))
    inits = kbi.adapt_output_bias(model, batches, verbose=0)
    assert inits["out"].expected_loss == pytest.approx(_entropy(ids), rel=1e-6)
