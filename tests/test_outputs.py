"""Reading several outputs' targets in one pass (keras_biasinit.data.outputs)."""

import keras
import numpy as np
import pytest
from tests._tf import tf

from keras_biasinit.data.outputs import read_outputs

pytestmark = pytest.mark.keras

OUTPUTS = [("a", 0), ("b", 1)]


def _collect(source):
    steps = list(source)
    return [(np.concatenate([s[k][0] for s in steps]),
             None if steps[0][k][1] is None
             else np.concatenate([s[k][1] for s in steps])) for k in range(2)]


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(0)
    return (rng.normal(size=(50, 2)).astype("float32"), rng.integers(0, 3, 50),
            rng.normal(size=(50, 1)).astype("float32"),
            rng.uniform(size=50).astype("float32"))


def test_unbatched_tf_data_with_per_output_weights(arrays):
    x, a, b, w = arrays
    ds = tf.data.Dataset.from_tensor_slices((x, {"a": a, "b": b}, {"b": w}))
    (va, wa), (vb, wb) = _collect(read_outputs(ds, OUTPUTS, verbose=0))
    np.testing.assert_array_equal(va, a)
    np.testing.assert_array_equal(vb, b)
    assert wa is None  # no weights for 'a'
    np.testing.assert_allclose(wb, w)


def test_batched_list_targets_shared_weights_and_steps(arrays):
    x, a, b, w = arrays
    ds = tf.data.Dataset.from_tensor_slices((x, (a, b), w)).batch(16)
    (va, wa), (vb, _) = _collect(read_outputs(ds, OUTPUTS, steps=2, verbose=0))
    np.testing.assert_array_equal(va, a[:32])
    np.testing.assert_allclose(wa, w[:32])


def test_py_dataset_and_one_shot_generator(arrays):
    x, a, b, _ = arrays

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            s = slice(10 * i, 10 * i + 10)
            return x[s], [a[s], b[s]]

    (va, _), (vb, _) = _collect(read_outputs(Batches(), OUTPUTS, verbose=0))
    np.testing.assert_array_equal(va, a)
    gen = ((x[i:i + 25], {"a": a[i:i + 25], "b": b[i:i + 25]}) for i in (0, 25))
    source = read_outputs(gen, OUTPUTS, verbose=0)
    (va, _), _ = _collect(source)
    np.testing.assert_array_equal(va, a)
    with pytest.raises(ValueError, match="one-shot"):
        list(source)


@pytest.mark.parametrize("data, words", [
    (lambda x, a, b: (x, {"a": a}), "without the output 'b'"),
    (lambda x, a, b: (x, [a]), "1 items but the model has 2 outputs"),
    (lambda x, a, b: (x, a), "one target tensor"),
    (lambda x, a, b: x, "Unsupported data"),
    (lambda x, a, b: [x], r"must be `\(x, y\)`"),
])
def test_bad_structures(arrays, data, words):
    x, a, b, _ = arrays
    with pytest.raises((ValueError, TypeError), match=words):
        list(read_outputs(data(x, a, b), OUTPUTS, verbose=0))


def test_the_checks_of_the_reading_loop(arrays):
    x, a, b, _ = arrays
    ds = tf.data.Dataset.from_tensor_slices((x, (a, b))).repeat()
    with pytest.raises(ValueError, match="infinite.*`steps=`"):
        read_outputs(ds, OUTPUTS, verbose=0)
    with pytest.raises(ValueError, match="empty"):
        list(read_outputs(iter([]), OUTPUTS, verbose=0))
    shard = read_outputs([], OUTPUTS, verbose=0)
    shard.allow_empty = True  # one worker's shard may be empty
    assert list(shard) == []
    strings = tf.data.Dataset.from_tensor_slices((x, (a.astype(str), b)))
    with pytest.raises(TypeError, match="numeric"):
        read_outputs(strings, OUTPUTS, verbose=0)


def test_per_output_view_rereads_the_data(arrays):
    x, a, b, w = arrays
    source = read_outputs(tf.data.Dataset.from_tensor_slices((x, (a, b), w)).batch(16),
                          OUTPUTS, verbose=0)
    view = source.output(1)
    assert view.reiterable
    for _ in range(2):
        np.testing.assert_array_equal(np.concatenate([v for v, _ in view]), b)
        np.testing.assert_allclose(np.concatenate([w for _, w in view]), w)
    assert source.passes == 4
    one_shot = read_outputs(iter([(x, (a, b))]), OUTPUTS, verbose=0).output(0)
    assert not one_shot.reiterable
    list(one_shot)
    with pytest.raises(ValueError, match="one-shot"):
        list(one_shot)


def test_progress_counts_the_examples_of_unbatched_data(arrays, capsys):
    x, a, b, _ = arrays
    ds = tf.data.Dataset.from_tensor_slices((x, (a, b)))
    list(read_outputs(ds, OUTPUTS, verbose=2))
    assert "50/50" in capsys.readouterr().out
