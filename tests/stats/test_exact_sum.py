"""Exact column sums (`keras_biasinit.stats._exact_sum`), against rational
arithmetic: every float is a `fractions.Fraction`, and so is their exact sum."""

from fractions import Fraction

import numpy as np
import pytest

from keras_biasinit.stats._exact_sum import ExactSums
from keras_biasinit.stats._exact_sum import exact_sum
from keras_biasinit.stats._exact_sum import group_sums
from keras_biasinit.stats._exact_sum import two_prod


def _exact(column):
    return sum(map(Fraction, np.ravel(column)), Fraction(0))


@pytest.mark.parametrize("seed", range(20))
def test_levels_sum_exactly_to_the_column_sums(seed):
    rng = np.random.default_rng(seed)
    rows, columns = int(rng.integers(1, 400)), int(rng.integers(1, 4))
    x = rng.standard_cauchy((rows, columns)) * 10.0 ** rng.uniform(-300, 300,
                                                                   (rows, columns))
    x[rng.random((rows, columns)) < 0.3] = 0.0
    levels = exact_sum(x)
    for j in range(columns):
        assert _exact(levels[:, j]) == _exact(x[:, j])


def test_cancellation_that_a_float_sum_loses():
    x = np.array([[1e16, 3.0], [1.0, 2.0**-60], [-1e16, -3.0]])
    levels = exact_sum(x)
    assert float(x[:, 0].sum()) == 0.0  # what plain summation gives
    assert _exact(levels[:, 0]) == 1 and _exact(levels[:, 1]) == Fraction(2) ** -60
    assert exact_sum(np.zeros((5, 2))).tolist() == [[0.0, 0.0]]


def test_running_sums_and_merge_are_exact():
    rng = np.random.default_rng(1)
    a, b = ExactSums(2, 3), ExactSums(2, 3)
    reference = np.full((2, 3), Fraction(0))
    for k in range(40):
        terms = rng.normal(size=(int(rng.integers(1, 50)), 3)) * 10.0 ** rng.uniform(
            -20, 20, (1, 3))
        (a if k % 2 else b).add(k % 2, terms)
        for j in range(3):
            reference[k % 2, j] += _exact(terms[:, j])
    b.merge(b.from_arrays(a.to_arrays("x_"), "x_"))  # travels as arrays
    for q in range(2):
        for j in range(3):
            assert _exact(b.levels(q, j)) == reference[q, j]
    assert b.parts[0].shape[0] <= 6  # a few levels, not one per chunk


def test_group_sums_keep_the_rounding_of_merged_weights():
    rng = np.random.default_rng(2)
    x = rng.random(300) + 0.01
    starts = np.array([0, 1, 7, 100, 299])
    total, error = group_sums(x.copy(), starts)
    bounds = np.append(starts, x.size)
    for g in range(starts.size):
        exact = _exact(x[bounds[g] : bounds[g + 1]])
        assert total[g] == np.add.reduceat(x, starts)[g]
        assert abs(Fraction(total[g]) + Fraction(error[g]) - exact) <= exact * 2**-100


def test_products_near_the_overflow_threshold_split_exactly():
    # 2^27 * a overflows above ~1.34e300: the split must not leave NaN.
    rng = np.random.default_rng(3)
    a = 10.0 ** rng.uniform(299, 308, 200) * rng.choice([-1, 1], 200)
    b = rng.random(200) + 0.01
    p, e = two_prod(a, b)
    assert np.isfinite(e).all()
    for ai, bi, pi, ei in zip(a, b, p, e):
        assert Fraction(pi) + Fraction(ei) == Fraction(ai) * Fraction(bi)


def test_sums_beyond_the_extraction_range_stay_exact():
    # rows * max|x| above 2^1022: summed scaled by a power of two, with the
    # column's tiny terms apart.
    rng = np.random.default_rng(4)
    x = 10.0 ** rng.uniform(300, 306, (300, 2)) * rng.choice([-1, 1], (300, 2))
    x[::7, 1] = 10.0 ** rng.uniform(-320, -280, x[::7, 1].shape)
    levels = exact_sum(x)
    assert np.isfinite(levels).all()
    for j in range(2):
        assert _exact(levels[:, j]) == _exact(x[:, j])


def test_infinite_terms_give_their_plain_sum():
    # (a product that overflowed upstream): no extraction, no endless rescaling
    x = np.array([[np.inf, 1.0], [1.0, 2.0]])
    with np.errstate(invalid="ignore"):
        levels = exact_sum(x)
    assert levels[:, 0].sum() == np.inf and levels[:, 1].sum() == 3.0
