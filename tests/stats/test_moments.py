"""Moments: weighted mean / variance per column, streamed and mergeable."""

import numpy as np
import pytest

from keras_biasinit.stats import Moments


def stream(y, w=None, splits=(3, 10, 11)):
    m = Moments()
    parts = np.split(np.arange(len(y)), splits)
    for idx in parts:
        m.update(y[idx], None if w is None else w[idx])
    return m


def test_mean_and_variance_match_numpy(rng):
    y = rng.normal(3.0, 2.0, size=(40, 3))
    m = stream(y)
    np.testing.assert_allclose(m.mean, y.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(m.variance, y.var(axis=0), rtol=1e-12)
    np.testing.assert_allclose(m.second_moment, (y**2).mean(axis=0), rtol=1e-12)
    assert m.rows == 40 and m.weight == 40.0


def test_weighted_match_numpy(rng):
    y, w = rng.normal(size=(30, 2)), rng.random(30)
    w[[2, 7]] = 0.0
    m = stream(y, w)
    mean = np.average(y, axis=0, weights=w)
    np.testing.assert_allclose(m.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(
        m.variance, np.average((y - mean) ** 2, axis=0, weights=w), rtol=1e-12
    )
    assert m.rows == 30
    assert m.weight == pytest.approx(w.sum())


def test_vector_and_higher_rank_targets(rng):
    y = rng.normal(size=12)
    np.testing.assert_allclose(stream(y).mean, [y.mean()])
    cube = rng.normal(size=(12, 2, 3))
    np.testing.assert_allclose(stream(cube).mean, cube.reshape(12, 6).mean(axis=0))


def test_merge_is_order_free_and_handles_zero_weight(rng):
    y, w = rng.normal(size=(20, 2)), rng.random(20)
    zero = Moments().update(y[:4], np.zeros(4))  # no weight: only rows count
    a = Moments().update(y[4:12], w[4:12])
    b = Moments().update(y[12:], w[12:])
    merged = Moments().merge(zero).merge(b).merge(a)
    w_all = np.concatenate([np.zeros(4), w[4:]])
    np.testing.assert_allclose(merged.mean, np.average(y, axis=0, weights=w_all))
    assert merged.rows == 20
    assert Moments().merge(Moments()).mean is None


def test_huge_offset_keeps_precision(rng):
    noise = rng.normal(size=1000)
    m = stream(1e9 + noise, splits=(100, 555))
    assert m.variance[0] == pytest.approx(noise.var(), rel=1e-6)


def test_wide_float32_batches_match_numpy(rng):
    # 100 float32 columns (NumPy's axis-0 sums, the input cast to float64),
    # offsets from 0 to 1e8, and a ragged last batch.
    scale = np.logspace(-3, 3, 100)
    y = (rng.normal(size=(203, 100)) * scale + np.linspace(0, 1e8, 100)
         ).astype(np.float32)
    m = stream(y, splits=(64, 128, 192))
    y64 = y.astype(np.float64)
    np.testing.assert_allclose(m.mean, y64.mean(axis=0), rtol=1e-15)
    np.testing.assert_allclose(m.variance, y64.var(axis=0), rtol=1e-9)
    assert m.rows == 203 and m.weight == 203.0


def test_errors():
    with pytest.raises(ValueError, match=r"No data with positive weight"):
        _ = Moments().variance
    with pytest.raises(ValueError, match=r"No data with positive weight"):
        Moments().update(np.ones(3), np.zeros(3)).check_nonempty()
    with pytest.raises(ValueError, match=r"NaN or inf"):
        Moments().update(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match=r"NaN or inf"):
        Moments().update(np.array([1.0, -np.inf]))
    with pytest.raises(ValueError, match=r"different widths: 2 columns, then 3"):
        Moments().update(np.ones((2, 2))).update(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"3 sample weights for 2 rows"):
        Moments().update(np.ones(2), np.ones(3))


# SecondMoment: the weighted mean of x^2 over all entries (HeScaled's `m`).
