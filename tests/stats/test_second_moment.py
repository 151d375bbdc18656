"""SecondMoment: the weighted mean of x**2 over all entries, against NumPy."""

import numpy as np
import pytest

from keras_biasinit.stats import Moments
from keras_biasinit.stats import SecondMoment


def stream_squares(y, w=None, splits=(3, 10, 11)):
    s = SecondMoment()
    for idx in np.split(np.arange(len(y)), splits):
        s.update(y[idx], None if w is None else w[idx])
    return s


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32])
@pytest.mark.parametrize("weighted", [False, True])
def test_second_moment_matches_numpy_and_leaves_the_input_alone(rng, dtype, weighted):
    # Large, offset values: float32 squares summed in float32 would be off
    # by ~1e-7; the float64 sum must match NumPy's to ~1e-13.
    y = (rng.normal(size=(40, 2, 3)) * 300 + np.arange(6).reshape(2, 3) * 1e3)
    y = y.astype(dtype)
    w = rng.random(40) if weighted else None
    before = y.copy()
    s = stream_squares(y, w)
    np.testing.assert_array_equal(y, before)
    y64 = y.astype(np.float64).reshape(40, 6)
    w64 = np.ones(40) if w is None else w
    expected = np.average((y64**2).mean(axis=1), weights=w64)
    assert s.mean_square == pytest.approx(expected, rel=1e-13)
    # The same number as Moments' per-column second moment, averaged.
    m = Moments().update(y.reshape(40, 6), w)
    assert s.mean_square == pytest.approx(m.second_moment.mean(), rel=1e-12)
    assert s.rows == 40 and s.features == 6
    assert s.weight == pytest.approx(w64.sum(), rel=1e-15)


def test_second_moment_merge_is_order_free_and_counts_zero_weight_rows(rng):
    y, w = rng.normal(size=(20, 3)), rng.random(20)
    zero = SecondMoment().update(y[:4], np.zeros(4))
    a = SecondMoment().update(y[4:12], w[4:12])
    b = SecondMoment().update(y[12:], w[12:])
    merged = SecondMoment().merge(zero).merge(b).merge(SecondMoment()).merge(a)
    expected = np.average((y[4:] ** 2).mean(axis=1), weights=w[4:])
    assert merged.mean_square == pytest.approx(expected, rel=1e-13)
    assert merged.rows == 20


@pytest.mark.parametrize(
    "y, w",
    [
        (np.array([[1.0, np.nan], [2.0, 3.0]]), None),
        (np.array([[1.0, np.inf], [2.0, 3.0]], np.float32), None),
        (np.array([[-np.inf], [1.0]]), np.array([1.0, 1.0])),
        (np.array([[1.0], [np.nan]]), np.array([1.0, 0.0])),  # even at weight 0
    ],
)
def test_second_moment_non_finite_values_are_errors(y, w):
    with pytest.raises(ValueError, match="contain 1 NaN or inf"):
        SecondMoment().update(y, w)


def test_second_moment_errors():
    with pytest.raises(ValueError, match="too large.*Rescale"):
        SecondMoment().update(np.array([1e200, 1.0]))  # the square overflows
    with pytest.raises(ValueError, match="too large.*Rescale"):
        SecondMoment().update(np.array([1e200, 1.0]), np.ones(2))
    with pytest.raises(ValueError, match=r"No data with positive weight"):
        _ = SecondMoment().mean_square
    with pytest.raises(ValueError, match=r"No data with positive weight"):
        _ = SecondMoment().update(np.ones((3, 2)), np.zeros(3)).mean_square
    with pytest.raises(ValueError, match=r"different widths: 2 columns, then 3"):
        SecondMoment().update(np.ones((2, 2))).update(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"3 sample weights for 2 rows"):
        SecondMoment().update(np.ones(2), np.ones(3))
