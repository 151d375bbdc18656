"""The Huber location from pass 1's radix bins: float32 targets in 2 passes.

The reference for the location is the in-memory exact solve on the same rows
(`memory_budget=2**40`), compared bit for bit, and that solve is itself
checked against SciPy in test_huber.py; psi's bounds are checked against psi
summed directly with NumPy, the windows' cost against the distinct values
NumPy finds in them.
"""

import numpy as np
import pytest

from keras_biasinit.stats import huber_location
from keras_biasinit.stats._budget import MemoryMeter
from keras_biasinit.stats._huber_radix import collect_cost
from keras_biasinit.stats._huber_radix import psi_bounds
from keras_biasinit.stats._huber_radix import radix_bins
from keras_biasinit.stats._huber_radix import radix_bracket
from keras_biasinit.stats._huber_search import windows
from keras_biasinit.stats._radix_state import new_histogram
from tests.stats._batches import split
from tests.stats._shards import run_sharded

BUDGET = 8 * 2**20  # 14-bit digits for one column, 12 for three
N = 40_000  # about 11 MB in memory: over the budget


def _in_memory(y, w, delta):
    return huber_location([(y, w)], delta=delta, memory_budget=2**40)


def _assert_same(result, y, w, delta):
    exact = _in_memory(y.astype(np.float64), w, delta)
    assert result.location.tolist() == exact.location.tolist()  # bit for bit
    np.testing.assert_allclose(result.mean_loss, exact.mean_loss, rtol=1e-12)
    assert result.rows == y.shape[0]


def _cases(rng):
    z, u = rng.normal(size=N), rng.random(N)
    return {
        "normal, outliers": (3 + 2 * z + np.where(u < 0.02, 40 + 100 * u, 0), 1.0),
        "heavy tails": (rng.standard_t(2, size=N) * 10, 1.5),
        "negative": (-rng.exponential(size=N) * 3 - 5, 1.0),
        "crosses zero": (0.2 + rng.normal(size=N) * 0.5, 0.3),
        "small delta": (rng.normal(size=N), 1e-3),
        "large delta": (rng.normal(size=N) * 5, 50.0),
    }


@pytest.fixture(scope="module")
def cases():
    rng = np.random.default_rng(17)
    return {k: (np.float32(y), d) for k, (y, d) in _cases(rng).items()}


@pytest.mark.parametrize("name", list(_cases(np.random.default_rng(0))))
@pytest.mark.parametrize("weighted", [False, True])
def test_float32_location_is_exact_in_two_passes(cases, name, weighted):
    y, delta = cases[name]
    w = np.random.default_rng(1).random(N) * 3 if weighted else None
    result = huber_location(split(y, w, size=4096), delta=delta,
                            memory_budget=BUDGET)
    assert result.passes == 2
    _assert_same(result, y, w, delta)


def test_several_columns_in_two_passes(rng):
    # (12-bit digits: bins 1/8 of a binade, narrower than 2 delta here)
    y = np.stack([rng.normal(size=N), 5 + rng.exponential(size=N) * 3,
                  -rng.standard_t(3, size=N)], axis=1).astype(np.float32)
    w = rng.integers(0, 4, size=N).astype(float)
    result = huber_location(split(y, w, size=4096), delta=2.0,
                            memory_budget=BUDGET)
    assert result.passes == 2
    _assert_same(result, y, w, 2.0)


def test_a_flat_psi_gives_the_midpoint_in_two_passes(rng):
    # Two equal-weight clusters more than 2 delta apart: psi is 0 between
    # them, and the location is (max(low) + min(high)) / 2, as in memory.
    low, high = rng.random(N // 2) * 0.5, 9.5 + rng.random(N // 2) * 0.5
    y = rng.permutation(np.concatenate([low, high])).astype(np.float32)
    result = huber_location(split(y, size=4096), delta=1.0, memory_budget=BUDGET)
    assert result.passes == 2
    _assert_same(result, y, None, 1.0)
    assert result.location[0] == (float(y[y < 5].max()) + float(y[y > 5].min())) / 2


@pytest.mark.parametrize("delta", [0.5, 0.7, 1.0])
def test_heavy_ties_stay_exact(rng, delta):
    # Integer values: psi may be 0 on a whole interval (then the midpoint);
    # a few more passes are allowed, a wrong number never.
    y = rng.integers(-3, 4, size=N).astype(np.float32)
    result = huber_location(split(y, size=4096), delta=delta, memory_budget=BUDGET)
    assert 2 <= result.passes <= 4
    _assert_same(result, y, None, delta)


@pytest.mark.parametrize("far", [[-1e16] * 3, [1e30, -1e30, 3e38]])
def test_far_outliers_do_not_blur_the_bracket(rng, far):
    # Their bins' sums (1e30) must not enter the sums near the bulk, where
    # their rounding would swamp psi and misplace the bracket (6 passes).
    y = np.r_[rng.normal(3.0, 1.0, N), far].astype(np.float32)
    result = huber_location(split(y, size=4096), delta=1.0, memory_budget=BUDGET)
    assert result.passes == 2
    _assert_same(result, y, None, 1.0)


def test_coarse_bins_whose_windows_do_not_fit_stay_exact(rng):
    # 4 columns in 1 MiB: 9-bit digits (a bin per binade), windows too large
    # to collect: the whole range is binned instead, as without the bins.
    y = (rng.normal(size=(20_000, 4)) * [1, 3, 10, 0.1] + [0, 5, -20, 1])
    y = y.astype(np.float32)
    result = huber_location(split(y, size=4096), delta=1.0, memory_budget=2**20)
    assert result.passes >= 3
    _assert_same(result, y, None, 1.0)


def test_float64_targets_stay_exact(rng):
    y = 3 + rng.normal(size=N)  # not float32: the windows hold float64 values
    result = huber_location(split(y, size=4096), delta=1.0, memory_budget=BUDGET)
    assert 2 <= result.passes <= 3
    _assert_same(result, y, None, 1.0)


def test_three_shards_merge_to_the_union_in_two_passes(rng):
    y = (3 + 2 * rng.normal(size=N)).astype(np.float32)
    w = rng.random(N)
    edges = [0, 9_000, 25_000, N]
    shards = [split(y[a:b], w[a:b], size=3001) for a, b in zip(edges, edges[1:])]
    results, reducers = run_sharded(
        lambda b, r: huber_location(b, delta=1.0, memory_budget=BUDGET, reducer=r),
        shards)
    for result in results:
        assert not isinstance(result, Exception), result
        assert result.passes == 2
        _assert_same(result, y, w, 1.0)
    assert all(r.merges == 3 for r in reducers)  # size, pass 1, pass 2


def _histogram(y, w=None):
    meter = MemoryMeter(BUDGET)
    state = new_histogram(1, meter, "test")
    state.update(y, w)
    return radix_bins(state.result(), 0)


def test_psi_bounds_hold_psi(rng):
    y = np.float32(np.r_[rng.normal(3, 2, 5000), rng.uniform(40, 140, 100),
                         -1e30, 1e30])
    w = rng.random(y.size)
    bins = _histogram(y, w)
    points = np.r_[np.linspace(-10, 150, 2001), 3.0 + rng.normal(size=500)]
    lower, upper, margin = psi_bounds(bins, 1.0, points)
    y64 = y.astype(np.float64)
    psi = np.array([w @ np.clip(p - y64, -1.0, 1.0) for p in points])
    assert np.all(lower <= psi + 1e-9) and np.all(psi <= upper + 1e-9)
    assert np.all(margin < 1e-8 * w.sum())  # next to psi's range, +-delta W
    near = np.abs(points - 3.0) < 2  # bins there are 1/64 wide: tight bounds
    assert np.all((upper - lower)[near] < 0.05 * w.sum())


def test_bracket_holds_the_root_and_is_narrow(rng):
    y = np.float32(rng.normal(3, 2, 20_000))
    bins = _histogram(y)
    low, high = radix_bracket(bins, 1.0, float(y.min()), float(y.max()))
    root = _in_memory(y.astype(np.float64), None, 1.0).location[0]
    assert low < root < high
    assert high - low < 5e-3  # far inside one bin (1/16 wide near 3)


def test_collect_cost_covers_the_distinct_values(rng):
    y = np.float32(np.r_[rng.normal(3, 2, 20_000), np.full(5000, 2.5)])
    bins = _histogram(y)
    for low, high in [(2.9, 3.1), (2.5, 2.5), (0.0, 5.0)]:
        wins = windows(low, high, 1.0)
        inside = np.zeros(y.size, bool)
        for s in (-1.0, 1.0):
            inside |= (y >= low + s - 1e-6) & (y <= high + s + 1e-6)
        distinct = np.unique(y[inside]).size
        assert distinct <= collect_cost(bins, wins) <= y.size
