"""Property: the in-memory and the streamed Huber solvers agree with an exact
reference, for any `delta` (1e-12 ... 1e12), offset (up to 1e9), count and
weights.

The reference is independent of the module: psi and the loss are evaluated in
rational arithmetic (`fractions.Fraction`, every float being a rational) at
every breakpoint `y +- delta`; psi is linear between them, so its root is
exact, and where psi is 0 on an interval its midpoint is exact. The float
nearest that rational number is the answer, to which both solvers are held in
ulps. `scipy.optimize.minimize_scalar` on the loss is a sanity check.

The in-memory solver is held to 1 ulp of the exact answer; the streamed one,
for now, to `2 eps max(|y|, delta)` (it sums residuals about a centre): where
the location is much nearer 0 than the data are, that is many ulps of the
location, recorded as strict xfails below.
"""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from scipy import optimize

from keras_biasinit.stats import huber_location
from keras_biasinit.stats._keys import to_keys
from keras_biasinit.stats.huber import huber_location_1d
from tests.stats._batches import TINY, split

EPS = np.finfo(np.float64).eps
SETTINGS = settings(
    max_examples=300, deadline=None, database=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def _psi(y, w, delta, b):
    return sum(wi * min(max(b - yi, -delta), delta) for yi, wi in zip(y, w))


def exact_location(y, w, delta):
    """(the exact minimiser as a Fraction, whether it is unique)."""
    y = [Fraction(float(v)) for v in y]
    w = [Fraction(float(v)) for v in w]
    delta = Fraction(float(delta))
    points = sorted({v - delta for v in y} | {v + delta for v in y})
    psi = [_psi(y, w, delta, p) for p in points]
    zeros = [p for p, value in zip(points, psi) if value == 0]
    if zeros:  # psi is 0 exactly on [zeros[0], zeros[-1]]
        return (zeros[0] + zeros[-1]) / 2, len(zeros) == 1
    i = next(k for k, value in enumerate(psi) if value > 0)  # psi[0] < 0
    a, b = points[i - 1], points[i]
    return a - psi[i - 1] * (b - a) / (psi[i] - psi[i - 1]), True


def exact_loss(y, w, delta, b):
    """sum w h(y - b), exactly."""
    b, delta = Fraction(float(b)), Fraction(float(delta))
    total = Fraction(0)
    for yi, wi in zip(y, w):
        r = abs(Fraction(float(yi)) - b)
        h = r * r / 2 if r <= delta else delta * (r - delta / 2)
        total += Fraction(float(wi)) * h
    return total


def ulps(a, b):
    """How many floats apart `a` and `b` are."""
    keys = to_keys(np.array([a, b], dtype=np.float64)).astype(object)
    return abs(int(keys[0]) - int(keys[1]))


@st.composite
def problems(draw):
    """Values (odd and even counts, ties, outliers), weights or None, delta."""
    n = draw(st.integers(1, 24))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    offset = draw(st.sampled_from([0.0, 1.0, -1.0])) * 10 ** draw(st.floats(0, 9))
    scale = 10 ** draw(st.floats(-12, 4))
    kind = draw(st.sampled_from(["normal", "ties", "heavy", "two clusters"]))
    if kind == "normal":
        z = rng.normal(size=n)
    elif kind == "ties":
        z = rng.integers(-2, 3, size=n).astype(float)
    elif kind == "heavy":
        z = rng.standard_cauchy(size=n)
    else:
        z = rng.normal(size=n) * 0.01 + np.where(np.arange(n) % 2, 5.0, -5.0)
    y = offset + scale * z
    weights = draw(st.sampled_from([None, "integer", "float"]))
    if weights == "integer":
        w = rng.integers(1, 5, size=n).astype(float)
    elif weights == "float":
        w = rng.random(size=n) + 0.01
    else:
        w = None
    delta = 10 ** draw(st.floats(-12, 12))
    return y, w, delta


@SETTINGS
@given(problems())
def test_both_solvers_give_the_exact_minimiser(problem):
    y, w, delta = problem
    ones = np.ones(y.size) if w is None else w
    exact, unique = exact_location(y, ones, delta)
    nearest = float(exact)
    in_memory = huber_location(split(y, w, size=7), delta=delta)
    streamed = huber_location(split(y, w, size=7), delta=delta, memory_budget=TINY)
    assert in_memory.passes == 1 and (streamed.passes >= 2 or np.ptp(y) == 0)
    assert ulps(huber_location_1d(y, ones, delta), nearest) <= 1
    assert ulps(in_memory.location[0], nearest) <= 1
    # The streamed solve sums psi exactly too: the same float.
    assert ulps(streamed.location[0], nearest) <= 1
    assert streamed.location[0] == in_memory.location[0]
    # No constant does better: the loss exceeds the exact minimum by at most
    # what a rounding of the minimiser can cost (the loss's curvature <= sum w).
    b = in_memory.location[0]
    gap = exact_loss(y, ones, delta, b) - exact_loss(y, ones, delta, exact)
    assert 0 <= gap <= Fraction(ones.sum()) * (Fraction(b) - exact) ** 2 / 2
    np.testing.assert_allclose(in_memory.mean_loss[0],
                               float(exact_loss(y, ones, delta, b)) / y.size,
                               rtol=1e-12)


@SETTINGS
@given(problems())
def test_no_constant_found_by_scipy_does_better(problem):
    y, w, delta = problem
    ones = np.ones(y.size) if w is None else w
    b = huber_location_1d(y, ones, delta)
    low, high = float(y.min()), float(y.max())
    found = optimize.minimize_scalar(
        lambda c: float(exact_loss(y, ones, delta, c)), bounds=(low, high),
        method="bounded", options={"xatol": 1e-12 * max(1.0, abs(high))}).x
    for c in [found, low, high, float(np.median(y)), float(np.mean(y))]:
        assert exact_loss(y, ones, delta, b) <= exact_loss(y, ones, delta, c)


@pytest.mark.parametrize("delta", [1e-12, 1e-10, 1e-9, 1e-8, 1e-3, 0.1, 0.24])
def test_even_count_flat_psi_gives_the_midpoint(delta):
    # psi is 0 on [0.2 + delta, 0.7 - delta] (two rows either side): the
    # location is its midpoint, (0.2 + 0.7) / 2, whatever delta.
    y = np.array([0.1, 0.2, 0.7, 0.9])
    midpoint = float((Fraction(0.2) + Fraction(0.7)) / 2)
    assert huber_location_1d(y, np.ones(4), delta) == midpoint
    for budget in [TINY, 2**28]:
        result = huber_location(split(y, size=3), delta=delta, memory_budget=budget)
        assert ulps(result.location[0], midpoint) <= 2


@pytest.mark.parametrize("offset", [0.0, 1e3, 1e9, -1e9])
@pytest.mark.parametrize("delta", [1e-12, 1e-9, 1e-6])
def test_delta_below_the_spacing_of_the_data(offset, delta):
    # With offset 1e9 the ulp of the data is 1.2e-7: y +- delta rounds to y.
    rng = np.random.default_rng(3)
    for n in (60, 61):
        y = offset + rng.normal(size=n)
        exact, _ = exact_location(y, np.ones(n), delta)
        assert ulps(huber_location_1d(y, np.ones(n), delta), float(exact)) <= 1


@pytest.mark.parametrize("y, delta", [
    # psi is 0 on [-2.5 + 1, 2.4991 - 1]: midpoint -0.00045 (streamed: 4096 ulps)
    ([-3.0, -2.5, 2.4991, 3.0], 1.0),
    # a unique root at the middle value, 8e-13 (streamed: 7.9994e-13)
    ([-1.01, -0.46, -0.16, 8e-13, 0.21, 0.22, 0.54], 5.283266362105404e-09),
])
def test_streamed_location_to_the_last_ulps_near_zero(y, delta):
    y = np.array(y)
    exact, _ = exact_location(y, np.ones(y.size), delta)
    assert ulps(huber_location_1d(y, np.ones(y.size), delta), float(exact)) == 0
    result = huber_location(split(y, size=3), delta=delta, memory_budget=TINY)
    assert result.passes >= 2
    assert ulps(result.location[0], float(exact)) == 0
