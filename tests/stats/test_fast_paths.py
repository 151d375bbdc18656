"""The shortcuts taken for speed (issue 5) change no result and no input.

`Moments.update` computes its sums with BLAS, catches NaN/inf through them
instead of a separate `isfinite` pass, and centres a converted copy in place:
it must never write into the caller's array, and bad values must still be
clear errors.
"""

import numpy as np
import pytest

from keras_biasinit.stats import Moments


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32])
@pytest.mark.parametrize("weighted", [False, True])
def test_update_leaves_the_callers_array_alone(rng, dtype, weighted):
    y = (rng.normal(size=(500, 3)) * 100).astype(dtype)
    w = rng.random(500) if weighted else None
    before = y.copy()
    moments = Moments().update(y, w)
    np.testing.assert_array_equal(y, before)
    y64, w64 = before.astype(np.float64), np.ones(500) if w is None else w
    mean = w64 @ y64 / w64.sum()
    np.testing.assert_allclose(moments.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(moments.variance,
                               w64 @ (y64 - mean) ** 2 / w64.sum(), rtol=1e-12)


@pytest.mark.parametrize(
    "y, w",
    [
        (np.array([1.0, np.nan, 2.0]), None),
        (np.array([1.0, np.inf, 2.0], np.float32), None),
        (np.array([-np.inf, np.inf]), None),
        (np.array([1.0, np.nan]), np.array([1.0, 0.0])),  # even at weight 0
        (np.array([1.0, np.nan]), np.array([0.0, 0.0])),
    ],
)
def test_non_finite_values_are_still_errors(y, w):
    with pytest.raises(ValueError, match="NaN or inf"):
        Moments().update(y, w)


@pytest.mark.parametrize("y", [np.array([1e308, 1e308]), np.array([1.7e308, -1.7e308])])
def test_overflowing_sums_are_a_clear_error(y):
    with pytest.raises(ValueError, match="too large.*Rescale"):
        Moments().update(y)
