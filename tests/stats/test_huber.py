"""Exact Huber location, in memory and in bounded memory (several passes).

The reference is independent of the module: SciPy's `brentq` on
`psi(b) = sum w clip(b - y, -delta, delta)` (the derivative of the total
Huber loss, monotone), and the loss written out from `keras.losses.Huber`'s
definition. Where the minimiser is an interval, the midpoint is known in
closed form.
"""

import numpy as np
import pytest
from scipy import optimize

from keras_biasinit.stats import huber_location
from tests.stats._batches import TINY, Changing, one_shot, split

N = 20_001


def _root(y, w, delta):
    def psi(b):
        return np.sum(w * np.clip(b - y, -delta, delta))

    return optimize.brentq(psi, y.min(), y.max(), xtol=1e-300, rtol=9e-16,
                           maxiter=500)


def _mean_loss(y, w, b, delta):
    r = np.abs(y - b)
    return np.sum(w * np.where(r <= delta, r * r / 2, delta * (r - delta / 2))) / y.size


def _check(result, y, w, delta, column=0, rtol=1e-12):
    w = np.ones(y.size) if w is None else w
    root = _root(y, w, delta)
    scale = max(np.abs(y).max(), delta)
    tolerance = max(rtol * scale, 4 * np.spacing(root))
    assert abs(result.location[column] - root) <= tolerance
    np.testing.assert_allclose(result.mean_loss[column],
                               _mean_loss(y, w, root, delta), rtol=1e-10)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    return {
        "normal": (rng.normal(size=N), 1.0),
        "heavy tails": (rng.standard_t(2, size=N) * 10, 1.5),
        "ties": (rng.integers(-3, 4, size=N).astype(float), 0.7),
        "negative": (-rng.exponential(size=N) * 3 - 5, 1.0),
        "huge offset": (1e9 + rng.normal(size=N) * 1e-3, 1e-3),
        "crosses zero": (1.0 + rng.normal(size=N) * 1e-3, 1.0),
        "tiny delta": (rng.normal(size=N), 1e-9),
        "huge delta": (rng.normal(size=N) ** 3, 1e6),
    }


@pytest.mark.parametrize(
    "name",
    ["normal", "heavy tails", "ties", "negative", "huge offset", "crosses zero",
     "tiny delta", "huge delta"],
)
def test_multi_pass_matches_brute_force(data, name):
    y, delta = data[name]
    result = huber_location(split(y), delta=delta, memory_budget=TINY)
    assert result.passes >= 2  # the multi-pass path ran
    _check(result, y, None, delta)
    assert result.rows == y.size


@pytest.mark.parametrize("name", ["normal", "huge offset", "tiny delta", "huge delta"])
def test_in_memory_matches_brute_force(data, name):
    y, delta = data[name]
    y = y[:3001]
    result = huber_location(split(y), delta=delta)
    assert result.passes == 1
    _check(result, y, None, delta)


def test_float64_data_in_coarse_bins_need_three_passes(rng):
    # 1 MiB: 11-bit radix digits, whose windows hold too many float64 values
    # to collect at once; float32 targets take 2 (test_huber_radix.py).
    y = rng.normal(size=100_000) * 3 + 10
    result = huber_location(split(y, size=8192), delta=1.0, memory_budget=2**20)
    assert result.passes == 3
    _check(result, y, None, 1.0)


@pytest.mark.parametrize("budget", [TINY, 256 * 2**20])
def test_weights_and_columns(rng, budget):
    y = np.stack([rng.normal(size=9000), 50 + rng.exponential(size=9000) * 20],
                 axis=1)
    w = rng.integers(0, 4, size=9000).astype(float)
    result = huber_location(split(y, w), delta=2.0, memory_budget=budget)
    for j in range(2):
        _check(result, y[:, j], w, 2.0, column=j)
    assert result.weight == w.sum()


@pytest.mark.parametrize("budget", [TINY, 256 * 2**20])
def test_non_unique_minimiser_is_the_midpoint(rng, budget):
    # Two equal-weight clusters more than 2 delta apart: psi is 0 on
    # [max(low) + delta, min(high) - delta]; the midpoint is
    # (max(low) + min(high)) / 2.
    low = rng.random(10_000) * 0.5
    high = 9.5 + rng.random(10_000) * 0.5
    y = rng.permutation(np.concatenate([low, high]))
    result = huber_location(split(y), delta=1.0, memory_budget=budget)
    assert result.location[0] == pytest.approx((low.max() + high.min()) / 2,
                                               rel=1e-15)
    np.testing.assert_allclose(
        result.mean_loss, [_mean_loss(y, 1.0, result.location[0], 1.0)], rtol=1e-12
    )


@pytest.mark.parametrize("budget", [2 * 2**20, 256 * 2**20])
def test_far_outliers_do_not_blur_the_bulk(budget):
    # A -1e16 outlier must not enter a sum over the bulk near 3, where its
    # rounding (~1) would swamp psi: the location is exact to float precision
    # around 3, not merely relative to max|y|, on both paths.
    rng = np.random.default_rng(5)
    y = np.r_[rng.normal(3.0, 1.0, 200_000), np.full(3, -1e16)]
    result = huber_location(split(y, size=4096), delta=1.0, memory_budget=budget)
    root = _root(y, np.ones(y.size), 1.0)
    assert abs(result.location[0] - root) <= 4 * np.spacing(root)
    assert (result.passes == 1) == (budget > 2**27)  # in memory, or not


def test_values_across_many_orders_of_magnitude_converge_in_few_passes():
    # exp(20 N): |y| from 1e-30 to 1e30. Evenly spaced probes would shrink the
    # bracket only ~33-fold a pass (it once took over 40 passes).
    rng = np.random.default_rng(6)
    y = np.exp(20 * rng.normal(size=150_000)) * rng.choice([-1.0, 1.0], 150_000)
    result = huber_location(split(y, size=4096), delta=1.0, memory_budget=2**20)
    root = _root(y, np.ones(y.size), 1.0)
    assert abs(result.location[0] - root) <= 1e-12 * abs(root)
    assert 2 <= result.passes <= 8


def test_one_shot_generator_over_budget_is_a_clear_error(rng):
    with pytest.raises(ValueError, match="re-iterable.*memory_budget"):
        huber_location(one_shot(rng.normal(size=N)), memory_budget=TINY)


def test_data_changing_between_passes_is_an_error():
    with pytest.raises(ValueError, match="changed between passes"):
        huber_location(Changing(N), memory_budget=TINY)


@pytest.mark.parametrize("delta", [0, -1.0, np.inf, np.nan, "1"])
def test_bad_delta_names_the_argument(delta):
    with pytest.raises(ValueError, match="`delta`.*Received"):
        huber_location(split(np.arange(10.0)), delta=delta)


def test_constant_column(rng):
    y = np.full(30_000, 3.25)
    result = huber_location(split(y), delta=1.0, memory_budget=TINY)
    assert result.location.tolist() == [3.25] and result.mean_loss.tolist() == [0.0]


@pytest.mark.parametrize("offset", [0.0, 1e9])
@pytest.mark.parametrize("delta", [1e-12, 1e-10, 1e-9, 1e-8])
@pytest.mark.parametrize("budget", [TINY, 256 * 2**20])
def test_tiny_delta_on_an_even_count_is_the_median(rng, offset, delta, budget):
    # delta far below the gap between the two middle values: psi is 0 between
    # them (less delta), so the location is their midpoint, NumPy's median.
    # It once was NaN in memory (psi's rounded breakpoints missed the flat part).
    y = offset + rng.normal(size=20_000)
    result = huber_location(split(y), delta=delta, memory_budget=budget)
    assert (result.passes == 1) == (budget > TINY)
    median = np.median(y)
    assert abs(result.location[0] - median) <= 4 * abs(np.spacing(median))
    np.testing.assert_allclose(result.mean_loss, [_mean_loss(y, 1.0, median, delta)],
                               rtol=1e-9)
