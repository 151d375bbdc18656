"""Property: the in-memory and the streamed Huber solvers agree with an exact
reference, for any `delta` (1e-12 ... 1e12), offset (up to 1e9), count and
weights.

The reference is independent of the module: psi and the loss are evaluated in
rational arithmetic (`fractions.Fraction`, every float being a rational) at
every breakpoint `y +- delta`; psi is linear between them, so its root is
exact, and where psi is 0 on an interval its midpoint is exact. The float
nearest that rational number is the answer, to which both solvers are held in
ulps. `scipy.optimize.minimize_scalar` on the loss is a sanity check.

Both solvers are held to 1 ulp of the exact answer, and the streamed one
(several passes in a tiny `memory_budget`) to the very float the in-memory one
gives: it sums psi exactly too, from the values it collects and exact sums of
the rest, so a location much nearer 0 than the data is still exact to its own
ulps.
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
    b = b if isinstance(b, Fraction) else Fraction(float(b))  # exact: no rounding
    delta = Fraction(float(delta))
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
    # A unique root: the nearest float; a zero interval: its midpoint as
    # `y_k / 2 + y_{k+1} / 2`, within an ulp.
    tolerance = 0 if unique else 1
    assert ulps(huber_location_1d(y, ones, delta), nearest) <= tolerance
    assert ulps(in_memory.location[0], nearest) <= tolerance
    # The streamed solve sums psi exactly too: the same float.
    assert ulps(streamed.location[0], nearest) <= tolerance
    assert streamed.location[0] == in_memory.location[0]
    # No constant does better: the loss exceeds the exact minimum by at most
    # what a rounding of the minimiser can cost (the loss's curvature <= sum w).
    b = in_memory.location[0]
    gap = exact_loss(y, ones, delta, b) - exact_loss(y, ones, delta, exact)
    weight = sum(Fraction(float(v)) for v in ones)  # exactly, not a float sum
    assert 0 <= gap <= weight * (Fraction(b) - exact) ** 2 / 2
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
    # psi is 0 on [-2.5 + 1, 2.4991 - 1]: midpoint -0.00045 (once 4096 ulps off)
    ([-3.0, -2.5, 2.4991, 3.0], 1.0),
    # a unique root at the middle value, 8e-13 (once 7.9994e-13)
    ([-1.01, -0.46, -0.16, 8e-13, 0.21, 0.22, 0.54], 5.283266362105404e-09),
])
def test_streamed_location_to_the_last_ulps_near_zero(y, delta):
    y = np.array(y)
    exact, _ = exact_location(y, np.ones(y.size), delta)
    assert ulps(huber_location_1d(y, np.ones(y.size), delta), float(exact)) == 0
    result = huber_location(split(y, size=3), delta=delta, memory_budget=TINY)
    assert result.passes >= 2
    assert ulps(result.location[0], float(exact)) == 0


@st.composite
def larger_problems(draw):
    """Hundreds to thousands of rows: the streamed solve then also has rows
    between its windows, below and above them, and many duplicates."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.sampled_from([200, 201, 2000, 2001]))
    offset = draw(st.sampled_from([0.0, 1.0, -1.0])) * 10 ** draw(st.floats(0, 9))
    scale = 10 ** draw(st.floats(-12, 4))
    kind = draw(st.sampled_from(["normal", "ties", "heavy"]))
    z = {"normal": rng.normal(size=n), "ties": rng.integers(-3, 4, size=n) / 2.0,
         "heavy": rng.standard_cauchy(size=n)}[kind]
    weights = draw(st.sampled_from([None, "integer", "float"]))
    w = {None: None, "integer": rng.integers(1, 5, size=n).astype(float),
         "float": rng.random(size=n) + 0.01}[weights]
    return offset + scale * z, w, 10 ** draw(st.floats(-12, 12))


@settings(max_examples=60, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(larger_problems())
def test_streamed_gives_the_in_memory_float(problem):
    y, w, delta = problem
    in_memory = huber_location(split(y, w, size=97), delta=delta)
    streamed = huber_location(split(y, w, size=97), delta=delta, memory_budget=TINY)
    assert in_memory.passes == 1 and streamed.passes >= 2
    assert streamed.location[0] == in_memory.location[0]
    np.testing.assert_allclose(streamed.mean_loss, in_memory.mean_loss, rtol=1e-9)


@pytest.mark.parametrize("offset", [0.0, 1e9])
@pytest.mark.parametrize("weights", ["float", "float ties"])
def test_float_weights_of_tied_values_merge_exactly(offset, weights):
    # Tied values are collected once, their weights summed: that sum's
    # rounding is kept, or psi (and a location near 0) is off by it.
    rng = np.random.default_rng(4)
    y = offset + rng.integers(-2, 3, size=3000).astype(float)
    w = rng.random(3000) + 0.01
    if weights == "float ties":
        w = np.round(w, 2)
    expected = huber_location_1d(y, w, 1.0)
    result = huber_location(split(y, w, size=97), delta=1.0, memory_budget=TINY)
    assert result.passes >= 2 and result.location[0] == expected


@pytest.mark.parametrize("y, w, delta", [
    # odd count, delta far below the data's ulp: the root is exactly the middle
    # value, where the histogram put the bracket's end (once: 40 passes, error)
    ([12467538.516333565, 12467538.517404094, 12467538.516332174,
      12467538.517406655, 12467538.516334794, 12467538.517404122,
      12467538.516331747, 12467538.51740594, 12467538.516333915,
      12467538.51740741, 12467538.516331427, 12467538.517408669,
      12467538.516332822, 12467538.517404819, 12467538.516332038,
      12467538.517407136, 12467538.5163343], None, 1.8381315925643788e-10),
    # the root is delta / 3 below a value, under half its ulp: the nearest float
    # is that value, the bracket's low end, though psi there is > 0
    ([-107546362.46808164, -107546362.4680583, -107546362.46805167,
      -107546362.46804744, -107546362.46807787, -107546362.46805795,
      -107546362.4680531, -107546362.46806322, -107546362.46807821,
      -107546362.46804352, -107546362.46807806, -107546362.46808496,
      -107546362.46803138, -107546362.46808137, -107546362.46803656,
      -107546362.46803926, -107546362.46807155, -107546362.46806413,
      -107546362.46805838],
     [4.0, 1.0, 4.0, 4.0, 3.0, 2.0, 3.0, 2.0, 1.0, 1.0, 4.0, 1.0, 1.0, 2.0, 2.0,
      2.0, 3.0, 1.0, 3.0], 4.3722038334831725e-09),
])
def test_a_root_at_the_end_of_the_bracket_converges(y, w, delta):
    y = np.array(y)
    w = None if w is None else np.array(w)
    ones = np.ones(y.size) if w is None else w
    exact, _ = exact_location(y, ones, delta)
    result = huber_location(split(y, w, size=7), delta=delta, memory_budget=TINY)
    assert result.passes <= 6
    assert result.location[0] == float(exact) == huber_location_1d(y, ones, delta)
