"""The memory budget of the median and Huber passes, measured, not assumed.

`tracemalloc` traces NumPy's allocations: the peak of what the computation
allocates while it runs (its buffers, histograms, collected values and every
temporary) must stay within `memory_budget`. The batches are built before
tracing starts, as a data pipeline would hand them over.

Also: the order-preserving float keys the histograms are built on, and the
memory estimate that decides the in-memory path.
"""


import numpy as np
import pytest

from keras_biasinit.stats import huber_location
from keras_biasinit.stats import weighted_median
from keras_biasinit.stats._keys import from_keys
from keras_biasinit.stats._driver import is_reiterable
from keras_biasinit.stats._keys import to_keys
from keras_biasinit.stats.huber import in_memory_bytes as huber_bytes
from keras_biasinit.stats.median import in_memory_bytes as median_bytes
from tests.stats._batches import one_shot, split, traced_peak


STATS = {
    "median": lambda b, budget: weighted_median(b, memory_budget=budget),
    "huber": lambda b, budget: huber_location(b, delta=0.5, memory_budget=budget),
}


@pytest.mark.parametrize("stat", ["median", "huber"])
@pytest.mark.parametrize(
    "rows, columns, weighted, budget",
    [
        (100_000, 1, False, 128 * 2**10),  # 800 KB of data
        (100_000, 1, True, 2**20),
        (10_000, 8, True, 256 * 2**10),  # 640 KB of data
    ],
)
def test_traced_peak_within_budget(rng, stat, rows, columns, weighted, budget):
    y = rng.standard_t(3, size=(rows, columns)) + np.arange(columns)
    w = rng.random(rows) if weighted else None
    batches = split(y, w, size=2048)
    STATS[stat](batches, budget)  # imports and NumPy's one-time caches: not ours
    peak, result = traced_peak(lambda: STATS[stat](batches, budget))
    assert result.passes >= 2  # the data did not fit: the streaming path ran
    assert peak <= budget
    assert result.peak_bytes <= budget  # the computation's own accounting


@pytest.mark.parametrize("stat", ["median", "huber"])
@pytest.mark.parametrize("rows, columns, weighted",
                         [(30_000, 1, False), (30_000, 1, True), (3_000, 20, True)])
def test_in_memory_estimate_covers_thetraced_peak(
    rng, stat, rows, columns, weighted
):
    # The estimate decides whether data take the one-pass in-memory path; if
    # it were low, that path could exceed the budget.
    y = rng.normal(size=(rows, columns))
    w = rng.random(rows) if weighted else None
    estimate = (median_bytes if stat == "median" else huber_bytes)(
        rows, columns, weighted)
    peak, result = traced_peak(lambda: STATS[stat](split(y, w), estimate))
    assert result.passes == 1
    assert peak <= estimate


def test_one_shot_data_over_budget_fail_before_holding_them(rng):
    y = rng.normal(size=200_000)
    peak, _ = traced_peak(lambda: pytest.raises(
        ValueError, weighted_median, one_shot(y, size=4096), memory_budget=2**18))
    assert peak <= 2**18


def test_keys_preserve_order_and_round_trip(rng):
    tiny = np.finfo(np.float64).smallest_subnormal
    y = np.concatenate([
        rng.normal(size=1000) * 10.0 ** rng.integers(-300, 300, size=1000),
        [0.0, -0.0, tiny, -tiny, np.finfo(np.float64).max,
         -np.finfo(np.float64).max, 1e9, 1e9 + 1.2e-7, -1.0, 1.0],
    ])
    keys = to_keys(y)
    assert keys.dtype == np.uint64
    order = np.argsort(keys, kind="stable")
    assert np.all(np.diff(y[order]) >= 0)  # sorting keys sorts the values
    np.testing.assert_array_equal(from_keys(keys), y + 0.0)  # -0.0 -> 0.0
    assert to_keys(np.array([-0.0]))[0] == to_keys(np.array([0.0]))[0]


def test_reiterable_detection():
    assert is_reiterable([(np.zeros(3), None)])
    assert not is_reiterable(iter([(np.zeros(3), None)]))
    assert not is_reiterable(one_shot(np.zeros(3)))


def test_from_dataset_passes_the_budget_through(rng):
    import tensorflow as tf

    from keras_biasinit import HuberBias, MedianBias

    y = rng.normal(size=(30_000, 2)).astype(np.float32) * [1, 100]
    ds = tf.data.Dataset.from_tensor_slices((np.zeros(30_000), y)).batch(1000)
    median = MedianBias.from_dataset(ds, verbose=0, memory_budget=64 * 2**10)
    np.testing.assert_array_equal(median.bias, np.median(y.astype(np.float64), 0))
    huber = HuberBias.from_dataset(ds, delta=1.0, verbose=0, memory_budget=64 * 2**10)
    in_memory = HuberBias.from_dataset(ds, delta=1.0, verbose=0)
    np.testing.assert_allclose(huber.bias, in_memory.bias, rtol=1e-13)
    assert huber.expected_loss == pytest.approx(in_memory.expected_loss, rel=1e-12)
    with pytest.raises(ValueError, match="re-iterable"):
        MedianBias.from_dataset((b for b in np.array_split(y, 30)), verbose=0,
                                memory_budget=64 * 2**10)
