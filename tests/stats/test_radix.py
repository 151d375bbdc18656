"""Exact quantiles by radix select: float32 targets in 2 passes (16-bit digits).

References are independent: `np.median` / `np.quantile` of the float64 values,
and for integer weights `np.median` of the values repeated weight times.
"""

import numpy as np
import pytest

from keras_biasinit.stats import weighted_median
from keras_biasinit.stats import weighted_quantile
from keras_biasinit.stats._radix_state import new_histogram
from keras_biasinit.stats._budget import MemoryMeter
from tests.stats._batches import split
from tests.stats._batches import traced_peak
from tests.stats._shards import run_sharded

BUDGET = 24 * 2**20  # 16-bit digits for one column
N = 1_700_000  # 13.6 MB of float64: over the budget (about twice that in memory)


def _median(y, **kw):
    return weighted_median(split(y, kw.pop("w", None), size=8192),
                           memory_budget=BUDGET, **kw)


def _cases(rng):
    return {
        "normal": rng.normal(3, 2, N),
        "even count": rng.normal(size=N - 1)[:-1],
        "ties": rng.integers(-3, 4, N),
        "negative": -rng.exponential(size=N) - 5,
        "zeros of both signs": np.where(rng.random(N) < 0.5, -0.0, 0.0)
        + np.where(rng.random(N) < 0.3, rng.normal(size=N), 0.0),
        "denormals": rng.integers(-50, 60, N) * np.float32(1e-45),
        "all equal": np.full(N, 7.25),
        "bucket edge": np.r_[np.full(N // 2, 1.0), np.full(N // 2, 1.0 + 2.0**-7)],
    }


@pytest.fixture(scope="module")
def cases():
    rng = np.random.default_rng(5)
    return {k: np.asarray(v).astype(np.float32) for k, v in _cases(rng).items()}


@pytest.mark.parametrize("name", list(_cases(np.random.default_rng(0))))
def test_float32_median_is_exact_in_two_passes(cases, name):
    y = cases[name]
    result = _median(y)
    expected = np.median(y.astype(np.float64))
    assert result.median.tolist() == [expected]
    assert result.passes == (1 if np.ptp(y) == 0 else 2)  # min == max: solved
    mad = np.abs(y.astype(np.float64) - expected).mean()
    np.testing.assert_allclose(result.mean_absolute_deviation, [mad], rtol=1e-12,
                               atol=1e-300)


@pytest.mark.parametrize("q", [0.01, 0.25, 0.9, 0.999])
def test_float32_quantiles_equal_numpy(cases, q):
    y = cases["normal"]
    result = weighted_quantile(split(y, size=8192), q=q, memory_budget=BUDGET)
    expected = np.quantile(y.astype(np.float64), q, method="averaged_inverted_cdf")
    assert result.quantile.tolist() == [expected] and result.passes == 2


def test_integer_weights_equal_the_repeated_values(rng):
    y = rng.normal(size=N).astype(np.float32).round(2)
    w = rng.integers(0, 4, size=N).astype(float)
    result = _median(y, w=w)
    expanded = np.repeat(y.astype(np.float64), w.astype(int))
    assert result.median.tolist() == [np.median(expanded)] and result.passes == 2


def test_weighted_tie_on_a_bucket_edge_takes_the_midpoint():
    # Half the weight ends exactly at 2.0, the top of its pass-1 bin.
    y = np.tile(np.float32([1.0, 2.0, 7.0, 9.0]), N // 4)
    w = np.tile([1.0, 2.0, 0.5, 2.5], N // 4)
    assert _median(y, w=w).median.tolist() == [4.5]


def test_float64_targets_need_at_most_four_passes(rng):
    y = rng.normal(size=N) * 3 + 10
    result = _median(y)
    assert result.median.tolist() == [np.median(y)] and result.passes <= 4


def test_columns_resolve_together(rng):
    y = (rng.standard_t(3, size=(40_000, 20)) + np.arange(20)).astype(np.float32)
    result = weighted_median(split(y, size=4096), memory_budget=4 * 2**20)
    np.testing.assert_array_equal(result.median,
                                  np.median(y.astype(np.float64), axis=0))


def test_infinity_is_refused(cases):
    y = cases["normal"].copy()
    y[N - 5] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        _median(y)


def test_pass_one_histograms_merge_to_the_union(rng):
    y = rng.normal(size=(30_000, 3)).astype(np.float32)
    w = rng.random(30_000)
    meter = MemoryMeter(BUDGET)
    whole = new_histogram(3, meter, "median").update(y, w)
    left = new_histogram(3, meter, "median").update(y[:10_000], w[:10_000])
    right = new_histogram(3, meter, "median").update(y[10_000:], w[10_000:])
    merged = left.merge(right.from_arrays(right.to_arrays())).result()
    whole = whole.result()
    np.testing.assert_array_equal(merged.count, whole.count)
    np.testing.assert_allclose(merged.weights(), whole.weights(), rtol=1e-12)
    np.testing.assert_allclose(merged.total, whole.total, rtol=1e-12, atol=1e-9)


def test_traced_peak_within_budget(cases):
    batches = split(cases["normal"], size=8192)
    weighted_median(batches, memory_budget=BUDGET)  # one-time caches: not ours
    peak, result = traced_peak(lambda: weighted_median(batches, memory_budget=BUDGET))
    assert result.passes == 2 and peak <= BUDGET and result.peak_bytes <= BUDGET


def test_a_tie_resolved_early_is_kept_over_later_passes(rng):
    # 8 columns in 8 MiB: 11-bit digits, 3 passes; the value after the middle
    # one may be found in pass 2 (window B), and the later passes must keep it.
    # (Fewer bits would take 4 passes: wide targets sample rows instead, see
    # test_wide_select.py.)
    y = rng.standard_t(3, size=(80_000, 8)).astype(np.float32)
    result = weighted_median(split(y, size=2048), memory_budget=8 * 2**20)
    assert result.passes == 3
    np.testing.assert_array_equal(result.median,
                                  np.median(y.astype(np.float64), axis=0))


@pytest.mark.parametrize("weighted", [False, True])
def test_shards_through_a_reducer_equal_the_whole_exactly(rng, weighted):
    # 4 MiB: the radix passes (2 columns: 12-bit digits, 3 passes), merged
    # over three shards.
    y = np.column_stack([rng.standard_t(3, 300_001) * 4 + 100,
                         rng.integers(0, 7, 300_001)]).astype(np.float32)
    w = rng.integers(1, 4, len(y)) * 0.5 if weighted else None
    whole = weighted_median(split(y, w, size=16384), memory_budget=4 * 2**20)
    edges = [0, 97_000, 180_000, len(y)]
    shards = [split(y[a:b], None if w is None else w[a:b], size=16384)
              for a, b in zip(edges[:-1], edges[1:])]
    results, reducers = run_sharded(
        lambda b, r: weighted_median(b, memory_budget=4 * 2**20, reducer=r),
        shards)
    expanded = y.astype(np.float64) if w is None else np.repeat(
        y.astype(np.float64), (2 * w).astype(int), axis=0)
    assert whole.median.tolist() == np.median(expanded, axis=0).tolist()
    for result in results:
        assert not isinstance(result, Exception), result
        assert result.passes == whole.passes == 3
        assert result.median.tolist() == whole.median.tolist()
        np.testing.assert_allclose(result.mean_absolute_deviation,
                                   whole.mean_absolute_deviation, rtol=1e-12)
    assert all(r.merges == whole.passes + 1 for r in reducers)
