"""The loss Keras really computes: masks, weight shapes, class_weight, ignore_class.

Every catalogue case builds a tiny model with a zero output kernel, runs
`adapt_output_bias`, and checks the result three ways: `expected_loss` equals
Keras's own `evaluate` on the same batches; it equals the minimum, found by
SciPy, of the loss written out in NumPy from Keras's rule (each batch
normalised by its unmasked elements, batches weighted by their size); and
the bias is that minimiser.
"""

import keras
import numpy as np
import pytest
from scipy import optimize

import keras_biasinit as kbi

pytestmark = pytest.mark.keras

RNG = np.random.default_rng(11)
N, T, K = 40, 6, 3


class Batches(keras.utils.PyDataset):
    """The given `(x, y[, w])` batches, as `fit` and `evaluate` read them."""

    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        return self.batches[index]


def _softmax(b):
    e = np.exp(b - b.max())
    return e / e.sum()


def _per_element(kind, b, y):
    """Each element's loss at constant logits `b` (NumPy, float64)."""
    if kind == "softmax":
        return -np.log(_softmax(b))[y]
    if kind == "sigmoid":
        p = 1.0 / (1.0 + np.exp(-b[0]))
        return -(y * np.log(p) + (1 - y) * np.log1p(-p))
    if kind == "mae":
        return np.abs(y - b[0])
    return (y - b[0]) ** 2  # mse


def _keras_rule(kind, b, batches):
    """(1 / N) sum_b n_b / V_b sum_{valid i in b} w_i l_i: Keras's loss."""
    total = examples = 0.0
    for y, w, valid in batches:
        examples += y.shape[0]
        if valid.sum():
            l = _per_element(kind, b, y)
            total += y.shape[0] * np.sum(w * l * valid) / valid.sum()
    return total / examples


def _numpy_minimum(kind, batches, units):
    """The best constant and its loss, by SciPy on the rule written out."""
    if kind == "mae":  # not smooth: a bounded 1-D search
        values = np.concatenate([y.ravel() for y, _, _ in batches])
        found = optimize.minimize_scalar(
            lambda c: _keras_rule(kind, np.array([c]), batches),
            bounds=(values.min(), values.max()), method="bounded",
            options={"xatol": 1e-9})
        return np.array([found.x]), found.fun
    found = optimize.minimize(lambda b: _keras_rule(kind, b, batches),
                              np.zeros(units), method="BFGS",
                              options={"gtol": 1e-10})
    return found.x, found.fun


def _sequences(n=N, t=T, lengths=None):
    x = RNG.integers(1, 8, size=(n, t))
    lengths = RNG.integers(1, t + 1, size=n) if lengths is None else lengths
    for i, length in enumerate(lengths):
        x[i, length:] = 0
    return x


def _tagger(rnn=None, units=K, activation="softmax", masking=False):
    """Embedding(mask_zero) [+ GRU/LSTM] + Dense per step; or Masking + LSTM."""
    if masking:
        inputs = keras.Input((None, 2))
        hidden = keras.layers.Masking(0.0)(inputs)
    else:
        inputs = keras.Input((None,), dtype="int32")
        hidden = keras.layers.Embedding(8, 4, mask_zero=True)(inputs)
    if rnn is not None:
        hidden = rnn(5, return_sequences=True)(hidden)
    outputs = keras.layers.Dense(units, activation=activation,
                                 kernel_initializer="zeros", name="out")(hidden)
    return keras.Model(inputs, outputs)


def _check(model, data, kind, batches, units, evaluated, class_weight=None,
           rtol=2e-5):
    init = kbi.adapt_output_bias(model, data, verbose=0,
                                 class_weight=class_weight)["out"]
    bias, minimum = _numpy_minimum(kind, batches, units)
    assert init.expected_loss == pytest.approx(minimum, rel=1e-6)
    if evaluated is not None:
        assert init.expected_loss == pytest.approx(evaluated(model), rel=rtol)
    fitted = init.bias
    if kind == "softmax":
        np.testing.assert_allclose(_softmax(fitted), _softmax(bias), atol=2e-4)
    elif kind != "mae":  # the median may be any point of an interval
        np.testing.assert_allclose(fitted, bias, atol=2e-4)
    return init


def _valid(x):
    return (x != 0) if x.ndim == 2 else np.any(x != 0, axis=-1)


def _in_batches(size, *arrays):
    return [tuple(a[i:i + size] for a in arrays) for i in range(0, N, size)]


@pytest.mark.parametrize("rnn", [None, keras.layers.GRU],
                         ids=["embedding-dense", "embedding-gru-dense"])
def test_mask_zero_counts_only_unmasked_steps(rnn):
    x = _sequences()
    y = RNG.choice(K, size=(N, T), p=[0.6, 0.3, 0.1])
    model = _tagger(rnn)
    model.compile(loss="sparse_categorical_crossentropy")
    # Arrays are read in batches of 32, as evaluate(x, y) reads them.
    batches = [(y[s], np.ones_like(y[s], float), _valid(x[s]))
               for s in (slice(0, 32), slice(32, N))]
    _check(model, (x, y), "softmax", batches, K,
           lambda m: m.evaluate(x, y, verbose=0))


@pytest.mark.parametrize("shape", ["(n,1)", "(n,T)"])
def test_mask_with_sample_weights(shape):
    x = _sequences()
    y = RNG.choice(K, size=(N, T), p=[0.5, 0.3, 0.2])
    w = RNG.uniform(0.2, 3.0, size=(N, 1) if shape == "(n,1)" else (N, T))
    model = _tagger()
    model.compile(loss="sparse_categorical_crossentropy")
    data = _in_batches(10, x, y, w)
    batches = [(yb, np.broadcast_to(wb, yb.shape), _valid(xb)) for xb, yb, wb in data]
    # Keras 3.15's torch backend fails here itself (an in-place broadcast of
    # the (n, 1) weights by the (n, T) mask): only SciPy's minimum is checked.
    torch_bug = shape == "(n,1)" and keras.backend.backend() == "torch"
    _check(model, Batches(data), "softmax", batches, K,
           None if torch_bug else lambda m: m.evaluate(Batches(data), verbose=0))


def test_masking_lstm_regression_per_step():
    lengths = RNG.integers(1, T + 1, size=N)
    x = RNG.normal(size=(N, T, 2)) + 3.0
    for i, length in enumerate(lengths):
        x[i, length:] = 0.0
    y = (5.0 + 2.0 * RNG.normal(size=(N, T, 1))).astype("float32")
    model = _tagger(keras.layers.LSTM, units=1, activation=None, masking=True)
    model.compile(loss="mse")
    data = _in_batches(16, x.astype("float32"), y)
    batches = [(yb[..., 0], np.ones(yb.shape[:2]), _valid(xb)) for xb, yb in data]
    _check(model, Batches(data), "mse", batches, 1,
           lambda m: m.evaluate(Batches(data), verbose=0))


def test_mae_with_a_batch_all_padding():
    x = _sequences()
    x[:10] = 0  # the first batch is all padding: it adds nothing, counts n_b
    y = RNG.normal(size=(N, T, 1)).astype("float32")
    model = _tagger(units=1, activation=None)
    model.compile(loss="mae")
    data = _in_batches(10, x, y)
    batches = [(yb[..., 0], np.ones(yb.shape[:2]), _valid(xb)) for xb, yb in data]
    _check(model, Batches(data), "mae", batches, 1,
           lambda m: m.evaluate(Batches(data), verbose=0))


def test_bucketed_lengths_give_evaluates_number():
    # Batches padded to their own length (bucket_by_sequence_length): Keras's
    # per-batch normalisation weighs a step in a short batch more.
    sizes, pads = (8, 12, 20), (2, 4, 6)
    data, start = [], 0
    for size, pad in zip(sizes, pads):
        x = _sequences(size, pad, lengths=RNG.integers(1, pad + 1, size=size))
        y = (RNG.uniform(size=(size, pad, 1)) < 0.2 + 0.1 * pad).astype("float32")
        data.append((x, y))
        start += size
    model = _tagger(units=1, activation="sigmoid")
    model.compile(loss="binary_crossentropy")
    batches = [(yb[..., 0], np.ones(yb.shape[:2]), _valid(xb)) for xb, yb in data]
    init = _check(model, Batches(data), "sigmoid", batches, 1,
                  lambda m: m.evaluate(Batches(data), verbose=0))
    pooled = _keras_rule("sigmoid", init.bias, [
        (np.concatenate([b[0].ravel() for b in batches]),
         1.0, np.concatenate([b[2].ravel() for b in batches]))])
    assert abs(pooled - init.expected_loss) > 1e-4  # the batching matters here


def test_per_pixel_weights_ids_and_vectors():
    h = w = 4
    x = RNG.normal(size=(N, h, w, 2)).astype("float32")
    ids = RNG.choice(K, size=(N, h, w), p=[0.5, 0.3, 0.2])
    weights = RNG.uniform(0.1, 2.0, size=(N, h, w))
    inputs = keras.Input((h, w, 2))
    out = keras.layers.Conv2D(K, 1, activation="softmax", kernel_initializer="zeros",
                              name="out")(inputs)
    model = keras.Model(inputs, out)
    batches = [(ids[s].ravel(), weights[s].ravel(), np.ones(ids[s].size, bool))
               for s in (slice(0, 32), slice(32, N))]
    model.compile(loss="sparse_categorical_crossentropy")
    _check(model, (x, ids, weights), "softmax", batches, K,
           lambda m: m.evaluate(x, ids, sample_weight=weights, verbose=0))
    onehot = np.eye(K, dtype="float32")[ids]
    model.compile(loss="categorical_crossentropy")
    _check(model, (x, onehot, weights), "softmax", batches, K,
           lambda m: m.evaluate(x, onehot, sample_weight=weights, verbose=0))


def _classifier(units=K, activation="softmax"):
    model = keras.Sequential([
        keras.Input((4,)), keras.layers.Dense(6, activation="relu"),
        keras.layers.Dense(units, activation=activation,
                           kernel_initializer="zeros", name="out"),
    ])
    return model


def test_class_weight_is_fits_step_zero_loss():
    x = RNG.normal(size=(64, 4)).astype("float32")
    y = RNG.choice(K, size=64, p=[0.7, 0.2, 0.1])
    class_weight = {0: 0.3, 2: 5.0}  # class 1 not named: weight 1
    model = _classifier()
    model.compile(loss="sparse_categorical_crossentropy",
                  optimizer=keras.optimizers.SGD(0.0))
    cw = np.array([0.3, 1.0, 5.0])[y]

    def fit_step_zero(m):  # one step on all the data, learning rate 0
        history = m.fit(x, y, class_weight=class_weight, batch_size=64, epochs=1,
                        verbose=0)
        return history.history["loss"][0]

    _check(model, (x, y), "softmax", [(y, cw, np.ones(64, bool))], K,
           fit_step_zero, class_weight=class_weight)
    check = kbi.verify_loss_at_init(model, (x, y), class_weight=class_weight)
    assert check.ok and check.measured == pytest.approx(check.expected, rel=1e-5)


def test_class_weight_with_one_hot_labels_and_sample_weights():
    x = RNG.normal(size=(N, 4)).astype("float32")
    y = RNG.choice(K, size=N, p=[0.6, 0.3, 0.1])
    onehot = np.eye(K, dtype="float32")[y]
    w = RNG.uniform(0.5, 2.0, size=N)
    class_weight = {0: 0.5, 1: 2.0, 2: 4.0}
    both = w * np.array([0.5, 2.0, 4.0])[y]  # multiplied (fit refuses both)
    model = _classifier()
    model.compile(loss="categorical_crossentropy")
    _check(model, (x, onehot, w), "softmax", [(y, both, np.ones(N, bool))], K,
           lambda m: m.evaluate(x, onehot, sample_weight=both, verbose=0),
           class_weight=class_weight)


def test_class_weight_for_binary_labels():
    x = RNG.normal(size=(N, 4)).astype("float32")
    y = (RNG.uniform(size=(N, 1)) < 0.15).astype("float32")
    model = _classifier(units=1, activation="sigmoid")
    model.compile(loss="binary_crossentropy")
    cw = np.where(y[:, 0] > 0.5, 6.0, 1.0)
    _check(model, (x, y), "sigmoid", [(y[:, 0], cw, np.ones(N, bool))], 1,
           lambda m: m.evaluate(x, y, sample_weight=cw, verbose=0),
           class_weight={1: 6.0})


def test_ignore_class_leaves_padding_out_per_batch():
    y = RNG.choice(K, size=(N, T), p=[0.5, 0.3, 0.2])
    lengths = RNG.integers(1, T + 1, size=N)
    for i, length in enumerate(lengths):
        y[i, length:] = -1
    x = RNG.normal(size=(N, T, 2)).astype("float32")
    inputs = keras.Input((T, 2))
    out = keras.layers.Dense(K, activation="softmax", kernel_initializer="zeros",
                             name="out")(inputs)
    model = keras.Model(inputs, out)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(ignore_class=-1))
    data = _in_batches(8, x, y)
    batches = [(np.maximum(yb, 0), np.ones(yb.shape), yb != -1) for _, yb in data]
    _check(model, Batches(data), "softmax", batches, K,
           lambda m: m.evaluate(Batches(data), verbose=0))


def test_errors_name_the_problem_and_the_fix():
    x = RNG.normal(size=(N, T, 2)).astype("float32")
    y = RNG.choice(K, size=(N, T))
    inputs = keras.Input((T, 2))
    out = keras.layers.Dense(K, activation="softmax", name="out")(inputs)
    model = keras.Model(inputs, out)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(ignore_class=0))
    with pytest.raises(ValueError, match=r"ignore_class=0` is one of the output's 3"):
        kbi.adapt_output_bias(model, (x, y), verbose=0)
    model.compile(loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"trailing axis, \(40, 6, 1\)"):
        kbi.adapt_output_bias(model, (x, y), verbose=0, class_weight={0: 2.0})
    two = keras.Model(inputs, {"a": keras.layers.Dense(K, activation="softmax")(
        inputs), "b": keras.layers.Dense(1)(inputs)})
    two.compile(loss={"a": "sparse_categorical_crossentropy", "b": "mse"})
    with pytest.raises(ValueError, match=r"one output, as in `Model.fit`.*dict by "):
        kbi.adapt_output_bias(two, (x, {"a": y, "b": y}), verbose=0,
                              class_weight={0: 2.0})


def test_no_mask_means_x_is_never_read():
    class Untouchable:
        def __getattr__(self, name):
            raise AssertionError(f"x was read ({name})")

    y = RNG.choice(K, size=(N, T, 1))
    inputs = keras.Input((T, 2))
    model = keras.Model(inputs, keras.layers.Dense(
        K, activation="softmax", name="out")(inputs))
    model.compile(loss="sparse_categorical_crossentropy")
    w = RNG.uniform(0.5, 2.0, size=(N, T))
    init = kbi.adapt_output_bias(model, [(Untouchable(), y, w)], verbose=0)["out"]
    f = np.bincount(y.ravel(), weights=w.ravel(), minlength=K)
    np.testing.assert_allclose(init.bias - init.bias.mean(),
                               np.log(f / f.sum()) - np.log(f / f.sum()).mean())


@pytest.mark.filterwarnings("ignore:Your input ran out of data")
def test_tf_data_bucket_by_sequence_length():
    tf = pytest.importorskip("tensorflow")
    lengths = RNG.integers(1, 9, size=N)
    labels = [(RNG.uniform(size=(n, 1)) < 0.3).astype("float32") for n in lengths]
    tokens = [RNG.integers(1, 8, size=n) for n in lengths]
    ds = tf.data.Dataset.from_generator(
        lambda: zip(tokens, labels), output_signature=(
            tf.TensorSpec((None,), tf.int64), tf.TensorSpec((None, 1), tf.float32)))
    ds = ds.bucket_by_sequence_length(
        lambda x, y: tf.shape(x)[0], bucket_boundaries=[3, 6],
        bucket_batch_sizes=[8, 8, 8])
    model = _tagger(units=1, activation="sigmoid")
    model.compile(loss="binary_crossentropy")
    batches = [(yb[..., 0], np.ones(yb.shape[:2]), xb != 0)
               for xb, yb in ds.as_numpy_iterator()]
    assert len({b[0].shape[1] for b in batches}) > 1  # padded lengths differ
    _check(model, ds, "sigmoid", batches, 1, lambda m: m.evaluate(ds, verbose=0))


def test_verify_sees_masks_and_class_weights_in_every_input_form():
    tf = pytest.importorskip("tensorflow")
    x = RNG.normal(size=(48, 4)).astype("float32")
    y = RNG.choice(K, size=48, p=[0.6, 0.3, 0.1])
    w = RNG.uniform(0.5, 2.0, size=48).astype("float32")
    class_weight = {1: 3.0, 2: 0.5}
    model = _classifier()
    model.compile(loss="sparse_categorical_crossentropy")
    kbi.adapt_output_bias(model, (x, y), class_weight=class_weight, verbose=0)
    folded = np.array([1.0, 3.0, 0.5])[y]
    forms = {
        "arrays": ((x, y), folded),
        "tf.data": (tf.data.Dataset.from_tensor_slices((x, y)).batch(16), folded),
        "tf.data weighted": (
            tf.data.Dataset.from_tensor_slices((x, y, w)).batch(16), folded * w),
        "PyDataset": (Batches(_in_batches(16, x[:40], y[:40])), folded[:40]),
    }
    for name, (data, weights) in forms.items():
        check = kbi.verify_loss_at_init(model, data, class_weight=class_weight)
        rows = len(weights)
        reference = model.evaluate(x[:rows], y[:rows], sample_weight=weights,
                                   batch_size=16, verbose=0)
        assert check.measured == pytest.approx(reference, rel=1e-5), name
    # A masked tagger: verify's measured loss is the expected loss of adapt.
    data = _in_batches(10, _sequences(), RNG.choice(K, size=(N, T)))
    tagger = _tagger()
    tagger.compile(loss="sparse_categorical_crossentropy")
    kbi.adapt_output_bias(tagger, Batches(data), verbose=0)
    check = kbi.verify_loss_at_init(tagger, Batches(data))
    assert check.ok and abs(check.gap) < 1e-5 * check.expected


class SubclassedTagger(keras.Model):
    def __init__(self):
        super().__init__()
        self.embed = keras.layers.Embedding(8, 4, mask_zero=True)
        self.out = keras.layers.Dense(K, activation="softmax",
                                      kernel_initializer="zeros", name="out")

    def call(self, tokens):
        return self.out(self.embed(tokens))


def _nested_tagger():
    tokens = keras.Input((None,), dtype="int32")
    inner = keras.Model(tokens, keras.layers.Embedding(8, 4, mask_zero=True)(tokens))
    outer = keras.Input((None,), dtype="int32")
    return keras.Model(outer, keras.layers.Dense(
        K, activation="softmax", kernel_initializer="zeros", name="out")(inner(outer)))


@pytest.mark.parametrize("make", [_nested_tagger, SubclassedTagger],
                         ids=["nested-model", "subclassed"])
def test_masks_made_out_of_the_symbolic_graphs_sight(make):
    # The symbolic outputs do not show these masks; Keras's loss sees them.
    x = _sequences()
    y = RNG.choice(K, size=(N, T), p=[0.6, 0.3, 0.1])
    model = make()
    model(x[:2])
    model.compile(loss="sparse_categorical_crossentropy")
    batches = [(y[s], np.ones_like(y[s], float), _valid(x[s]))
               for s in (slice(0, 32), slice(32, N))]
    init = kbi.adapt_output_bias(model, (x, y), verbose=0)
    assert init[next(iter(init))].expected_loss == pytest.approx(
        _numpy_minimum("softmax", batches, K)[1], rel=1e-6)
    assert init[next(iter(init))].expected_loss == pytest.approx(
        model.evaluate(x, y, verbose=0), rel=2e-5)
