"""The reading room: any supported input -> NumPy (values, weights) batches."""

import re

import keras
import numpy as np
import pytest
from tests._tf import tf

from keras_biasinit.data import PASS_BATCH_SIZE
from keras_biasinit.data import read_batches

pytestmark = pytest.mark.keras  # runs under every backend (conftest.py)

Dataset = tf.data.Dataset


def read(data, **kwargs):
    """All batches of one pass, as lists of NumPy arrays."""
    return list(read_batches(data, verbose=0, **kwargs))


def rows(data, **kwargs):
    """The values and weights of one pass, concatenated."""
    batches = read(data, **kwargs)
    values = np.concatenate([v for v, _ in batches])
    weights = [w for _, w in batches]
    if all(w is None for w in weights):
        return values, None
    return values, np.concatenate(weights)


# ---------------------------------------------------------------- in memory


def test_array_is_one_batch():
    y = np.arange(10.0).reshape(5, 2)
    (values, weights), = read(y)
    np.testing.assert_array_equal(values, y)
    assert weights is None


def test_eager_tensor_and_array_like():
    class Series:  # anything with __array__ (e.g. a pandas Series) is an array
        def __init__(self, a):
            self.a = a

        def __array__(self, dtype=None, copy=None):
            return self.a

        def __iter__(self):  # pragma: no cover - must not be used
            raise AssertionError("an array-like must not be iterated per row")

    (values, _), = read(tf.constant([1, 2, 3]))
    np.testing.assert_array_equal(values, [1, 2, 3])
    (values, _), = read(Series(np.array([4.0, 5.0])))
    np.testing.assert_array_equal(values, [4.0, 5.0])


def test_tuple_gives_target_and_weights():
    x, y, w = np.zeros((4, 3)), np.array([1, 0, 1, 1]), np.array([1.0, 2, 3, 4])
    (values, weights), = read((x, y))
    np.testing.assert_array_equal(values, y)
    assert weights is None
    (values, weights), = read((x, y, w))
    np.testing.assert_array_equal(values, y)
    np.testing.assert_array_equal(weights, w)
    assert weights.dtype == np.float64


def test_tuple_of_lists_is_one_element_not_two_batches():
    # Regression: (x_list, y_list) used to be iterated as two batches of targets.
    values, _ = rows(([[1.0], [2.0]], [1.0, 5.0]))
    np.testing.assert_array_equal(values, [1.0, 5.0])


def test_tuple_with_nested_features():
    x = {"a": np.zeros((3, 2)), "b": [[1], [2], [3]]}
    values, _ = rows((x, np.array([7, 8, 9])))
    np.testing.assert_array_equal(values, [7, 8, 9])


def test_dict_needs_target_key():
    data = {"image": np.zeros((3, 2)), "label": np.array([2, 0, 1])}
    values, _ = rows(data, target="label")
    np.testing.assert_array_equal(values, [2, 0, 1])
    with pytest.raises(ValueError, match=r"keys \['image', 'label'\]; pass `target=`"):
        read(data)
    with pytest.raises(ValueError, match=r"'labels' is not in .*Pass one of them"):
        read(data, target="labels")


def test_target_and_weight_rule():
    x, y, w = np.array([1.0, 2, 3]), np.array([4.0, 5, 6]), np.array([0.0, 1, 2])
    # target=0 reads x; the weights still weight its rows (they belong to rows).
    values, weights = rows((x, y, w), target=0)
    np.testing.assert_array_equal(values, x)
    np.testing.assert_array_equal(weights, w)
    # target=2 / -1 reads the weights themselves, unweighted.
    for index in (2, -1):
        values, weights = rows((x, y, w), target=index)
        np.testing.assert_array_equal(values, w)
        assert weights is None
    # role="features" defaults to the first item, weighted.
    values, weights = rows((x, y, w), role="features")
    np.testing.assert_array_equal(values, x)
    np.testing.assert_array_equal(weights, w)


@pytest.mark.parametrize(
    "data, kwargs, match",
    [
        ((np.zeros(2), np.zeros(2)), {"target": 2}, r"`target=2` is out of range"),
        ((np.zeros(2), np.zeros(2)), {"target": "y"}, r"must be an int index"),
        (np.zeros(2), {"target": 1}, r"single tensor.*Leave it as None"),
        ((np.zeros(2),), {}, r"holds no target"),
    ],
)
def test_bad_target(data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        read(data, **kwargs)


def test_list_of_batches_and_generator():
    batches = [np.array([1, 2]), np.array([3]), (np.zeros(1), np.array([4]))]
    values, _ = rows(batches)
    np.testing.assert_array_equal(values, [1, 2, 3, 4])
    values, _ = rows(np.array([i, i]) for i in range(3))
    np.testing.assert_array_equal(values, [0, 0, 1, 1, 2, 2])
    # A list of numbers is a list of one-row batches: same rows.
    values, _ = rows([1.5, 2.5])
    np.testing.assert_array_equal(values, [1.5, 2.5])


def test_nested_list_of_numbers_is_rows_not_batches():
    # [[1, 2], [3, 4]] is two rows of two outputs (as np.asarray reads it), not
    # two batches of scalar rows, which would merge the outputs into one column.
    batches = read([[1.0, 2.0], [3.0, 4.0]])
    assert len(batches) == 1
    np.testing.assert_array_equal(batches[0][0], [[1.0, 2.0], [3.0, 4.0]])


def test_generator_of_python_lists_is_ambiguous():
    with pytest.raises(TypeError, match="Yield NumPy arrays"):
        read(iter([[1.0, 2.0], [3.0, 4.0]]))


def test_values_of_three_or_more_dims_are_rows_of_the_last_axis(rng):
    # (n, T, d) per-step targets: every step is a row of d columns, carrying
    # its example's weight (or its own, for (n, T) temporal weights).
    y = rng.normal(size=(5, 3, 2))
    w = rng.uniform(0.5, 2.0, size=5)
    values, weights = rows((np.zeros(5), y, w))
    np.testing.assert_array_equal(values, y.reshape(15, 2))
    np.testing.assert_array_equal(weights, np.repeat(w, 3))
    temporal = rng.uniform(0.5, 2.0, size=(5, 3))
    values, weights = rows((np.zeros(5), y, temporal))
    np.testing.assert_array_equal(weights, temporal.reshape(15))
    masks = rng.integers(0, 2, size=(4, 2, 3, 1))
    values, _ = rows(Dataset.from_tensor_slices(masks).batch(3))
    np.testing.assert_array_equal(values, masks.reshape(24, 1))
    with pytest.raises(ValueError, match=r"\(5,\) or \(5, 1\) or \(5, 3\)"):
        read((np.zeros(5), y, np.ones((5, 2))))


class _Rows(keras.utils.PyDataset):
    def __init__(self, num_batches):
        super().__init__()
        self._num_batches = num_batches

    @property
    def num_batches(self):
        return self._num_batches

    def __getitem__(self, index):
        return np.zeros(1), np.full(2, float(index))


def test_py_dataset_finite_and_infinite():
    values, _ = rows(_Rows(3))
    np.testing.assert_array_equal(values, [0, 0, 1, 1, 2, 2])
    with pytest.raises(ValueError, match="PyDataset is infinite.*`steps=`"):
        read(_Rows(None))
    values, _ = rows(_Rows(None), steps=2)
    np.testing.assert_array_equal(values, [0, 0, 1, 1])


def test_path_into_nested_elements_keeps_the_weights():
    y = {"out": np.array([1.0, 2.0, 3.0]), "aux": np.zeros(3)}
    w = np.array([1.0, 0.5, 2.0])
    for data in ((np.zeros(3), y, w),
                 Dataset.from_tensor_slices((np.zeros(3), y, w)).batch(2)):
        values, weights = rows(data, target=(1, "out"))
        np.testing.assert_array_equal(values, [1.0, 2.0, 3.0])
        np.testing.assert_array_equal(weights, w)
        nested = r"parts: \['aux', 'out'\].*target=\(1, 'aux'\)"
        with pytest.raises(ValueError, match=nested):
            read(data)
    nested_x = ({"pixels": np.ones((2, 3)), "meta": np.zeros(2)}, np.zeros(2))
    values, _ = rows(nested_x, role="features", target=(0, "pixels"))
    np.testing.assert_array_equal(values, np.ones((2, 3)))
    with pytest.raises(ValueError, match="features=\\(0, 'meta'\\)"):
        read(nested_x, role="features")


def test_dict_key_hint_names_the_likely_key():
    with pytest.raises(ValueError, match="e.g. `target='label'`"):
        read({"x": np.zeros(3), "label": np.zeros(3)})


def test_steps_counts_examples_before_rows_are_folded(rng):
    # steps=2 on (n, T, d) targets reads 2 examples (2 * T rows), as the same
    # arrays through from_tensor_slices do, not 2 time steps.
    y = rng.normal(size=(6, 3, 2))
    w = rng.uniform(0.5, 2.0, size=6)
    values, weights = rows((np.zeros(6), y, w), steps=2)
    np.testing.assert_array_equal(values, y[:2].reshape(6, 2))
    np.testing.assert_array_equal(weights, np.repeat(w[:2], 3))
    sliced, _ = rows(Dataset.from_tensor_slices((np.zeros(6), y, w)), steps=2)
    np.testing.assert_array_equal(sliced, values)


def test_generator_read_twice_is_a_clear_error():
    gen = (np.array([i]) for i in range(3))
    batches = read_batches(gen, verbose=0)
    assert not batches.reiterable
    assert len(list(batches)) == 3
    with pytest.raises(ValueError, match="one-shot iterator.*already read once"):
        list(batches)
    # A second call on the same, now exhausted, generator says what happened.
    with pytest.raises(ValueError, match="empty.*already consumed.*fresh one"):
        read(gen)


def test_reiterable_inputs_can_be_read_twice():
    for data in (np.array([1, 2]), [np.array([1]), np.array([2])],
                 Dataset.range(2).batch(1)):
        batches = read_batches(data, verbose=0)
        assert batches.reiterable
        first = [v.tolist() for v, _ in batches]
        assert first == [v.tolist() for v, _ in batches]


# ---------------------------------------------------------------- tf.data


def test_unbatched_dataset_is_batched_for_the_pass():
    n = 2 * PASS_BATCH_SIZE + 5
    y = np.arange(n)
    batches = read(Dataset.from_tensor_slices(y))
    # Never per element in Python: ceil(n / PASS_BATCH_SIZE) NumPy batches.
    assert [v.shape[0] for v, _ in batches] == [PASS_BATCH_SIZE] * 2 + [5]
    np.testing.assert_array_equal(np.concatenate([v for v, _ in batches]), y)


def test_batched_dataset_keeps_its_batches():
    y = np.arange(10.0).reshape(5, 2)
    batches = read(Dataset.from_tensor_slices(y).batch(2))
    assert [v.shape for v, _ in batches] == [(2, 2), (2, 2), (1, 2)]


def test_dataset_elements_with_weights_scalar_and_batched():
    x, y = np.zeros((6, 2)), np.arange(6.0)
    w = np.array([0.0, 1, 2, 3, 4, 5])
    for ds in (Dataset.from_tensor_slices((x, y, w)),
               Dataset.from_tensor_slices((x, y, w)).batch(4),
               Dataset.from_tensor_slices((x, y, w[:, None])).batch(4)):
        values, weights = rows(ds)
        np.testing.assert_array_equal(values, y)
        np.testing.assert_array_equal(weights, w)


def test_dataset_dict_elements():
    ds = Dataset.from_tensor_slices({"f": np.zeros((5, 2)), "label": np.arange(5)})
    values, _ = rows(ds, target="label")
    np.testing.assert_array_equal(values, np.arange(5))
    with pytest.raises(ValueError, match=r"keys \['f', 'label'\]; pass `target=`"):
        read(ds)
    with pytest.raises(ValueError, match=r"'y' is not in"):
        read(ds, target="y")


def test_drop_remainder_then_map_is_detected_as_batched():
    y = np.arange(12.0)
    ds = Dataset.from_tensor_slices(y).batch(4, drop_remainder=True)
    assert ds.element_spec.shape == (4,)  # fixed leading dim, like a 4-wide row
    batches = read(ds.map(lambda v: v * 2).prefetch(1))
    assert [v.shape for v, _ in batches] == [(4,)] * 3
    np.testing.assert_array_equal(np.concatenate([v for v, _ in batches]), 2 * y)


def test_fixed_width_unbatched_examples_are_detected_as_unbatched():
    y = np.arange(12.0).reshape(4, 3)
    ds = Dataset.from_tensor_slices(y).shuffle(4, seed=1).skip(0).take(4).cache()
    values, _ = rows(ds)
    assert values.shape == (4, 3)
    np.testing.assert_array_equal(np.sort(values, axis=0), y)


def test_unbatch_batch_chains():
    y = np.arange(8.0).reshape(4, 2)
    ds = Dataset.from_tensor_slices(y).batch(2, drop_remainder=True).unbatch()
    assert rows(ds)[0].shape == (4, 2)
    rebatched = Dataset.from_tensor_slices(y).batch(4, drop_remainder=True).rebatch(2)
    assert [v.shape for v, _ in read(rebatched)] == [(2, 2), (2, 2)]


@pytest.mark.parametrize(
    "make",
    [
        lambda y: Dataset.from_tensors(y),
        lambda y: Dataset.from_generator(
            lambda: iter([y]), output_signature=tf.TensorSpec(y.shape, tf.float64)
        ),
        lambda y: Dataset.from_generator(  # unknown rank: could be either
            lambda: iter([y]), output_types=tf.float64
        ),
        lambda y: Dataset.sample_from_datasets(
            [Dataset.from_tensors(y), Dataset.from_tensors(y)], seed=1
        ),
    ],
    ids=["from_tensors", "from_generator", "unknown_rank", "sample_from_datasets"],
)
def test_ambiguous_pipeline_needs_batched(make):
    y = np.arange(6.0).reshape(3, 2)
    ds = make(y)
    with pytest.raises(ValueError,
                       match=r"Cannot tell.*`batched=True`.*`batched=False`"):
        read(ds)
    values, _ = rows(ds, batched=True)
    assert values.shape[1:] == (2,)


def test_batched_override():
    y = np.arange(6.0).reshape(3, 2)
    # As batches: one batch of 3 scalar rows. As examples: one row of 3 columns.
    assert rows(Dataset.from_tensors(y[:, 0]), batched=True)[0].shape == (3,)
    assert rows(Dataset.from_tensors(y[:, 0]), batched=False)[0].shape == (1, 3)
    # The override wins over detection, too: each 2-wide slice is then a batch
    # of 2 rows (the caller said so).
    assert rows(Dataset.from_tensor_slices(y), batched=True)[0].shape == (6,)


def test_interleave_and_flat_map_are_followed(tmp_path):
    path = str(tmp_path / "rows.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for i in range(5):
            feature = tf.train.Feature(float_list=tf.train.FloatList(value=[i, -i]))
            features = tf.train.Features(feature={"y": feature})
            example = tf.train.Example(features=features)
            writer.write(example.SerializeToString())
    spec = {"y": tf.io.FixedLenFeature([2], tf.float32)}
    files = Dataset.from_tensor_slices([path, path])
    per_example = files.interleave(
        lambda f: tf.data.TFRecordDataset(f).map(
            lambda s: tf.io.parse_single_example(s, spec)["y"]),
        num_parallel_calls=2,
    )
    values, _ = rows(per_example)
    assert values.shape == (10, 2)
    np.testing.assert_array_equal(np.sort(values[:, 0]), np.repeat(np.arange(5.0), 2))
    per_batch = files.flat_map(
        lambda f: tf.data.TFRecordDataset(f).batch(5, drop_remainder=True).map(
            lambda s: tf.io.parse_example(s, spec)["y"]))
    assert [v.shape for v, _ in read(per_batch)] == [(5, 2), (5, 2)]


def test_zip_is_followed_when_inputs_agree():
    x, y = np.zeros((4, 3)), np.arange(8.0).reshape(4, 2)
    zipped = Dataset.zip(Dataset.from_tensor_slices(x), Dataset.from_tensor_slices(y))
    assert rows(zipped)[0].shape == (4, 2)
    mixed = Dataset.zip(
        Dataset.from_tensor_slices(x).batch(2, drop_remainder=True),
        Dataset.from_tensor_slices(y).batch(2, drop_remainder=True).unbatch().batch(
            2, drop_remainder=True),
    )
    assert [v.shape for v, _ in read(mixed)] == [(2, 2), (2, 2)]


# ---------------------------------------------------------------- steps


def test_steps_counts_batches_examples_or_rows():
    y = np.arange(10)
    assert rows(Dataset.from_tensor_slices(y).batch(3), steps=2)[0].tolist() == [
        0, 1, 2, 3, 4, 5]
    assert rows(Dataset.from_tensor_slices(y), steps=4)[0].tolist() == [0, 1, 2, 3]
    assert rows(y, steps=3)[0].tolist() == [0, 1, 2]
    assert rows([y[:2], y[2:4], y[4:]], steps=2)[0].tolist() == [0, 1, 2, 3]
    assert rows((np.array([i]) for i in range(5)), steps=2)[0].tolist() == [0, 1]


def test_infinite_dataset_needs_steps():
    ds = Dataset.from_tensor_slices(np.arange(3)).repeat()
    with pytest.raises(ValueError, match=r"infinite.*Pass `steps=`"):
        read(ds)
    values, _ = rows(ds, steps=7)
    assert values.tolist() == [0, 1, 2, 0, 1, 2, 0]
    values, _ = rows(ds.batch(2), steps=3)
    assert values.tolist() == [0, 1, 2, 0, 1, 2]


@pytest.mark.parametrize("steps", [0, -1, 1.5, True, "2"])
def test_bad_steps(steps):
    with pytest.raises(ValueError, match=r"`steps` must be a positive integer"):
        read(np.arange(3), steps=steps)


# ---------------------------------------------------------------- verbose


def test_verbose_shows_a_progbar(capsys):
    list(read_batches(Dataset.range(10).batch(3), verbose=1))
    out = capsys.readouterr().out
    assert "4/4" in out
    list(read_batches(Dataset.range(10).batch(3), verbose=0))
    assert capsys.readouterr().out == ""


def test_verbose_with_unknown_cardinality(capsys):
    ds = Dataset.range(10).filter(lambda v: v > 2).batch(3)
    assert int(ds.cardinality()) == tf.data.UNKNOWN_CARDINALITY
    list(read_batches(ds, verbose=1))
    out = capsys.readouterr().out
    assert "3/Unknown" in out and out.endswith("\n")
    list(read_batches((np.arange(2) for _ in range(4)), verbose="auto"))
    assert "4/Unknown" in capsys.readouterr().out


def _printed(capsys):
    """What was printed, without the bar's colour codes."""
    return re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)


def _pass_lines(out):
    """The final state of each printed line (a live bar rewrites its line)."""
    return [line.split("\r")[-1].strip() for line in out.strip().split("\n")]


@pytest.mark.parametrize(
    "make, total, unit",
    [
        (lambda: np.arange(10), 10, "example"),
        (lambda: Dataset.range(10), 10, "example"),  # unbatched: its examples
        (lambda: Dataset.range(200).batch(2), 100, "batch"),  # merged, still 100
        (lambda: [np.arange(3)] * 4, 4, "batch"),
    ],
    ids=["array", "unbatched", "batched_merged", "list_of_batches"],
)
def test_progress_counts_the_inputs_own_batches_or_examples(capsys, make, total,
                                                            unit):
    # The bar counts what the user knows, against its known total, also when
    # the pass merges the input's small batches (100 batches of 2 rows are
    # read as one merged batch here).
    for merge in (False, True):
        list(read_batches(make(), verbose=1, merge_batches=merge))
        (line,) = _pass_lines(_printed(capsys))
        assert line.startswith(f"{total}/{total} ") and line.endswith(f"/{unit}")
        # verbose=2: one line per pass, as fit prints one per epoch.
        list(read_batches(make(), verbose=2, merge_batches=merge))
        assert re.fullmatch(rf"{total}/{total} - \d+s - \d+[mu]?s/{unit}\n",
                            _printed(capsys))
        list(read_batches(make(), verbose=0, merge_batches=merge))
        assert _printed(capsys) == ""


def test_verbose_auto_is_silent_for_an_array_in_memory(capsys):
    for data in (np.arange(10), (np.zeros((3, 2)), np.arange(3)),
                 {"label": np.arange(3)}):
        list(read_batches(data, target="label" if isinstance(data, dict) else None))
        assert _printed(capsys) == ""
    list(read_batches(Dataset.range(10).batch(5)))  # streamed: a bar
    assert "2/2" in _printed(capsys)


def test_progress_with_unknown_cardinality_at_every_verbose(capsys):
    batched = Dataset.range(10).filter(lambda v: v > 2).batch(3)
    unbatched = Dataset.range(10).filter(lambda u: u > 2)
    for ds, count, unit in ((batched, 3, "batch"), (unbatched, 7, "example")):
        list(read_batches(ds, verbose=1, merge_batches=True))
        assert _pass_lines(_printed(capsys))[-1].startswith(f"{count}/Unknown")
        list(read_batches(ds, verbose=2, merge_batches=True))
        # Keras prints nothing at verbose=2 without a total: at the end of the
        # pass it is known.
        assert re.fullmatch(rf"{count}/{count} - \d+s - \d+[mu]?s/{unit}\n",
                            _printed(capsys))


def test_each_pass_after_the_first_is_labelled(capsys):
    batches = read_batches(Dataset.range(6).batch(2), verbose=2)
    for _ in range(3):
        list(batches)
    assert batches.passes == 3
    lines = _pass_lines(_printed(capsys))
    assert lines[0].startswith("3/3 - ")
    assert lines[1] == "Pass 2" and lines[2].startswith("3/3 - ")
    assert lines[3] == "Pass 3" and lines[4].startswith("3/3 - ")


def test_bad_verbose_and_role():
    with pytest.raises(ValueError, match=r"`verbose` must be.*verbose=3"):
        read_batches(np.arange(3), verbose=3)
    with pytest.raises(ValueError, match=r"`role` must be"):
        read_batches(np.arange(3), role="labels")


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "data", [np.array([]), np.zeros((0, 3)), [], Dataset.range(0)],
    ids=["array", "matrix", "list", "dataset"],
)
def test_empty_data(data):
    with pytest.raises(ValueError, match="The data is empty"):
        read(data)


def test_empty_batches_are_skipped_not_counted():
    values, _ = rows([np.array([]), np.array([1.0]), np.zeros(0)])
    assert values.tolist() == [1.0]


@pytest.mark.parametrize("data", [3, "labels.csv", b"x", None, object()])
def test_unsupported_input_type(data):
    with pytest.raises(TypeError, match=r"Unsupported input.*Expected a tf.data"):
        read(data)


def test_unsupported_items_and_values():
    with pytest.raises(TypeError, match=r"Each item of an iterable must be a batch"):
        read([np.array([1]), "two"])
    with pytest.raises(TypeError, match=r"Each item.*Dataset"):
        read([Dataset.range(3)])
    with pytest.raises(TypeError, match=r"Targets must be numeric.*StringLookup"):
        read(np.array(["cat", "dog"]))
    with pytest.raises(TypeError, match=r"Targets must be numeric"):
        read(Dataset.from_tensor_slices(["cat", "dog"]))
    with pytest.raises(TypeError, match=r"Ragged.*to_tensor"):
        read(tf.ragged.constant([[1], [2, 3]]))
    ragged = Dataset.from_tensor_slices(tf.ragged.constant([[1], [2, 3]])).batch(2)
    with pytest.raises(TypeError, match=r"dense tensor.*to_tensor"):
        read(ragged)


@pytest.mark.parametrize(
    "weights, match",
    [
        (np.array([1.0, -1.0, 1.0]), "non-negative; found negative"),
        (np.array([1.0, np.nan, 1.0]), "found NaN/inf"),
        (np.array([1.0, 1.0]), r"shape \(3,\) or \(3, 1\).*Received shape \(2,\)"),
    ],
)
def test_bad_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        read((np.zeros(3), np.zeros(3), weights))
