"""HuberBias: the location minimising the mean keras.losses.Huber(delta) loss."""


import keras
import numpy as np
import pytest
from tests._tf import tf
from scipy import optimize

from keras_biasinit import HuberBias

pytestmark = pytest.mark.keras  # runs under every backend (conftest.py)

Dataset = tf.data.Dataset


def from_data(data, **kwargs):
    return HuberBias.from_dataset(data, verbose=0, **kwargs)


def huber_total(y, w, b, delta):
    """sum_i w_i h(y_i - b), written out from the definition."""
    r = np.abs(y - b)
    return float(np.sum(w * np.where(r <= delta, 0.5 * r**2, delta * (r - delta / 2))))


@pytest.mark.parametrize("delta", [1e-3, 0.3, 1.0, 10.0, 1e4])
def test_location_minimises_huber_loss(rng, delta):
    for _ in range(8):
        n = int(rng.integers(2, 40))
        y = rng.standard_t(2, size=n) * rng.choice([0.1, 1.0, 50.0])
        w = rng.choice([0.0, 0.5, 1.0, 3.0], size=n)
        w[0] = 1.0
        b = from_data((np.zeros(n), y, w), delta=delta).bias[0]
        ref = optimize.minimize_scalar(
            lambda c: huber_total(y, w, c, delta), bounds=(y.min(), y.max()),
            method="bounded", options={"xatol": 1e-12 * (1 + np.abs(y).max())},
        )
        # Never worse than SciPy's minimiser, to float precision.
        assert huber_total(y, w, b, delta) <= ref.fun * (1 + 1e-12) + 1e-300


def test_location_matches_the_root_of_psi_where_unique(rng):
    # The minimiser is the root of psi(b) = sum w clip(b - y, -delta, delta);
    # a root finder pins it to float precision (a minimiser of the loss value
    # only to ~sqrt(eps), since the loss is flat to second order there).
    y = rng.normal(5.0, 2.0, size=300)
    b = from_data(y, delta=1.5).bias[0]
    root = optimize.brentq(lambda c: np.clip(c - y, -1.5, 1.5).sum(), 0.0, 10.0,
                           xtol=1e-15, rtol=1e-15)
    assert b == pytest.approx(root, rel=1e-13)


def test_limits_are_mean_and_median(rng):
    y = rng.normal(size=51) ** 3
    assert from_data(y, delta=1e3).bias[0] == pytest.approx(y.mean(), rel=1e-12)
    # |location - median| <= delta for an odd count.
    assert from_data(y, delta=1e-9).bias[0] == pytest.approx(np.median(y), abs=1e-9)


def test_huge_delta_is_the_mean_to_float_precision(rng):
    y = rng.normal(size=51) ** 3
    for delta in (1e6, 1e9, 1e12):
        assert from_data(y, delta=delta).bias[0] == pytest.approx(y.mean(), rel=1e-12)


@pytest.mark.parametrize(
    "offset, delta", [(1e4, 1e-6), (1e9, 1e-3), (0.0, 1e-12)]
)
def test_small_delta_against_large_values(rng, offset, delta):
    y = offset + rng.normal(size=101) ** 3
    b = from_data(y, delta=delta).bias[0]
    root = optimize.brentq(lambda c: np.clip(c - y, -delta, delta).sum(),
                           y.min(), y.max(), xtol=1e-15, rtol=1e-15)
    assert b == pytest.approx(root, abs=delta)


@pytest.mark.parametrize(
    "y, w, delta",
    [
        (np.array([0.0, 10.0]), np.array([1.0, 1.0]), 1.0),  # flat on [1, 9]
        (np.array([0.0, 0.0, 10.0, 10.0]), np.ones(4), 2.0),  # flat on [2, 8]
        (np.array([-3.0, 4.0, 50.0]), np.array([2.0, 1.0, 1.0]), 0.5),  # [3.5, 4.5]
    ],
)
def test_non_unique_minimiser_gives_the_midpoint(y, w, delta):
    b = from_data((np.zeros(len(y)), y, w), delta=delta).bias[0]
    # Brute force: the loss on a fine grid; its minimisers form an interval.
    grid = np.linspace(y.min() - 1, y.max() + 1, 200_001)
    loss = np.array([huber_total(y, w, c, delta) for c in grid[::10]])
    fine = grid[::10][loss <= loss.min() + 1e-9]
    assert b == pytest.approx((fine.min() + fine.max()) / 2, abs=1e-3)


def test_per_column_and_expected_loss_is_keras_huber(rng):
    y = np.column_stack([rng.normal(0, 1, 120), rng.standard_t(1, 120) * 10])
    w = rng.random(120)
    init = from_data(Dataset.from_tensor_slices((y, y, w)).batch(25), delta=2.0)
    for j in range(2):
        ref = optimize.minimize_scalar(
            lambda c: huber_total(y[:, j], w, c, 2.0),
            bounds=(y[:, j].min(), y[:, j].max()), method="bounded",
            options={"xatol": 1e-10},
        )
        assert init.bias[j] == pytest.approx(ref.x, abs=1e-6)
    pred = np.broadcast_to(init.bias, y.shape)
    keras_loss = float(keras.losses.Huber(2.0)(y, pred, sample_weight=w))
    assert init.expected_loss == pytest.approx(keras_loss, rel=1e-5)
    mine = np.mean([huber_total(y[:, j], w, init.bias[j], 2.0) / 120 for j in range(2)])
    assert init.expected_loss == pytest.approx(mine, rel=1e-12)


def test_delta_is_kept_and_checked():
    init = HuberBias([1.0, 2.0], delta=3.0)
    assert init.get_config() == {"location": [1.0, 2.0], "delta": 3.0,
                                 "expected_loss": None}
    for delta in (0.0, -1.0, np.inf, np.nan, "2", True):
        with pytest.raises(ValueError, match=r"`delta` must be a positive"):
            HuberBias(1.0, delta=delta)
        with pytest.raises(ValueError, match=r"`delta` must be a positive"):
            from_data(np.ones(3), delta=delta)


@pytest.mark.parametrize(
    "data, match",
    [
        (np.array([]), r"The data is empty"),
        (np.array([np.inf, 1.0]), r"NaN or inf"),
        ((np.zeros(2), np.ones(2), np.zeros(2)), r"weights are 0"),
    ],
)
def test_bad_data(data, match):
    with pytest.raises(ValueError, match=match):
        from_data(data)
