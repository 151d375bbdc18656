"""The log-cosh location and the value buffer, against SciPy / NumPy."""

import numpy as np
import pytest
from scipy import optimize

from keras_biasinit.stats.buffer import ValueBuffer
from keras_biasinit.stats.log_cosh import log_cosh
from keras_biasinit.stats.log_cosh import log_cosh_location


def test_location_minimises_log_cosh(rng):
    y = np.concatenate([rng.normal(10, 2, 300), [1e4, -3e3]])
    w = rng.uniform(0.2, 2.0, size=y.size)
    c = log_cosh_location(y[:, None], w)[0]

    def f(b):  # log cosh by its definition; |r| - log 2 where cosh overflows
        r = b - y
        far = np.abs(r) > 300
        exact = np.log(np.cosh(np.where(far, 0.0, r)))
        return float(w @ np.where(far, np.abs(r) - np.log(2.0), exact))

    ref = optimize.minimize_scalar(f, bounds=(0, 20), method="bounded",
                                   options=dict(xatol=1e-11))
    assert c == pytest.approx(ref.x, abs=1e-5)
    assert f(c) <= ref.fun + 1e-12 * abs(ref.fun)  # ours is at least as low
    assert abs(w @ np.tanh(c - y)) < 1e-9 * w.sum()  # the root, to rounding
    np.testing.assert_allclose(log_cosh(np.array([0.0, 1.0, 800.0])),
                               [0.0, np.log(np.cosh(1.0)), 800.0 - np.log(2.0)])


def test_buffer_budget_and_widths():
    b = ValueBuffer(memory_budget=1000, name="output 'reg'")
    b.update(np.zeros(100))
    with pytest.raises(ValueError, match="output 'reg'.*memory_budget"):
        b.update(np.zeros(100))
    b = ValueBuffer().update(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="widths"):
        b.update(np.zeros((3, 1)))
    b = ValueBuffer().update(np.ones(2)).update(np.zeros(1), np.array([3.0]))
    y, w = b.arrays()
    assert y[:, 0].tolist() == [1.0, 1.0, 0.0] and w.tolist() == [1.0, 1.0, 3.0]
