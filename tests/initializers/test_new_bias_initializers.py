"""FocalBias, LinkBias, ConstantBias: values, checks, config round trips."""

import json

import keras
import numpy as np
import pytest
from scipy import special

import keras_biasinit as kbi

pytestmark = pytest.mark.keras

CASES = [
    kbi.FocalBias([0.2, 0.4], gamma=3.0, alpha=0.4, apply_class_balancing=True,
                  label_smoothing=0.1, expected_loss=0.03),
    kbi.FocalBias([0.5, 0.3, 0.2], "softmax", alpha=[0.1, 0.2, 0.7]),
    kbi.LinkBias([3.5, 0.2], link="softplus", expected_loss=-0.84),
    kbi.LinkBias(2.0, link="linear"),
    kbi.ConstantBias([1.5, -2.0], loss="mean_absolute_percentage_error",
                     expected_loss=12.5),
]


@pytest.mark.parametrize("init", CASES, ids=lambda i: repr(i)[:40])
def test_config_round_trips(init):
    config = init.get_config()
    again = type(init).from_config(json.loads(json.dumps(config, sort_keys=True)))
    assert again.get_config() == config
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(init))
    np.testing.assert_array_equal(restored.bias, init.bias)
    value = keras.ops.convert_to_numpy(init((4, init.bias.size)))
    np.testing.assert_allclose(value, np.broadcast_to(init.bias, (4, init.bias.size)),
                               rtol=1e-6)


def test_values():
    np.testing.assert_allclose(kbi.FocalBias([0.2]).bias, special.logit(0.2))
    soft = kbi.FocalBias([2.0, 1.0, 1.0], "softmax")
    np.testing.assert_allclose(special.softmax(soft.bias), [0.5, 0.25, 0.25])
    rates = np.array([3.5, 0.2])
    np.testing.assert_allclose(kbi.LinkBias(rates).bias, np.log(rates))
    softplus = kbi.LinkBias(rates, link="softplus").bias
    np.testing.assert_allclose(np.logaddexp(0, softplus), rates, rtol=1e-12)
    big = kbi.LinkBias(800.0, link="softplus").bias  # no overflow
    assert big[0] == pytest.approx(800.0)


@pytest.mark.parametrize("make, words", [
    (lambda: kbi.FocalBias([0.0]), "(0, 1)"),
    (lambda: kbi.FocalBias([0.5], gamma=-1), "gamma"),
    (lambda: kbi.FocalBias([0.5], alpha=2), "alpha"),
    (lambda: kbi.FocalBias([0.5], "relu"), "activation"),
    (lambda: kbi.LinkBias(0.0), "positive"),
    (lambda: kbi.LinkBias(1.0, link="log"), "link"),
    (lambda: kbi.LinkBias(1.0, expected_loss=float("inf")), "expected_loss"),
    (lambda: kbi.ConstantBias(1.0, loss="mse"), "loss"),
])
def test_bad_arguments(make, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        make()
