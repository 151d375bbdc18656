"""Exact weighted quantile, in memory and in several passes.

References are independent: `np.quantile(..., method="averaged_inverted_cdf")`
(Hyndman & Fan's type 2: the midpoint where the empirical CDF is flat at q)
without weights, and a weighted reference written here from its definition.
"""

from fractions import Fraction

import numpy as np
import pytest

from keras_biasinit.stats import weighted_median
from keras_biasinit.stats import weighted_quantile
from tests.stats._batches import TINY, split

QS = [0.01, 0.1, 0.25, 0.3, 0.5, 0.75, 0.9, 0.999]


def reference(y, w, q, weighted):
    """The smallest b with W(y <= b) >= q W; the midpoint up to the next value
    where W(y <= b) == q W, in exact rational arithmetic. As documented: without
    weights `q n` is rounded to a float once, as NumPy does (0.01 * 3000 is a
    tie at 30); with weights "==" allows 1e-9 of `q W` (the rounding of summed
    float weights)."""
    order = np.argsort(y, kind="stable")
    values = y[order]
    weights = [Fraction(float(v)) for v in w[order]]
    total = sum(weights)
    target = Fraction(q) * total if weighted else Fraction(q * float(total))
    tol = target / 10**9 if weighted else 0
    cum = Fraction(0)
    for i, wi in enumerate(weights):
        cum += wi
        if cum >= target - tol and wi > 0:
            if cum <= target + tol and i + 1 < len(values):
                nxt = next(j for j in range(i + 1, len(values)) if weights[j] > 0)
                return (values[i] + values[nxt]) / 2
            return values[i]
    raise AssertionError("unreachable")


def pinball(y, w, b, q):
    r = y - b
    return float(np.sum(w * np.maximum(q * r, (q - 1) * r)) / y.size)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    return {
        "normal": rng.normal(size=4001),
        "even ties": rng.integers(0, 9, size=4000).astype(float),
        "huge offset": 1e9 + rng.normal(size=3000) * 1e-3,
        "heavy tails": rng.standard_cauchy(size=3001) * 1e6,
    }


@pytest.mark.parametrize("q", QS)
@pytest.mark.parametrize("name", ["normal", "even ties", "huge offset",
                                  "heavy tails"])
@pytest.mark.parametrize("budget", [2**28, TINY], ids=["in memory", "multi-pass"])
def test_unweighted_equals_numpy_type_2(data, name, q, budget):
    y = data[name]
    result = weighted_quantile(split(y), q=q, memory_budget=budget)
    assert (result.passes == 1) == (budget > TINY)
    expected = np.quantile(y, q, method="averaged_inverted_cdf")
    np.testing.assert_allclose(result.quantile, [expected], rtol=1e-15, atol=0)
    assert result.quantile[0] == reference(y, np.ones(y.size), q, False)  # exact
    np.testing.assert_allclose(result.mean_pinball_loss,
                               [pinball(y, 1.0, result.quantile[0], q)],
                               rtol=1e-10)


@pytest.mark.parametrize("q", QS)
@pytest.mark.parametrize("budget", [2**28, TINY], ids=["in memory", "multi-pass"])
def test_weighted_equals_the_reference(q, budget):
    rng = np.random.default_rng(int(q * 1000))
    y = np.round(rng.normal(size=(5000, 2)) * 10, 1)  # ties
    w = rng.integers(0, 4, size=5000) * 0.25  # zeros and exact sums
    result = weighted_quantile(split(y, w), q=q, memory_budget=budget)
    for j in range(2):
        assert result.quantile[j] == reference(y[:, j], w, q, True)
        np.testing.assert_allclose(result.mean_pinball_loss[j],
                                   pinball(y[:, j], w, result.quantile[j], q),
                                   rtol=1e-10)


def test_integer_weights_equal_repeated_rows():
    rng = np.random.default_rng(2)
    y = rng.normal(size=777)
    w = rng.integers(1, 5, size=777)
    for q in QS:
        result = weighted_quantile([(y, w.astype(float))], q=q, memory_budget=TINY)
        repeated = np.repeat(y, w)
        assert result.quantile[0] == pytest.approx(
            np.quantile(repeated, q, method="averaged_inverted_cdf"), rel=1e-15)


def test_the_quantile_minimises_the_pinball_loss():
    rng = np.random.default_rng(9)
    y = rng.exponential(size=2001)
    for q in (0.2, 0.8):
        b = weighted_quantile([(y, None)], q=q).quantile[0]
        best = pinball(y, 1.0, b, q)
        for other in np.linspace(y.min(), y.max(), 501):
            assert pinball(y, 1.0, other, q) >= best - 1e-12


def test_q_one_half_is_the_median(data):
    y = data["even ties"]
    for budget in (2**28, TINY):
        q = weighted_quantile(split(y), q=0.5, memory_budget=budget)
        m = weighted_median(split(y), memory_budget=budget)
        assert q.quantile.tolist() == m.median.tolist() == [np.median(y)]
        np.testing.assert_allclose(q.mean_pinball_loss * 2, m.mean_absolute_deviation,
                                   rtol=1e-12)


@pytest.mark.parametrize("q", [0, 1, -0.5, 1.5, "0.5", True, None])
def test_q_outside_the_open_interval_is_a_clear_error(q):
    with pytest.raises(ValueError, match="`q` must"):
        weighted_quantile([(np.ones(3), None)], q=q)
