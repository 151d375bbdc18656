"""MeanBias: the mean per output; expected_loss is the (weighted) variance."""


import keras
import numpy as np
import pytest
from tests._tf import tf

from keras_biasinit import MeanBias

pytestmark = pytest.mark.keras  # runs under every backend (conftest.py)

Dataset = tf.data.Dataset


def from_data(data, **kwargs):
    return MeanBias.from_dataset(data, verbose=0, **kwargs)


def test_vector_target_mean_and_variance(rng):
    y = rng.normal(150.0, 70.0, size=257)
    x = np.zeros((257, 4))
    for data in (y, (x, y), Dataset.from_tensor_slices((x, y)),
                 Dataset.from_tensor_slices((x, y[:, None])).batch(32),
                 [y[:100], y[100:]]):
        init = from_data(data)
        np.testing.assert_allclose(init.bias, [y.mean()], rtol=1e-12)
        assert init.expected_loss == pytest.approx(y.var(), rel=1e-10)


def test_per_column_mean_averaged_loss(rng):
    y = rng.normal([0.0, 10.0, -5.0], [1.0, 3.0, 0.5], size=(90, 3))
    init = from_data(Dataset.from_tensor_slices(y).batch(16))
    np.testing.assert_allclose(init.bias, y.mean(axis=0), rtol=1e-12)
    # keras.losses.MeanSquaredError averages over outputs, then over rows.
    assert init.expected_loss == pytest.approx(y.var(axis=0).mean(), rel=1e-10)
    keras_loss = float(keras.losses.MeanSquaredError()(
        y, np.broadcast_to(y.mean(axis=0), y.shape)))
    assert init.expected_loss == pytest.approx(keras_loss, rel=1e-5)


def test_weighted_and_keras_reduction(rng):
    y, w = rng.normal(3.0, 2.0, size=(60, 2)), rng.random(60) * 2
    w[:5] = 0.0
    init = from_data((np.zeros(60), y, w))
    mean = np.average(y, axis=0, weights=w)
    np.testing.assert_allclose(init.bias, mean, rtol=1e-12)
    # Keras's default reduction: sum_i w_i loss_i / rows, not / sum(w).
    weighted_sse = w @ ((y - mean) ** 2)
    assert init.expected_loss == pytest.approx((weighted_sse / 60).mean(), rel=1e-10)
    keras_loss = float(keras.losses.MeanSquaredError()(
        y, np.broadcast_to(mean, y.shape), sample_weight=w))
    assert init.expected_loss == pytest.approx(keras_loss, rel=1e-5)


def test_constructor_and_call():
    init = MeanBias([152.1, -3.5])
    assert init.expected_loss is None
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(init(shape=(2,))), [152.1, -3.5], rtol=1e-6)
    scalar = MeanBias(2.5)  # one number serves any shape
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(scalar(shape=(2, 3))), np.full((2, 3), 2.5))
    with pytest.raises(ValueError, match=r"MeanBias holds 2 values.*\(3,\)"):
        init(shape=(3,))
    with pytest.raises(ValueError, match=r"MeanBias holds 2 values.*\(\)"):
        init(shape=())


@pytest.mark.parametrize(
    "data, match",
    [
        (np.array([]), r"The data is empty"),
        (np.array([1.0, np.nan, 2.0]), r"1 NaN or inf"),
        (np.array([1.0, np.inf]), r"NaN or inf"),
        ((np.zeros(2), np.ones(2), np.zeros(2)), r"No data with positive weight"),
        ([np.ones((2, 2)), np.ones((2, 3))], r"different widths"),
    ],
)
def test_bad_data(data, match):
    with pytest.raises(ValueError, match=match):
        from_data(data)


@pytest.mark.parametrize("mean", [[], [np.nan], [np.inf, 1.0], [[1.0]], "1"])
def test_bad_numbers(mean):
    with pytest.raises(ValueError, match=r"`mean`"):
        MeanBias(mean)


def test_steps_verbose_and_infinite_dataset(capsys):
    ds = Dataset.from_tensor_slices(np.array([1.0, 2.0, 6.0, 100.0])).repeat()
    with pytest.raises(ValueError, match=r"infinite.*Pass `steps=`"):
        from_data(ds)
    init = MeanBias.from_dataset(ds, steps=3, verbose=1)  # 1, 2, 6
    assert init.bias.tolist() == [3.0]
    # The bar counts the 3 examples read (issue 10), not the one merged batch.
    assert "3/3" in capsys.readouterr().out
    MeanBias.from_dataset(ds, steps=3, verbose=0)
    assert capsys.readouterr().out == ""
