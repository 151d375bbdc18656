"""MedianBias: the exact (weighted) median; expected_loss the mean |y - median|."""


import keras
import numpy as np
import pytest
from tests._tf import tf

from keras_biasinit import MedianBias

pytestmark = pytest.mark.keras  # runs under every backend (conftest.py)

Dataset = tf.data.Dataset


def from_data(data, **kwargs):
    return MedianBias.from_dataset(data, verbose=0, **kwargs)


def brute_force_weighted_median(y, w):
    """Midpoint of the set of minimisers of sum w |y - b| (it is an interval)."""
    candidates = np.unique(y[w > 0])
    loss = np.array([(w * np.abs(y - c)).sum() for c in candidates])
    best = candidates[loss <= loss.min() * (1 + 1e-12)]
    return (best.min() + best.max()) / 2


@pytest.mark.parametrize("n", [1, 2, 101, 256])
def test_unit_weights_match_np_median(rng, n):
    y = rng.normal(size=(n, 2)) * [1.0, 100.0]
    init = from_data(Dataset.from_tensor_slices(y).batch(7))
    np.testing.assert_array_equal(init.bias, np.median(y, axis=0))
    mad = np.abs(y - np.median(y, axis=0)).mean(axis=0).mean()
    assert init.expected_loss == pytest.approx(mad, rel=1e-12)


def test_even_count_and_ties():
    assert from_data(np.array([1.0, 2.0, 3.0, 100.0])).bias.tolist() == [2.5]
    assert from_data(np.array([5.0, 5.0, 1.0, 9.0])).bias.tolist() == [5.0]
    assert from_data(np.array([3, 3, 3])).bias.tolist() == [3.0]


def test_weighted_median_against_brute_force(rng):
    for _ in range(40):
        n = int(rng.integers(1, 15))
        y = np.round(rng.normal(size=n) * 3)  # many ties
        w = rng.choice([0.0, 0.5, 1.0, 2.0], size=n)
        w[0] = max(w[0], 1.0)
        init = from_data((y, y, w))
        assert init.bias[0] == brute_force_weighted_median(y, w)


def test_weighted_midpoint_convention():
    # Cumulative weight reaches exactly half at 1: every b in [1, 4] minimises.
    y, w = np.array([1.0, 4.0, 9.0]), np.array([2.0, 1.0, 1.0])
    init = from_data((np.zeros(3), y, w))
    assert init.bias.tolist() == [2.5]


def test_expected_loss_is_keras_mae_with_weights(rng):
    y, w = rng.normal(10.0, 4.0, size=(80, 2)), rng.random(80)
    init = from_data((np.zeros(80), y, w))
    pred = np.broadcast_to(init.bias, y.shape)
    expected = (w @ np.abs(y - init.bias) / 80).mean()
    assert init.expected_loss == pytest.approx(expected, rel=1e-12)
    keras_loss = float(keras.losses.MeanAbsoluteError()(y, pred, sample_weight=w))
    assert init.expected_loss == pytest.approx(keras_loss, rel=1e-5)


@pytest.mark.parametrize(
    "data, match",
    [
        (np.array([]), r"The data is empty"),
        (np.array([1.0, np.nan]), r"NaN or inf"),
        ((np.zeros(2), np.ones(2), np.zeros(2)), r"weights are 0"),
    ],
)
def test_bad_data(data, match):
    with pytest.raises(ValueError, match=match):
        from_data(data)


def test_constructor():
    init = MedianBias(140.5)
    assert init.get_config() == {"median": 140.5, "expected_loss": None}
    with pytest.raises(ValueError, match=r"`median` must hold finite numbers"):
        MedianBias([1.0, np.nan])
