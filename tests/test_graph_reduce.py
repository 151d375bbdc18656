"""Batches reduced inside the tf.data graph (`keras_biasinit.data.graph_reduce`)
give the NumPy path's numbers (to 1e-12 relative) and its errors.

The graph path is off by default (measured slower on 2 cores); every test
here turns it on, and compares with the same call on the NumPy path and with
NumPy on all the rows.
"""

import numpy as np
import pytest
import tensorflow as tf

import keras_biasinit as kbi
from keras_biasinit.data import graph_reduce
from keras_biasinit.data import read_batches
from keras_biasinit.initializers import _from_data
from keras_biasinit.stats import ClassCounts
from keras_biasinit.stats import Moments
from keras_biasinit.stats import Reducer
from keras_biasinit.stats import SecondMoment

RTOL = 1e-12
D = 150  # >= WIDE_ROW_VALUES


@pytest.fixture
def graph(monkeypatch):
    """Turns the graph path on; counts the batch states it merged."""
    monkeypatch.setattr(graph_reduce, "ENABLED", True)
    merged = []
    original = _from_data.merge_pass

    def counting(partials, state, reducer=None):
        def each():
            for arrays in partials:
                merged.append(int(arrays["rows"][0]))
                yield arrays

        return original(each(), state, reducer)

    monkeypatch.setattr(_from_data, "merge_pass", counting)
    return merged


def _numpy_path(fn):
    """`fn()` with the graph path off."""
    saved = graph_reduce.ENABLED
    graph_reduce.ENABLED = False
    try:
        return fn()
    finally:
        graph_reduce.ENABLED = saved


def _data(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.standard_t(3, size=(n, D)) * 4 + np.arange(D)).astype(np.float32)
    labels = (rng.random((n, D)) < np.linspace(0.05, 0.9, D)).astype(np.float32)
    w = rng.integers(0, 4, n) * 0.5
    return y, labels, w


def _pipeline(parts, batched):
    ds = tf.data.Dataset.from_tensor_slices(parts)
    return ds.batch(96) if batched else ds


def _close(a, b):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                               rtol=RTOL, atol=0)


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_mean_bias_equals_the_numpy_path_and_numpy(graph, batched, weighted):
    y, _, w = _data()
    parts = (y, y, w) if weighted else (y, y)
    ds = _pipeline(parts, batched)
    ours = kbi.MeanBias.from_dataset(ds, verbose=0)
    assert sum(graph) == y.shape[0]  # every row went through the graph path
    numpy_path = _numpy_path(lambda: kbi.MeanBias.from_dataset(ds, verbose=0))
    _close(ours.bias, numpy_path.bias)
    _close(ours.expected_loss, numpy_path.expected_loss)
    weights = w if weighted else np.ones(len(y))
    y64 = y.astype(np.float64)
    mean = (weights @ y64) / weights.sum()
    _close(ours.bias, mean)
    m2 = weights @ (y64 - mean) ** 2
    _close(ours.expected_loss, (m2 / len(y)).mean())  # Keras: divided by rows


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_sigmoid_priors_equal_the_numpy_path_and_numpy(graph, batched, weighted):
    _, labels, w = _data(seed=1)
    soft = labels * np.float32(0.75) + np.float32(0.125)  # soft labels in [0, 1]
    for target in (labels, soft):
        parts = (target, target, w) if weighted else (target, target)
        ds = _pipeline(parts, batched)
        graph.clear()
        ours = kbi.ClassPriorBias.from_dataset(ds, activation="sigmoid", verbose=0)
        assert sum(graph) == len(target)
        numpy_path = _numpy_path(lambda: kbi.ClassPriorBias.from_dataset(
            ds, activation="sigmoid", verbose=0))
        _close(ours.priors, numpy_path.priors)
        _close(ours.expected_loss, numpy_path.expected_loss)
        weights = w if weighted else np.ones(len(target))
        _close(ours.priors, (weights @ target.astype(np.float64)) / weights.sum())


@pytest.mark.parametrize("weighted", [False, True])
def test_he_scaled_second_moment_equals_numpy(graph, weighted):
    rng = np.random.default_rng(2)
    x = (rng.normal(size=(700, 16, 32)) * 3 + 1).astype(np.float32)
    w = rng.random(700)
    ds = _pipeline((x, np.zeros(700), w) if weighted else (x, np.zeros(700)), True)
    ours = kbi.HeScaled.from_dataset(ds, verbose=0, seed=1)
    assert sum(graph) == 700
    weights = w if weighted else np.ones(700)
    squares = (x.astype(np.float64) ** 2).reshape(700, -1).mean(axis=1)
    _close(ours.second_moment, (weights @ squares) / weights.sum())
    numpy_path = _numpy_path(lambda: kbi.HeScaled.from_dataset(ds, verbose=0, seed=1))
    _close(ours.second_moment, numpy_path.second_moment)


def test_plain_class_counts_of_label_vectors_and_ids(graph):
    _, labels, w = _data(seed=3)
    ds = _pipeline((labels, labels, w), True)
    reduction = graph_reduce.reduction_for(ClassCounts())
    batches = read_batches(ds, verbose=0, merge_batches=True, reduction=reduction)
    assert batches.reduced
    state = _from_data.merge_pass(batches, ClassCounts())
    expected = ClassCounts().update(labels, w)
    _close(state.counts, expected.counts)
    assert (state.rows, state.kind) == (expected.rows, "vectors")
    _close(state.weight, expected.weight)
    ids = tf.data.Dataset.from_tensor_slices(np.arange(500) % 7).batch(50)
    assert not read_batches(ids, verbose=0, merge_batches=True,
                            reduction=reduction).reduced  # ids: NumPy path


def test_only_wide_simple_rows_of_known_statistics_take_the_graph_path(graph):
    moments = graph_reduce.reduction_for(Moments())
    narrow = tf.TensorSpec([None, 4], tf.float32)
    wide = tf.TensorSpec([None, D], tf.float32)
    per_step = tf.TensorSpec([None, 10, D], tf.float32)
    assert moments.applies(wide, None, batched=True)
    assert moments.applies(tf.TensorSpec([D], tf.float32), None, batched=False)
    assert not moments.applies(narrow, None, batched=True)
    assert not moments.applies(per_step, None, batched=True)
    assert not moments.applies(tf.TensorSpec([None, None], tf.float32), None, True)
    assert not moments.applies(wide, tf.TensorSpec([None, 10]), batched=True)
    assert moments.applies(wide, tf.TensorSpec([None, 1]), batched=True)
    assert graph_reduce.reduction_for(SecondMoment()).applies(per_step, None, True)
    softmax = kbi.ClassPriorBias._recipe(activation="softmax").state()
    assert graph_reduce.reduction_for(softmax) is None  # ids or distributions
    sigmoid = kbi.ClassPriorBias._recipe(activation="sigmoid").state()
    assert graph_reduce.reduction_for(sigmoid).kind == "vectors"


def test_off_by_default():
    assert graph_reduce.reduction_for(Moments()) is None


def test_numpy_input_never_goes_through_the_graph(graph):
    y, _, _ = _data()
    kbi.MeanBias.from_dataset(y, verbose=0)
    assert graph == []


def test_zero_weight_batches_and_empty_batches(graph):
    y, _, w = _data(n=600, seed=4)
    w[:200] = 0.0  # the first batches weigh nothing
    ds = tf.data.Dataset.from_tensor_slices((y, y, w)).batch(100)
    ds = ds.concatenate(ds.take(1).map(lambda x, t, u: (x[:0], t[:0], u[:0])))
    ours = kbi.MeanBias.from_dataset(ds, verbose=0)
    numpy_path = _numpy_path(lambda: kbi.MeanBias.from_dataset(ds, verbose=0))
    _close(ours.bias, numpy_path.bias)
    _close(ours.expected_loss, numpy_path.expected_loss)
    zero = tf.data.Dataset.from_tensor_slices((y, y, 0.0 * w)).batch(100)
    with pytest.raises(ValueError, match="No data with positive weight"):
        kbi.MeanBias.from_dataset(zero, verbose=0)


def _messages(fn):
    """The ValueError messages of `fn()` on the graph path and the NumPy path."""
    with pytest.raises(ValueError) as graph_error:
        fn()
    with pytest.raises(ValueError) as numpy_error:
        _numpy_path(fn)
    return str(graph_error.value), str(numpy_error.value)


def _with_bad(value, column=7, row=250, batched=True, weights=None):
    y, labels, _ = _data(n=400, seed=5)
    y[row, column] = value
    labels[row, column] = value
    parts = (y, labels) if weights is None else (y, labels, weights)
    return _pipeline(parts, batched)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_values_name_their_batch(graph, value):
    ds = _with_bad(value)
    mean = lambda: kbi.MeanBias.from_dataset(ds, target=0, verbose=0)  # noqa: E731
    prior = lambda: kbi.ClassPriorBias.from_dataset(  # noqa: E731
        ds, activation="sigmoid", verbose=0)
    he = lambda: kbi.HeScaled.from_dataset(ds, verbose=0)  # noqa: E731
    for fn in (mean, prior, he):
        ours, numpy_path = _messages(fn)
        assert "NaN or inf" in ours and "NaN or inf" in numpy_path
        assert "batch 2 of the dataset" in ours  # row 250 of batches of 96
    ours, _ = _messages(lambda: kbi.MeanBias.from_dataset(
        _with_bad(value, batched=False), target=0, verbose=0))
    assert "examples 0 to 399 of the dataset" in ours


def test_weight_errors_read_as_on_the_numpy_path(graph):
    w = np.ones(400)
    for bad in (np.nan, np.inf, -1.0):
        w[300] = bad
        ds = _with_bad(0.5, weights=w)
        ours, numpy_path = _messages(
            lambda: kbi.MeanBias.from_dataset(ds, target=0, verbose=0))
        assert ours == numpy_path and "Sample weights" in ours
    ds = tf.data.Dataset.from_tensor_slices(_data(n=400)[0]).batch(96)
    ds = ds.map(lambda y: (y, y, tf.ones([5])))  # 5 weights for 96 rows
    ours, numpy_path = _messages(lambda: kbi.MeanBias.from_dataset(ds, verbose=0))
    assert ours == numpy_path and "shape" in ours


def test_range_width_and_overflow_errors_read_as_on_the_numpy_path(graph):
    ds = _with_bad(1.5)
    ours, numpy_path = _messages(lambda: kbi.ClassPriorBias.from_dataset(
        ds, activation="sigmoid", verbose=0))
    assert ours == numpy_path and "[0, 1]" in ours
    ds = _with_bad(0.5)
    ours, numpy_path = _messages(lambda: kbi.ClassPriorBias.from_dataset(
        ds, activation="sigmoid", num_classes=D - 1, verbose=0))
    assert ours == numpy_path and "num_classes" in ours
    huge = tf.data.Dataset.from_tensor_slices(np.full((300, D), 1e308)).batch(96)
    for fn in (lambda: kbi.MeanBias.from_dataset(huge, verbose=0),
               lambda: kbi.HeScaled.from_dataset(huge, verbose=0)):
        ours, numpy_path = _messages(fn)
        assert ours == numpy_path and "too large" in ours


def test_empty_data(graph):
    ds = tf.data.Dataset.from_tensor_slices(_data()[0]).batch(96).filter(
        lambda y: False)
    ours, numpy_path = _messages(lambda: kbi.MeanBias.from_dataset(ds, verbose=0))
    assert ours == numpy_path and "empty" in ours


class _Recording(Reducer):
    """A one-shard reducer that records what it is told."""

    def __init__(self):
        self.calls, self.aborted = 0, []

    def __call__(self, state):
        self.calls += 1
        return state

    def abort(self, error):
        self.aborted.append(error)


def test_a_failing_pass_is_reported_to_the_reducer(graph):
    reducer = _Recording()
    batches = read_batches(_with_bad(np.nan), target=0, verbose=0,
                           merge_batches=True,
                           reduction=graph_reduce.reduction_for(Moments()))
    with pytest.raises(ValueError, match="NaN or inf"):
        _from_data.merge_pass(batches, Moments(), reducer)
    assert len(reducer.aborted) == 1 and reducer.calls == 0
    good = read_batches(_with_bad(0.5), target=0, verbose=0, merge_batches=True,
                        reduction=graph_reduce.reduction_for(Moments()))
    state = _from_data.merge_pass(good, Moments(), reducer)
    assert reducer.calls == 1 and state.rows == 400
