"""`read_batches(..., merge_batches=True)`: the same rows in fewer, bigger batches.

The bias initializers read tf.data pipelines this way for speed (issue 5: the
pass must cost about one bare iteration of the pipeline); this checks that the
merging changes nothing but the batch boundaries.
"""

import numpy as np
from tests._tf import tf

from keras_biasinit.data import PASS_BATCH_BYTES
from keras_biasinit.data import PASS_BATCH_SIZE
from keras_biasinit.data import read_batches


def _read(ds, **kwargs):
    return list(read_batches(ds, verbose=0, merge_batches=True, **kwargs))


def test_small_batches_are_merged_in_order():
    y = np.arange(50_000, dtype=np.int32)
    batches = _read(tf.data.Dataset.from_tensor_slices(y).batch(1000))
    assert len(batches) == 1  # 200 KB of int32: one merged batch
    np.testing.assert_array_equal(batches[0][0], y)


def test_merged_batches_have_about_the_byte_budget():
    y = np.zeros((300_000, 8), np.float32)  # 32 bytes a row
    batches = _read(tf.data.Dataset.from_tensor_slices(y).batch(500))
    sizes = [v.shape[0] for v, _ in batches]
    assert sizes[0] == min(2**16, PASS_BATCH_BYTES // 32) and sum(sizes) == 300_000


def test_weights_stay_aligned_with_their_rows():
    y = np.arange(20_000.0)
    w = (np.arange(20_000) % 7).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices((np.zeros(20_000), y, w)).batch(999)
    batches = _read(ds)
    values = np.concatenate([v for v, _ in batches])
    weights = np.concatenate([u for _, u in batches])
    np.testing.assert_array_equal(values, y)
    np.testing.assert_array_equal(weights, w)


def test_wide_rows_and_unbatched_data():
    wide = np.zeros((10, 300_000), np.float32)  # 1.2 MB a row: nothing to merge
    batches = _read(tf.data.Dataset.from_tensor_slices(wide).batch(4))
    assert [v.shape[0] for v, _ in batches] == [4, 4, 2]
    y = np.arange(3 * PASS_BATCH_SIZE)
    batches = _read(tf.data.Dataset.from_tensor_slices(y))  # unbatched
    assert len(batches) == 1 and batches[0][0].tolist() == y.tolist()


def test_without_merging_the_pipeline_batches_are_kept():
    y = np.arange(5000)
    batches = list(read_batches(tf.data.Dataset.from_tensor_slices(y).batch(1000),
                                verbose=0))
    assert [v.shape[0] for v, _ in batches] == [1000] * 5


def test_wide_bare_batches_are_read_as_the_pipeline_gives_them():
    # Batches that are the target itself are read from the user's dataset as
    # it is (no new stage: tf.data would rewrite the whole pipeline's graph);
    # `steps` is counted in Python, and an endless pipeline stops there.
    y = np.arange(20 * 600, dtype=np.float32).reshape(20, 600)
    ds = tf.data.Dataset.from_tensor_slices(y).batch(6)
    batches = _read(ds, steps=2)
    assert [v.shape[0] for v, _ in batches] == [6, 6]
    np.testing.assert_array_equal(np.concatenate([v for v, _ in batches]), y[:12])
    batches = _read(ds.repeat(), steps=5)
    np.testing.assert_array_equal(np.concatenate([v for v, _ in batches]),
                                  np.concatenate([y, y[:6]]))  # 6, 6, 6, 2, 6
    source = read_batches(ds, verbose=0, merge_batches=True)
    assert source.total == 4 and [len(v) for v, _ in source] == [6, 6, 6, 2]
