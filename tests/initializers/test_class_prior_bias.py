"""ClassPriorBias: softmax(b) = class frequencies, sigmoid(b) = positive rates."""


import keras
import numpy as np
import pytest
from tests._tf import tf
from scipy import special
from scipy import stats

from keras_biasinit import ClassPriorBias

pytestmark = pytest.mark.keras  # runs under every backend (conftest.py)

Dataset = tf.data.Dataset


@pytest.fixture
def ids(rng):
    return rng.choice(4, size=300, p=[0.6, 0.25, 0.1, 0.05])


def from_data(data, **kwargs):
    return ClassPriorBias.from_dataset(data, verbose=0, **kwargs)


# ---------------------------------------------------------------- softmax


def test_softmax_of_bias_is_class_frequency(ids):
    freq = np.bincount(ids) / ids.size
    x = np.zeros((ids.size, 2))
    for data in (
        ids,
        ids[:, None],
        (x, ids),
        Dataset.from_tensor_slices((x, ids)),
        Dataset.from_tensor_slices((x, ids[:, None])).batch(64),
        np.eye(4)[ids],  # one-hot
        Dataset.from_tensor_slices(np.eye(4, dtype="float32")[ids]).batch(7),
    ):
        init = from_data(data)
        np.testing.assert_allclose(special.softmax(init.bias), freq, rtol=1e-12)
        np.testing.assert_allclose(init.priors, freq, rtol=1e-12)
        assert init.activation == "softmax"
        assert init.expected_loss == pytest.approx(stats.entropy(freq), rel=1e-12)


def test_soft_labels(rng):
    soft = rng.dirichlet([3.0, 1.0, 0.5], size=80)
    init = from_data(soft)
    freq = soft.mean(axis=0)
    np.testing.assert_allclose(special.softmax(init.bias), freq, rtol=1e-12)
    # Loss at init: the mean over rows of -sum_k y_k log F_k, which is H(F)
    # again, since F is the mean label vector.
    expected = float(keras.losses.CategoricalCrossentropy()(
        soft, np.broadcast_to(freq, soft.shape)))
    assert init.expected_loss == pytest.approx(expected, rel=1e-5)
    assert init.expected_loss == pytest.approx(stats.entropy(freq), rel=1e-12)


def test_sample_weights_weight_the_counts(ids, rng):
    w = rng.random(ids.size) * 3
    w[:20] = 0.0
    x = np.zeros((ids.size, 1))
    freq = np.array([w[ids == k].sum() for k in range(4)]) / w.sum()
    init = from_data(Dataset.from_tensor_slices((x, ids, w)).batch(50))
    np.testing.assert_allclose(special.softmax(init.bias), freq, rtol=1e-12)
    # Keras divides the weighted sum by the number of rows, not sum(w).
    expected = float(keras.losses.SparseCategoricalCrossentropy()(
        ids, np.broadcast_to(freq, (ids.size, 4)), sample_weight=w))
    assert init.expected_loss == pytest.approx(expected, rel=1e-5)
    assert init.expected_loss == pytest.approx(
        stats.entropy(freq) * w.sum() / ids.size, rel=1e-12)


def _keras_sparse_loss(y, bias, w=None):
    """Keras's own SparseCategoricalCrossentropy at constant logits = bias."""
    logits = np.broadcast_to(bias, np.shape(y) + (bias.shape[0],))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return float(loss(y, logits.astype("float32"), sample_weight=w))


def _weighted_freq(ids, w, num_classes):
    counts = np.bincount(ids.reshape(-1), weights=w.reshape(-1),
                         minlength=num_classes)
    return counts / counts.sum()


@pytest.mark.parametrize("shape", [(60, 5), (60, 5, 1), (60, 3, 4), (60, 1)])
@pytest.mark.parametrize("weighting", ["none", "per_example", "per_id"])
def test_integer_ids_of_any_rank_are_ids(rng, shape, weighting):
    # Per-step (n, T), (n, T, 1) and per-pixel (n, H, W) integer ids: every id
    # counts, weighted as Keras weights it, and the loss at the prior bias is
    # what Keras's SparseCategoricalCrossentropy reports on those logits.
    ids = rng.choice(4, size=shape, p=[0.5, 0.3, 0.15, 0.05])
    id_shape = shape[:-1] if shape[-1] == 1 and len(shape) > 2 else shape
    w = {"none": None, "per_example": rng.uniform(0.2, 2.0, size=shape[0]),
         "per_id": rng.uniform(0.0, 2.0, size=id_shape)}[weighting]
    # Keras broadcasts per-example weights given as (n, 1, ...), not (n,).
    keras_w = None if w is None else w.reshape(
        w.shape + (1,) * (len(id_shape) - w.ndim))
    full_w = np.ones(id_shape) if w is None else np.broadcast_to(keras_w, id_shape)
    freq = _weighted_freq(ids, full_w, 4)
    x = np.zeros((shape[0], 2))
    element = (x, ids) if w is None else (x, ids, w)
    for data in (element, Dataset.from_tensor_slices(element).batch(7),
                 Dataset.from_tensor_slices(element)):
        init = from_data(data, num_classes=4)
        np.testing.assert_allclose(init.priors, freq, rtol=1e-12)
        expected = _keras_sparse_loss(ids, init.bias, keras_w)
        assert init.expected_loss == pytest.approx(expected, rel=1e-5)


def test_per_step_ids_through_a_model_evaluate(rng):
    # A sequence model's loss at init, as Keras's own evaluate reports it, with
    # temporal sample weights (n, T) (e.g. a padding mask of 0/1).
    n, steps, classes = 40, 6, 3
    ids = rng.choice(classes, size=(n, steps), p=[0.7, 0.2, 0.1])
    w = (rng.random((n, steps)) > 0.2).astype("float32")
    x = rng.normal(size=(n, steps, 2)).astype("float32")
    init = from_data(Dataset.from_tensor_slices((x, ids, w)).batch(16))
    model = keras.Sequential([
        keras.Input((steps, 2)),
        keras.layers.Dense(classes, kernel_initializer="zeros",
                           bias_initializer=init),
    ])
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    measured = model.evaluate(x, ids, sample_weight=w, batch_size=n, verbose=0)
    assert init.expected_loss == pytest.approx(measured, rel=1e-5)
    np.testing.assert_allclose(init.priors, _weighted_freq(ids, w, classes),
                               rtol=1e-12)


def test_float_vectors_stay_vectors_and_ids_stay_ids_when_weighted():
    # The same labels as integer one-hot (ambiguous, refused), float one-hot
    # (vectors) and integer ids (n,) give one answer where they are allowed.
    ids = np.array([0, 1, 2, 2, 1, 2])
    by_ids = from_data(ids)
    by_vectors = from_data(np.eye(3)[ids])
    np.testing.assert_allclose(by_ids.bias, by_vectors.bias, rtol=1e-12)
    with pytest.raises(ValueError, match=r"ambiguous.*cast one-hot labels to float"):
        from_data(np.eye(3, dtype="int64")[ids])
    # (n, T, 1) is never one-hot: per-step ids whatever the values.
    per_step = np.eye(3, dtype="int64")[ids][:, :, None]
    init = from_data(per_step, num_classes=2)
    np.testing.assert_allclose(init.priors, [12 / 18, 6 / 18], rtol=1e-12)


def _padded_sequences(rng, pad):
    """Variable-length per-step ids (classes 1..3), `padded_batch`ed with `pad`."""
    seqs = [rng.choice([1, 2, 3], size=rng.integers(1, 9), p=[0.6, 0.3, 0.1])
            for _ in range(30)]
    ds = Dataset.from_generator(lambda: iter(seqs),
                                output_signature=tf.TensorSpec((None,), tf.int64))
    ds = ds.map(lambda y: (tf.zeros_like(y, tf.float32)[:, None], y))
    padded = ds.padded_batch(8, padding_values=(0.0, tf.constant(pad, tf.int64)))
    labels = np.concatenate([y for _, y in padded.unbatch().as_numpy_iterator()])
    return padded, np.concatenate(seqs), labels


def test_padded_batch_padding_counts_like_keras_without_a_mask(rng):
    # Padding ids are counted, exactly as Keras's loss counts them without a
    # mask: the prior bias is then the best constant for that loss.
    padded, real, with_padding = _padded_sequences(rng, pad=0)
    init = from_data(padded, num_classes=4)
    freq = np.bincount(with_padding, minlength=4) / with_padding.size
    np.testing.assert_allclose(init.priors, freq, rtol=1e-12)
    assert freq[0] > 0 and not (real == 0).any()  # class 0 is only padding
    # Keras's loss over every padded step (padding included) at the bias.
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    logits = np.broadcast_to(init.bias, with_padding.shape + (4,))
    assert init.expected_loss == pytest.approx(float(loss(with_padding, logits)),
                                               rel=1e-5)


def test_ignore_class_leaves_the_padding_out_as_keras_does(rng):
    # Classes 0..2, padded with -1, which Keras's loss leaves out.
    padded, real, with_padding = _padded_sequences(rng, pad=0)
    shifted = padded.map(lambda x, y: (x, y - 1))
    init = from_data(shifted, num_classes=3, ignore_class=-1)
    np.testing.assert_allclose(init.priors, np.bincount(real - 1) / real.size,
                               rtol=1e-12)
    # Keras's loss with ignore_class averages over the ids it keeps.
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                      ignore_class=-1)
    y = with_padding - 1
    keras_loss = float(loss(y, np.broadcast_to(init.bias, y.shape + (3,))))
    assert init.expected_loss == pytest.approx(keras_loss, rel=1e-5)
    with pytest.raises(ValueError, match=r"`ignore_class` is an integer class id"):
        from_data(np.array([0, 1]), activation="sigmoid", ignore_class=0)
    with pytest.raises(ValueError, match=r"`ignore_class` applies to class ids"):
        from_data(np.eye(3)[[0, 1, 2]], ignore_class=0)


def test_smoothing_is_a_pseudo_count():
    labels = np.array([0] * 6 + [1] * 3)
    init = from_data(labels, num_classes=3, smoothing=1.0)
    expected = np.array([7.0, 4.0, 1.0]) / 12.0
    np.testing.assert_allclose(special.softmax(init.bias), expected, rtol=1e-12)
    # The expected loss is that of the smoothed prediction on the real labels.
    loss = float(keras.losses.SparseCategoricalCrossentropy()(
        labels, np.broadcast_to(expected, (9, 3))))
    assert init.expected_loss == pytest.approx(loss, rel=1e-5)


def test_balanced_classes_start_at_log_m():
    init = from_data(np.arange(100) % 10)
    np.testing.assert_allclose(init.bias - init.bias.mean(), 0.0, atol=1e-12)
    assert init.expected_loss == pytest.approx(np.log(10), rel=1e-12)


# ---------------------------------------------------------------- sigmoid


def test_sigmoid_binary_positive_rate(rng):
    y = (rng.random(200) < 0.15).astype("float32")
    rate = y.astype("float64").mean()
    for data in (y, y[:, None], Dataset.from_tensor_slices((y, y)).batch(32)):
        init = from_data(data, activation="sigmoid")
        assert init.bias.shape == (1,)
        np.testing.assert_allclose(special.expit(init.bias), [rate], rtol=1e-12)
        assert init.expected_loss == pytest.approx(
            stats.entropy([rate, 1 - rate]), rel=1e-12)


def test_sigmoid_multi_label_weighted(rng):
    y = (rng.random((120, 3)) < [0.5, 0.2, 0.05]).astype("float32")
    w = rng.random(120)
    init = from_data((np.zeros(120), y, w), activation="sigmoid")
    rates = (w @ y) / w.sum()
    np.testing.assert_allclose(special.expit(init.bias), rates, rtol=1e-12)
    # Mean over outputs of the binary entropy, times sum(w)/rows (Keras's mean).
    mean_entropy = np.mean([stats.entropy([p, 1 - p]) for p in rates])
    assert init.expected_loss == pytest.approx(
        mean_entropy * w.sum() / 120, rel=1e-12)
    keras_loss = float(keras.losses.BinaryCrossentropy()(
        y, np.broadcast_to(rates, y.shape).astype("float32"), sample_weight=w))
    assert init.expected_loss == pytest.approx(keras_loss, rel=1e-4)


def test_sigmoid_smoothing_adds_to_positives_and_negatives():
    y = np.array([[1.0, 0.0]] * 4)  # output 0 always on, output 1 always off
    with pytest.raises(ValueError, match=r"output\(s\) \[1\] are always 0 and "
                       r"output\(s\) \[0\] are always 1.*`smoothing=`"):
        from_data(y, activation="sigmoid")
    init = from_data(y, activation="sigmoid", smoothing=1.0)
    np.testing.assert_allclose(special.expit(init.bias), [5 / 6, 1 / 6], rtol=1e-12)


# ---------------------------------------------------------------- numbers in


def test_constructor_normalises_counts():
    init = ClassPriorBias([90, 9, 1])
    np.testing.assert_allclose(init.bias, np.log([0.9, 0.09, 0.01]), rtol=1e-12)
    np.testing.assert_allclose(init.priors, [0.9, 0.09, 0.01], rtol=1e-12)
    assert init.expected_loss is None
    sig = ClassPriorBias([0.25, 0.5], activation="sigmoid")
    np.testing.assert_allclose(sig.bias, [np.log(1 / 3), 0.0], atol=1e-12)


@pytest.mark.float64
def test_call_emits_the_bias():
    init = ClassPriorBias([0.7, 0.2, 0.1])
    value = init(shape=(3,))
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(value),
                               np.log([0.7, 0.2, 0.1]), rtol=1e-6)
    value64 = init(shape=(3,), dtype="float64")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(value64),
                               np.log([0.7, 0.2, 0.1]), rtol=1e-15)
    with pytest.raises(ValueError, match=r"holds 3 values.*shape \(4,\).*must be 3"):
        init(shape=(4,))


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"priors": [0.5, 0.0, 0.5]}, r"prior must be positive.*smoothing"),
        ({"priors": [0.5, -0.1]}, r"prior must be positive"),
        ({"priors": [0.5, np.nan]}, r"finite numbers"),
        ({"priors": []}, r"must not be empty"),
        ({"priors": [[0.5, 0.5]]}, r"1-D list"),
        ({"priors": ["0.5", "0.5"]}, r"number or a flat list"),
        ({"priors": [True, False]}, r"number or a flat list"),
        ({"priors": None}, r"number or a flat list"),
        ({"priors": [[0.5], [0.2, 0.3]]}, r"number or a flat list"),
        ({"priors": [1.0]}, r"at least 2 class priors.*sigmoid"),
        ({"priors": [0.5, 1.0], "activation": "sigmoid"}, r"\(0, 1\)"),
        ({"priors": [0.5, 0.5], "activation": "relu"}, r"`activation` must be"),
        ({"priors": [0.5, 0.5], "expected_loss": -1.0}, r"`expected_loss` must be"),
        ({"priors": [0.5, 0.5], "expected_loss": "x"}, r"Received: expected_loss=.x.$"),
        ({"priors": [0.5, 0.5], "expected_loss": "0.3"}, r"`expected_loss` must be"),
    ],
)
def test_bad_numbers(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ClassPriorBias(**kwargs)


@pytest.mark.parametrize(
    "data, kwargs, match",
    [
        (np.array([0, 1, 1]), {"num_classes": 3},
         r"Class\(es\) \[2\] have zero frequency.*`smoothing=`"),
        (np.array([0, 1, 3]), {"num_classes": 3}, r"class id 3, outside \[0, 3\)"),
        (np.array([0, -1]), {}, r"class id -1"),
        (np.eye(3), {"num_classes": 4}, r"3 columns but num_classes=4"),
        (np.array([0, 0, 0]), {"num_classes": 1},
         r"only 1 class; a softmax needs at least 2"),
        (np.array([0.0, np.nan]), {}, r"NaN or inf"),
        (np.array([0.0, 2.0]), {"activation": "sigmoid"}, r"in \[0, 1\]"),
        (np.array([0, 1]), {"smoothing": -1.0}, r"`smoothing` must be"),
        (np.array([0, 1]), {"activation": "tanh"}, r"`activation` must be"),
        ((np.zeros(2), np.array([0, 1]), np.zeros(2)), {}, r"All sample weights are 0"),
        (np.array([], dtype=int), {}, r"The data is empty"),
        # Integer (n, T) ids are ids (see test_per_step_ids_...); the same
        # values as floats are label vectors whose rows do not sum to 1, and
        # the message says why that is ambiguous.
        (np.array([[0.0, 1, 1], [1, 0, 0]]), {},
         r"row 0 sums to 2.*whole numbers.*per-step class ids.*integer ids"),
        (np.array([[0, 1, 0], [1, 0, 0]]), {}, r"ambiguous.*cast one-hot labels"),
        (np.array([[0.5, 0.2], [0.3, 0.7]]), {}, r"must each sum to 1"),
    ],
)
def test_bad_data(data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        from_data(data, **kwargs)
