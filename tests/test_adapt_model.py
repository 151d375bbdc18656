"""adapt_model: the kernels' scales, then the output bias; the loss at init
is then the one the bias predicts, on every test model."""

import keras
import numpy as np
import pytest

import keras_biasinit as kbi
from tests._network_models import BUILDERS

pytestmark = pytest.mark.keras


@pytest.mark.parametrize("build", BUILDERS, ids=lambda f: f.__name__)
def test_adapt_model_then_verify_loss_at_init_is_ok(build):
    keras.utils.set_random_seed(11)
    model, x, y, loss = build(np.random.default_rng(11))
    model.compile(loss=loss)
    before = kbi.verify_loss_at_init(model, (x, y), expected=1.0)
    scales, biases = kbi.adapt_model(model, (x, y), verbose=0)
    out = model.layers[-1]
    assert set(biases) == {out.name}
    assert scales[out.name] < 1  # the output kernel scaled down, never up
    check = kbi.verify_loss_at_init(model, (x, y))
    assert check.ok, str(check)
    # The check's expected loss is computed independently here, in NumPy.
    assert check.expected == pytest.approx(_best_constant_loss(loss, y), rel=1e-4)
    assert before.measured != pytest.approx(check.measured, rel=0.05)


def _best_constant_loss(loss, y):
    y = np.asarray(y, np.float64)
    if loss == "mse":
        return float(np.mean((y - y.mean(0)) ** 2))
    if loss == "binary_crossentropy":
        p = y.mean()
        return float(-(p * np.log(p) + (1 - p) * np.log(1 - p)))
    f = np.bincount(y.astype(int).ravel()) / y.size
    return float(-(f * np.log(f)).sum())
