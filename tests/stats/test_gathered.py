"""Batches gathered into chunks: the same pass as batch by batch, errors on time.

The reference is a plain `PassState` fed the same batches one by one, and for
the counts NumPy's own `histogram` / `unique` of the rows.
"""

import math

import numpy as np
import pytest

from keras_biasinit.stats._budget import MemoryMeter
from keras_biasinit.stats._checks import as_columns
from keras_biasinit.stats._summary import Summary
from keras_biasinit.stats._gathered import GatheredPlan
from keras_biasinit.stats._keys import to_keys
from keras_biasinit.stats._pass_state import PassState
from keras_biasinit.stats._plan import COLLECT

BUDGET = 2**22  # chunks of 2048 rows for one column


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(3)
    y = np.round(rng.normal(size=20_000), 2)  # ties: collected values merge
    w = rng.random(y.size)
    return y, w


def _plan(y, w=None):
    plan = GatheredPlan(1, 64)
    keys = [int(k) for k in to_keys(np.array([-0.5, 0.0, 0.5, 1.0]))]
    plan.set(0, COLLECT, [(keys[0], keys[1]), (keys[2], keys[3])])
    plan.exact_sums = True
    first = Summary().update(as_columns(y), w)
    return plan, first


def _reused_buffer(y, size):
    """Batches that are one array, overwritten for each batch (as some readers do)."""
    buffer = np.empty(size)
    for start in range(0, y.size, size):
        part = y[start : start + size]
        buffer[: part.size] = part
        yield buffer[: part.size]


def test_gathered_pass_equals_the_batch_by_batch_pass(rows):
    y, w = rows
    plan, first = _plan(y, w)
    gathered = plan.new_state(first, MemoryMeter(BUDGET), "test")
    plain = PassState(plan, first, MemoryMeter(BUDGET), "test")
    assert gathered.rows > 300  # chunks hold several batches
    for start in range(0, y.size, 300):
        gathered.update(y[start : start + 300], w[start : start + 300])
        plain.update(y[start : start + 300], w[start : start + 300])
    got, want = gathered.result(), plain.result()
    np.testing.assert_array_equal(got.collected.keys, want.collected.keys)
    np.testing.assert_allclose(got.collected.weights, want.collected.weights,
                               rtol=1e-14)
    for k in range(5):  # the regions' exact sums: equal as exact sums
        assert (math.fsum(got.exact_region.levels(k, 0))
                == math.fsum(want.exact_region.levels(k, 0)))
    inside = ((y >= -0.5) & (y <= 0.0)) | ((y >= 0.5) & (y <= 1.0))
    assert got.collected.keys.size == np.unique(y[inside]).size
    np.testing.assert_allclose(got.region_weight[:, 0],
                               [w[y < -0.5].sum(), w[(y > 0) & (y < 0.5)].sum(),
                                w[y > 1.0].sum()], rtol=1e-12)


def test_a_reused_input_array_is_copied(rows):
    y, _ = rows
    plan, first = _plan(y)
    state = plan.new_state(first, MemoryMeter(BUDGET), "test")
    for batch in _reused_buffer(y, 500):
        state.update(batch)
    result = state.result()  # the data-changed check passes: the same rows
    inside = (y >= -0.5) & (y <= 0.0)
    assert result.collected.weights[: np.unique(y[inside]).size].sum() == (
        inside.sum())


def test_merge_and_arrays_carry_the_unread_rows(rows):
    y, _ = rows
    plan, first = _plan(y)
    a, b = (plan.new_state(first, MemoryMeter(BUDGET), "test") for _ in range(2))
    a.update(y[:7000])
    b.update(y[7000:])  # fewer rows than a chunk: all still gathered
    merged = a.merge(b.from_arrays(b.to_arrays()))
    assert merged.result().summary.rows == y.size


def test_a_bad_batch_fails_at_its_own_update(rows):
    y, _ = rows
    plan, first = _plan(y)
    state = plan.new_state(first, MemoryMeter(BUDGET), "test")
    state.update(y[:100])
    with pytest.raises(ValueError, match="NaN"):
        state.update(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="sample weights"):
        state.update(y[:3], np.ones(2))
