"""Exact quantiles of wide targets in 2 passes: a row sample, then a bracket.

Over `memory_budget`, 20 columns in 2 MiB do not get 16-bit radix digits, so
pass 1 samples rows (`_wide_first`) and pass 2 collects each column's bracket
(`_bracket`, `_wide_select`). References are independent: `np.median` /
`np.quantile(method="averaged_inverted_cdf")` of the float64 values, and for
integer weights the values repeated weight times.
"""

import numpy as np
import pytest

from keras_biasinit.stats import weighted_median
from keras_biasinit.stats import weighted_quantile
from keras_biasinit.stats import _wide_select
from keras_biasinit.stats._budget import MemoryMeter
from keras_biasinit.stats._wide_first import WideFirst
from keras_biasinit.stats._wide_first import new_first_state
from tests.stats._batches import split
from tests.stats._batches import traced_peak
from tests.stats._shards import run_sharded

BUDGET = 2 * 2**20
ROWS, COLUMNS = 30_000, 20  # 4.8 MB of float64: over the budget


@pytest.fixture(scope="module")
def wide():
    rng = np.random.default_rng(11)
    y = rng.standard_t(3, size=(ROWS, COLUMNS)) + np.arange(COLUMNS) * 100.0
    return y.astype(np.float32)


def _reference(y, q):
    y = y.astype(np.float64)
    if q == 0.5:
        return np.median(y, axis=0)
    return np.quantile(y, q, axis=0, method="averaged_inverted_cdf")


def _in_three_shards(y, w=None):
    """Each shard's median of `y` read as 3 shards merged at every pass."""
    shards = [split(y[a:b], None if w is None else w[a:b], size=700)
              for a, b in ((0, 9000), (9000, 16000), (16000, ROWS))]
    results, _ = run_sharded(
        lambda b, r: weighted_median(b, memory_budget=BUDGET, reducer=r), shards)
    for result in results:
        assert not isinstance(result, Exception), result
    return results


def test_the_wide_path_is_the_one_tested():
    state = new_first_state(COLUMNS, MemoryMeter(BUDGET), "median")
    assert isinstance(state, WideFirst)
    assert not isinstance(new_first_state(1, MemoryMeter(BUDGET), "median"),
                          WideFirst)  # one column: the 2-pass radix histogram


@pytest.mark.parametrize("q", [0.5, 0.1, 0.9, 0.999])
def test_quantiles_equal_numpy_in_two_passes(wide, q):
    result = weighted_quantile(split(wide, size=1000), q=q, memory_budget=BUDGET)
    expected = _reference(wide, q)
    np.testing.assert_array_equal(result.quantile, expected)
    assert result.passes == 2
    assert result.peak_bytes <= BUDGET
    y = wide.astype(np.float64)
    np.testing.assert_allclose(result.mean_pinball_loss, np.mean(
        np.maximum(q * (y - expected), (q - 1) * (y - expected)), axis=0),
        rtol=1e-12)


def test_odd_rows_float64_values_and_ties(wide):
    rng = np.random.default_rng(3)
    y = wide[:-1].astype(np.float64) + rng.normal(size=(ROWS - 1, COLUMNS)) * 1e-3
    y[:, 3] = np.round(y[:, 3])  # a column of few distinct values
    y[:, 4] = 7.0  # a constant one
    result = weighted_median(split(y, size=997), memory_budget=BUDGET)
    np.testing.assert_array_equal(result.median, np.median(y, axis=0))
    np.testing.assert_allclose(result.mean_absolute_deviation,
                               np.abs(y - np.median(y, axis=0)).mean(axis=0),
                               rtol=1e-12, atol=1e-300)


def test_integer_weights_equal_the_repeated_values(wide):
    w = np.random.default_rng(4).integers(0, 4, size=ROWS).astype(float)
    result = weighted_median(split(wide, w, size=1000), memory_budget=BUDGET)
    repeated = np.repeat(wide.astype(np.float64), w.astype(int), axis=0)
    np.testing.assert_array_equal(result.median, np.median(repeated, axis=0))
    np.testing.assert_allclose(
        result.mean_absolute_deviation * ROWS,
        np.abs(repeated - result.median).sum(axis=0), rtol=1e-12)


@pytest.mark.parametrize("weighted_rows", [2, 10, 300])
def test_few_weighted_rows_get_brackets_sized_for_them(wide, weighted_rows):
    # The sample draws from rows of positive weight only, so the room each
    # bracket needs is reckoned from those rows, not from every row read
    # (which asked for ROWS values a column: 40 passes, then an error).
    rng = np.random.default_rng(weighted_rows)
    w = np.zeros(ROWS)
    chosen = rng.choice(ROWS, weighted_rows, replace=False)
    w[chosen] = rng.integers(1, 4, size=weighted_rows)
    result = weighted_median(split(wide, w, size=1000), memory_budget=BUDGET)
    repeated = np.repeat(wide.astype(np.float64), w.astype(int), axis=0)
    np.testing.assert_array_equal(result.median, np.median(repeated, axis=0))
    assert result.passes == 2
    for sharded in _in_three_shards(wide, w):
        np.testing.assert_array_equal(sharded.median, result.median)
        assert sharded.passes == 2


def test_sorted_rows_are_sampled_at_random(wide):
    # A sample of the first rows would bracket the lowest values: 3+ passes.
    y = np.sort(wide, axis=0)
    result = weighted_median(split(y, size=1000), memory_budget=BUDGET)
    np.testing.assert_array_equal(result.median, _reference(y, 0.5))
    assert result.passes == 2


def test_a_rank_outside_its_bracket_takes_one_more_pass(wide, monkeypatch):
    # Zero margin: the sample's own middle values, which miss most ranks.
    monkeypatch.setattr(_wide_select, "Z", 0.0)
    budget = 8 * 2**20  # room for the side of the bracket that holds the rank
    result = weighted_median(split(wide, size=1000), memory_budget=budget)
    np.testing.assert_array_equal(result.median, _reference(wide, 0.5))
    assert result.passes == 3


def test_three_shards_give_the_whole_bit_for_bit(wide):
    whole = weighted_median(split(wide, size=1000), memory_budget=BUDGET)
    for result in _in_three_shards(wide):
        np.testing.assert_array_equal(result.median, whole.median)
        np.testing.assert_allclose(result.mean_absolute_deviation,
                                   whole.mean_absolute_deviation, rtol=1e-12)
        assert result.passes == 2


def test_traced_peak_within_budget(wide):
    batches = split(wide, size=1000)
    weighted_median(batches, memory_budget=BUDGET)  # NumPy's one-time caches
    peak, result = traced_peak(lambda: weighted_median(batches, memory_budget=BUDGET))
    assert result.passes == 2 and peak <= BUDGET


class Changing:
    """Re-iterable batches whose values grow by one on every pass."""

    def __init__(self, y):
        self.y, self.passes = y, 0

    def __iter__(self):
        self.passes += 1
        return iter(split(self.y + self.passes, size=1000))


def test_data_changing_between_passes_is_an_error(wide):
    with pytest.raises(ValueError, match="changed between passes"):
        weighted_median(Changing(wide), memory_budget=BUDGET)


def test_a_bracket_of_ties_too_large_takes_the_general_passes():
    # Column 0 is 90% zeros: its bracket [0, 0] would hold 72,000 values, more
    # than 1 MiB leaves room for; the general passes take it, exactly.
    rng = np.random.default_rng(8)
    y = rng.normal(size=(80_000, COLUMNS)).astype(np.float32)
    y[rng.random(80_000) < 0.9, 0] = 0.0
    result = weighted_median(split(y, size=4000), memory_budget=2**20)
    np.testing.assert_array_equal(result.median, _reference(y, 0.5))
    assert result.passes >= 3
