"""Exact weighted median, in memory and in bounded memory (several passes).

References are independent: `np.median` for unit weights, and for integer
weights `np.median` of the values repeated weight times (the same minimiser of
`sum w |y - b|`, midpoint rule included).
"""

import numpy as np
import pytest

from keras_biasinit.stats import weighted_median
from tests.stats._batches import TINY, Changing, one_shot, split

N = 20_001  # odd


def _data(rng):
    return {
        "normal": rng.normal(size=N),
        "even count": rng.normal(size=N - 1),
        "ties": rng.integers(-3, 4, size=N).astype(float),
        "negative": -rng.exponential(size=N) - 5,
        "huge offset": 1e9 + rng.normal(size=N) * 1e-3,
        "zero-inflated": np.where(rng.random(N) < 0.6, 0.0, rng.exponential(size=N)),
        "wide range": rng.standard_t(1, size=N) * 1e6,
    }


@pytest.fixture(scope="module")
def data():
    return _data(np.random.default_rng(7))


@pytest.mark.parametrize(
    "name",
    ["normal", "even count", "ties", "negative", "huge offset", "zero-inflated",
     "wide range"],
)
def test_multi_pass_equals_np_median(data, name):
    y = data[name]
    result = weighted_median(split(y), memory_budget=TINY)
    assert result.passes >= 2  # the data do not fit: the multi-pass path ran
    median = np.median(y)
    assert result.median.tolist() == [median]  # exact, not approximately
    np.testing.assert_allclose(result.mean_absolute_deviation,
                               [np.abs(y - median).mean()], rtol=1e-12)
    assert result.rows == y.size and result.weight == y.size


def test_in_memory_path_is_one_pass_and_exact(data):
    y = data["even count"]
    result = weighted_median(split(y))
    assert result.passes == 1
    assert result.median.tolist() == [np.median(y)]


def test_typical_data_need_three_passes(rng):
    y = rng.normal(size=200_000) * 3 + 10  # 1.6 MB of float64, budget 1 MiB
    result = weighted_median(split(y, size=8192), memory_budget=2**20)
    assert result.passes == 3
    assert result.median.tolist() == [np.median(y)]


def test_multiple_columns_of_different_scales(rng):
    y = np.stack([rng.normal(size=8000), 1e9 + rng.integers(0, 3, 8000),
                  rng.standard_t(2, size=8000) * 1e-6], axis=1)
    result = weighted_median(split(y), memory_budget=TINY)
    assert result.passes >= 2
    np.testing.assert_array_equal(result.median, np.median(y, axis=0))
    np.testing.assert_allclose(result.mean_absolute_deviation,
                               np.abs(y - np.median(y, axis=0)).mean(axis=0),
                               rtol=1e-12)


@pytest.mark.parametrize("budget", [TINY, 256 * 2**20])
def test_integer_weights_equal_the_repeated_values(rng, budget):
    y = rng.normal(size=12_000).round(2)  # ties too
    w = rng.integers(0, 4, size=y.size).astype(float)  # zeros: ignored rows
    result = weighted_median(split(y, w), memory_budget=budget)
    expanded = np.repeat(y, w.astype(int))
    assert result.median.tolist() == [np.median(expanded)]
    # Keras divides the weighted sum by the number of rows, zero weights included.
    mad = np.sum(w * np.abs(y - np.median(expanded))) / y.size
    np.testing.assert_allclose(result.mean_absolute_deviation, [mad], rtol=1e-12)
    assert result.weight == w.sum()


@pytest.mark.parametrize("budget", [TINY, 256 * 2**20])
def test_weighted_tie_takes_the_midpoint(budget):
    # Cumulative weight reaches exactly half at 2.0: minimisers are [2, 7].
    y = np.tile([1.0, 2.0, 7.0, 9.0], 3000)
    w = np.tile([1.0, 2.0, 0.5, 2.5], 3000)
    result = weighted_median(split(y, w), memory_budget=budget)
    assert result.median.tolist() == [4.5]


@pytest.mark.parametrize("budget", [TINY, 256 * 2**20])
@pytest.mark.parametrize("scale", [0.1, 0.3, 1 / 3, 7e-5, 1e6])
def test_scaling_all_weights_keeps_the_midpoint(budget, scale):
    # Scaling every weight changes no minimiser; the tie must survive the
    # rounding of the scaled cumulative sums (0.1 * 7 + 0.1 * 3 != 1.0 exactly).
    y = np.tile(np.r_[np.zeros(7), np.ones(3), np.full(6, 100.0), np.full(4, 200.0)],
                600)
    result = weighted_median(split(y, np.full(y.shape, scale)), memory_budget=budget)
    assert result.median.tolist() == [np.median(y)] == [50.5]


def test_one_shot_generator_over_budget_is_a_clear_error(rng):
    y = rng.normal(size=N)
    with pytest.raises(ValueError, match="re-iterable.*memory_budget"):
        weighted_median(one_shot(y), memory_budget=TINY)


def test_one_shot_generator_within_budget_works(rng):
    y = rng.normal(size=1000)
    result = weighted_median(one_shot(y))
    assert result.median.tolist() == [np.median(y)] and result.passes == 1


def test_sums_overflowing_float64_are_not_taken_for_changed_data(rng):
    # Weighted sums of values near the float64 limit overflow to inf in every
    # pass alike; the passes must still agree, and the median is exact.
    y = rng.uniform(1e307, 1.7e308, size=N)
    w = rng.integers(1, 4, size=N).astype(float)
    with np.errstate(over="ignore"):  # the loss sums overflow (honestly inf)
        result = weighted_median(split(y, w), memory_budget=TINY)
    assert result.passes > 1
    assert result.median.tolist() == [np.median(np.repeat(y, w.astype(int)))]


def test_data_changing_between_passes_is_an_error():
    with pytest.raises(ValueError, match="changed between passes"):
        weighted_median(Changing(N), memory_budget=TINY)


@pytest.mark.parametrize("budget", [0, -1, 1.5, True, "1GB"])
def test_bad_budget_names_the_argument(budget):
    with pytest.raises(ValueError, match="`memory_budget`.*Received"):
        weighted_median(split(np.arange(10.0)), memory_budget=budget)


def test_budget_too_small_for_many_columns(rng):
    y = rng.normal(size=(2000, 100))
    with pytest.raises(ValueError, match="too small for 100 target column"):
        weighted_median(split(y), memory_budget=TINY)


def test_empty_and_zero_weight_data_are_errors():
    with pytest.raises(ValueError, match="empty"):
        weighted_median([])
    with pytest.raises(ValueError, match="weights are 0"):
        weighted_median(split(np.arange(5.0), np.zeros(5)))
    with pytest.raises(ValueError, match="weights are 0"):
        weighted_median(split(np.arange(20_000.0), np.zeros(20_000)),
                        memory_budget=TINY)


def test_non_finite_targets_are_errors():
    y = np.arange(20_000.0)
    y[12_345] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        weighted_median(split(y), memory_budget=TINY)
