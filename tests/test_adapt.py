"""adapt_output_bias on real models: outputs, losses, data forms, saving."""

import os

import keras
import numpy as np
import pytest
from tests._tf import tf

import keras_biasinit as kbi

pytestmark = pytest.mark.keras

N = 96


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(N, 4)).astype("float32")
    ids = rng.choice(3, size=N, p=[0.7, 0.2, 0.1])
    reg = (100.0 + 15.0 * rng.normal(size=(N, 1))).astype("float32")
    w = rng.uniform(0.5, 2.0, size=N).astype("float32")
    return x, ids, reg, w


def _two_heads(activation_layer=True, reg_activation=None):
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(5, activation="relu")(inputs)
    logits = keras.layers.Dense(3, kernel_initializer="zeros", name="logits")(hidden)
    cls = (keras.layers.Softmax(name="cls")(logits) if activation_layer
           else logits)
    reg = keras.layers.Dense(1, activation=reg_activation, kernel_initializer="zeros",
                             name="reg")(hidden)
    return keras.Model(inputs, [cls, reg])


def _frequencies(ids, w=None):
    f = np.bincount(ids, weights=w, minlength=3)
    return f / f.sum()


def test_two_heads_list_loss_one_pass(data):
    x, ids, reg, w = data
    model = _two_heads()
    model.compile(loss=["sparse_categorical_crossentropy", "mae"])
    inits = kbi.adapt_output_bias(model, (x, [ids, reg], w), verbose=0)
    assert set(inits) == {"cls", "reg"}
    f = _frequencies(ids, w.astype(np.float64))
    np.testing.assert_allclose(np.exp(inits["cls"].bias), f, rtol=1e-9)
    # The weighted median, by sorting: the first value whose cumulative weight
    # reaches half.
    order = np.argsort(reg[:, 0])
    cum = np.cumsum(w[order].astype(np.float64))
    median = reg[order, 0][np.searchsorted(cum, cum[-1] / 2)]
    assert float(inits["reg"].bias[0]) == pytest.approx(float(median))
    logs = model.evaluate(x, [ids, reg], sample_weight=w, batch_size=N, verbose=0,
                          return_dict=True)
    total = inits["cls"].expected_loss + inits["reg"].expected_loss
    assert logs["loss"] == pytest.approx(total, rel=1e-5)
    assert isinstance(model.get_layer("logits").bias_initializer, kbi.ClassPriorBias)


def test_dict_loss_on_tf_data_with_dict_targets(data):
    x, ids, reg, _ = data
    model = _two_heads(activation_layer=False)
    model.compile(loss={
        "logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        "reg": keras.losses.Huber(delta=4.0),
    })
    ds = tf.data.Dataset.from_tensor_slices(
        (x, {"logits": ids, "reg": reg})).batch(20)
    inits = kbi.adapt_output_bias(model, ds, verbose=0)
    assert isinstance(inits["reg"], kbi.HuberBias) and inits["reg"].delta == 4.0
    logs = model.evaluate(ds, verbose=0, return_dict=True)
    total = inits["logits"].expected_loss + inits["reg"].expected_loss
    assert logs["loss"] == pytest.approx(total, rel=1e-5)
    np.testing.assert_allclose(np.exp(inits["logits"].bias), _frequencies(ids),
                               rtol=1e-9)


def test_one_shot_generator_and_loss_override(data):
    x, ids, reg, _ = data
    model = _two_heads()
    model.compile(loss=["sparse_categorical_crossentropy", "mse"])
    batches = ((x[i:i + 32], (ids[i:i + 32], reg[i:i + 32])) for i in range(0, N, 32))
    inits = kbi.adapt_output_bias(
        model, batches, verbose=0,
        loss=[keras.losses.CategoricalFocalCrossentropy(gamma=2.0), "mse"])
    assert isinstance(inits["cls"], kbi.FocalBias)
    assert float(inits["reg"].bias[0]) == pytest.approx(float(reg.mean()), rel=1e-6)
    # The compiled loss is untouched: loss= only picks the constant.
    assert model.loss == ["sparse_categorical_crossentropy", "mse"]


@pytest.mark.parametrize("make, words", [
    (lambda: (keras.layers.Softmax(), "mse"), ["'softmax'", "mean_squared_error",
                                               "Known pairs"]),
    (lambda: (None, lambda y, p: keras.ops.mean((y - p) ** 4)), ["'<lambda>'",
                                                                 "`loss=`"]),
    (lambda: (keras.layers.Activation("sigmoid"),
              keras.losses.BinaryCrossentropy(from_logits=True)),
     ["from_logits=True", "'sigmoid'"]),
    (lambda: (None, keras.losses.MeanSquaredError(reduction="sum")),
     ["reduction is 'sum'"]),
])
def test_unknown_pair_changes_no_bias(data, make, words):
    x, ids, reg, _ = data
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(5)(inputs)
    good = keras.layers.Dense(1, bias_initializer="ones", name="good")(hidden)
    bad = keras.layers.Dense(3, bias_initializer="ones", name="bad")(hidden)
    layer, bad_loss = make()
    if layer is not None:
        bad = layer(bad)
    model = keras.Model(inputs, [good, bad])
    model.compile(loss=["mse", bad_loss])
    before = [w.copy() for w in model.get_weights()]

    def never_read():
        raise AssertionError("data was read")
        yield

    with pytest.raises(ValueError) as error:
        kbi.adapt_output_bias(model, never_read(), verbose=0)
    message = str(error.value)
    for word in words + ["Output '"]:
        assert word in message
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model.get_layer("good").bias_initializer.__class__.__name__ == "Ones"


def test_layer_without_bias_and_bad_data_change_nothing(data):
    x, ids, reg, _ = data
    model = keras.Sequential([keras.Input((4,)),
                              keras.layers.Dense(1, use_bias=False)])
    model.compile(loss="mse")
    with pytest.raises(ValueError, match="no bias"):
        kbi.adapt_output_bias(model, (x, reg), verbose=0)
    # A class that never occurs fails after the pass, before any assignment.
    model = _two_heads()
    model.compile(loss=["categorical_crossentropy", "mse"])
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match="never occur"):
        kbi.adapt_output_bias(model, (x, [np.minimum(ids, 1), reg]), verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_save_load_and_clone_carry_the_initializer(data, tmp_path):
    x, ids, reg, _ = data
    counts = np.random.default_rng(0).poisson(2.0, size=(N, 1)).astype("float32")
    model = _two_heads(reg_activation="exponential")
    model.compile(loss=[keras.losses.CategoricalFocalCrossentropy(gamma=2.0),
                        keras.losses.Poisson()])
    inits = kbi.adapt_output_bias(model, (x, [np.eye(3)[ids], counts]), verbose=0)
    assert isinstance(inits["reg"], kbi.LinkBias) and inits["reg"].link == "exponential"
    path = os.path.join(tmp_path, "adapted.keras")
    model.save(path)
    loaded = keras.models.load_model(path, compile=False)  # no custom_objects
    for name in ("logits", "reg"):
        init = loaded.get_layer(name).bias_initializer
        assert type(init) is type(inits["cls" if name == "logits" else name])
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(loaded.get_layer(name).bias),
            keras.ops.convert_to_numpy(model.get_layer(name).bias))
    clone = keras.models.clone_model(model)
    fresh = keras.ops.convert_to_numpy(clone.get_layer("logits").bias)
    np.testing.assert_allclose(fresh, inits["cls"].bias, rtol=1e-6)


def test_built_in_a_strategy_scope(data, two_cpu_strategy):
    x, ids, reg, _ = data
    with two_cpu_strategy.scope():
        model = _two_heads()
        model.compile(loss=["sparse_categorical_crossentropy", "mse"])
    inits = kbi.adapt_output_bias(model, (x, [ids, reg]), verbose=0,
                                  strategy=two_cpu_strategy)
    bias = model.get_layer("reg").bias
    replicas = [keras.ops.convert_to_numpy(r) for r in
                two_cpu_strategy.experimental_local_results(bias.value)]
    assert len(replicas) == 2
    for r in replicas:
        np.testing.assert_allclose(r, [reg.mean()], rtol=1e-6)
    assert inits["reg"].expected_loss == pytest.approx(np.var(reg.astype(np.float64)))


def test_unbuilt_sequential_gets_the_initializer(data):
    x, _, reg, _ = data
    model = keras.Sequential([keras.layers.Dense(3, activation="relu"),
                              keras.layers.Dense(1, kernel_initializer="zeros")])
    model.compile(loss="log_cosh")
    assert not model.built
    init = kbi.adapt_output_bias(model, (x, reg), verbose=0)[model.layers[-1].name]
    assert isinstance(init, kbi.ConstantBias) and init.loss == "log_cosh"
    assert model.evaluate(x, reg, verbose=0) == pytest.approx(init.expected_loss,
                                                              rel=1e-5)


def test_subclassed_model(data):
    x, _, reg, _ = data

    class Regressor(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = keras.layers.Dense(3)
            self.out = keras.layers.Dense(1, kernel_initializer="zeros")

        def call(self, inputs):
            return self.out(self.hidden(inputs))

    model = Regressor()
    model.compile(loss="msle")
    model(x[:2])
    init = next(iter(kbi.adapt_output_bias(model, (x, reg), verbose=0).values()))
    u = np.log1p(reg.astype(np.float64))
    assert float(init.bias[0]) == pytest.approx(float(np.expm1(u.mean())), rel=1e-9)
    assert model.evaluate(x, reg, verbose=0) == pytest.approx(init.expected_loss,
                                                              rel=1e-5)


class _Counted:
    """A re-iterable list of batches that counts the passes read over it."""

    def __init__(self, batches):
        self.batches, self.passes = batches, 0

    def __iter__(self):
        self.passes += 1
        return iter(self.batches)


def _robust_heads():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(5, activation="relu")(inputs)
    outputs = [keras.layers.Dense(units, kernel_initializer="zeros", name=name)(hidden)
               for name, units in (("mae", 2), ("huber", 1), ("mape", 2))]
    model = keras.Model(inputs, outputs)
    model.compile(loss=["mae", keras.losses.Huber(delta=3.0), "mape"])
    return model


def _robust_data():
    rng = np.random.default_rng(7)
    n = 700
    x = rng.normal(size=(n, 4)).astype("float32")
    y2 = np.column_stack([rng.standard_t(3, n) * 4 + 50,
                          rng.integers(0, 6, n)]).astype("float32")  # ties
    y1 = (rng.lognormal(2.0, 1.0, (n, 1))).astype("float32")
    pct = np.column_stack([rng.uniform(1, 9, n), -rng.lognormal(1, 1, n)])
    w = rng.integers(1, 4, n).astype("float32") * 0.5
    batches = [(x[i:i + 64], [y2[i:i + 64], y1[i:i + 64],
                              pct[i:i + 64].astype("float32")], w[i:i + 64])
               for i in range(0, n, 64)]
    return batches, (x, [y2, y1, pct.astype("float32")], w)


def _weighted_median(y, v):
    """The first value whose cumulative weight reaches half (sorting), or the
    midpoint to the next value where it reaches half exactly."""
    order = np.argsort(y, kind="stable")
    ys, cum = y[order], np.cumsum(v[order])
    i = int(np.searchsorted(cum, cum[-1] / 2))
    tie = np.isclose(cum[i], cum[-1] / 2, rtol=1e-9, atol=0)
    return (ys[i] + ys[i + 1]) / 2 if tie else ys[i]


def test_order_statistics_over_budget_are_exact_in_a_few_passes():
    batches, (x, ys, w) = _robust_data()
    in_memory, tiny = _Counted(batches), _Counted(batches)
    expected = kbi.adapt_output_bias(_robust_heads(), in_memory, verbose=0)
    model = _robust_heads()
    got = kbi.adapt_output_bias(model, tiny, memory_budget=64 * 2**10, verbose=0)
    assert in_memory.passes == 1 and tiny.passes > 3  # several per head
    for name in ("mae", "huber", "mape"):
        a, b = got[name].get_config(), expected[name].get_config()
        assert a.pop("expected_loss") == pytest.approx(b.pop("expected_loss"),
                                                       rel=1e-12)
        assert a == b  # the order statistic exactly
    # Against references written here: the weighted medians by sorting.
    w64 = w.astype(np.float64)
    for j in range(2):
        y = ys[0][:, j].astype(np.float64)
        assert got["mae"].bias[j] == _weighted_median(y, w64)
        p = ys[2][:, j].astype(np.float64)
        assert got["mape"].bias[j] == pytest.approx(
            _weighted_median(p, w64 / np.maximum(np.abs(p), 1e-7)), rel=1e-12)
    # And against Keras: the model with a zero kernel starts at the sum.
    logs = model.evaluate(x, ys, sample_weight=w, batch_size=len(x), verbose=0,
                          return_dict=True)
    total = sum(init.expected_loss for init in got.values())
    assert logs["loss"] == pytest.approx(total, rel=1e-5)


def test_one_shot_generator_over_budget_is_a_clear_error_and_changes_nothing():
    batches, _ = _robust_data()
    model = _robust_heads()
    before = [v.copy() for v in model.get_weights()]
    with pytest.raises(ValueError, match="one-shot iterator.*`memory_budget`"):
        kbi.adapt_output_bias(model, iter(batches), memory_budget=64 * 2**10,
                              verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    # Within the budget, the same generator is read once and is fine.
    inits = kbi.adapt_output_bias(model, iter(batches), verbose=0)
    assert set(inits) == {"mae", "huber", "mape"}


def test_log_cosh_over_budget_names_the_options(data):
    x, _, reg, _ = data
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(loss="log_cosh")
    with pytest.raises(ValueError, match="log-cosh root.*`memory_budget=`"):
        kbi.adapt_output_bias(model, (x, reg), memory_budget=256, verbose=0)


def _protocol_cases():
    rng = np.random.default_rng(11)
    n = 120
    soft = rng.dirichlet([1.0, 2.0, 3.0], n)
    return [
        ("sparse_categorical_crossentropy", "softmax", rng.integers(0, 3, n), 3),
        (keras.losses.CategoricalCrossentropy(label_smoothing=0.1), "softmax",
         soft, 3),
        ("kl_divergence", "softmax", soft, 3),
        (keras.losses.BinaryFocalCrossentropy(gamma=2.0), "sigmoid",
         (rng.random((n, 2)) < 0.3).astype("float32"), 2),
        ("mse", "linear", rng.normal(5, 2, (n, 2)), 2),
        ("poisson", "exponential", rng.poisson(3.0, (n, 1)) * 1.0, 1),
        ("log_cosh", "linear", rng.normal(0, 3, (n, 1)), 1),
        ("mae", "linear", rng.normal(0, 3, (n, 2)), 2),
        (keras.losses.Huber(delta=0.5), "linear", rng.normal(0, 3, (n, 1)), 1),
        ("mape", "linear", rng.lognormal(0, 1, (n, 2)), 2),
    ]


@pytest.mark.parametrize("case", range(10))
def test_every_output_state_merges_through_its_arrays(case):
    """Two shards' states, one sent as arrays (what an all-reduce carries) and
    merged, inside a Composite as adapt_output_bias merges them: the numbers
    of one state that read all rows."""
    from keras_biasinit.best_constant import identify_loss
    from keras_biasinit.best_constant import rule_for
    from keras_biasinit.best_constant._state import Composite

    loss, activation, y, units = _protocol_cases()[case]
    w = np.random.default_rng(case).uniform(0.5, 2.0, y.shape[0])
    spec = identify_loss(loss, activation)
    rule = rule_for(spec, activation, "o")

    def start():
        return rule.start(spec, units, activation, name="output 'o'")

    whole = start()
    whole.update(y, w)
    a, b = start(), start()
    a.update(y[:50], w[:50])
    b.update(y[50:], w[50:])
    sent = Composite([b]).to_arrays()
    merged = Composite([a]).merge(Composite([start()]).from_arrays(sent)).parts[0]
    got, expected = merged.result().get_config(), whole.result().get_config()
    assert got.keys() == expected.keys()
    # The focal minimiser is a numerical search on a flat optimum: the merged
    # sums' rounding moves it by ~1e-8; everything else agrees to rounding.
    rtol = 1e-6 if "gamma" in got else 1e-9
    for key in got:
        if isinstance(got[key], (list, float)):
            np.testing.assert_allclose(got[key], expected[key], rtol=rtol,
                                       err_msg=key)
        else:
            assert got[key] == expected[key]
