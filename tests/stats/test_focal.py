"""The focal minimisers, against SciPy and NumPy."""

import numpy as np
import pytest
from scipy import optimize, special

from keras_biasinit.stats.focal import binary_focal_loss
from keras_biasinit.stats.focal import binary_focal_minimizer
from keras_biasinit.stats.focal import categorical_focal_minimizer
from keras_biasinit.stats.label_values import LabelValues


@pytest.mark.parametrize("gamma, alpha, balance, smoothing", [
    (0.0, 0.25, False, 0.0), (2.0, 0.25, True, 0.0), (5.0, 0.9, True, 0.2),
    (1.0, 0.5, False, 0.0),
])
def test_binary_minimizer_matches_scipy(rng, gamma, alpha, balance, smoothing):
    labels = np.round(rng.beta(0.3, 1.5, size=300), 2)  # soft, many values
    w = rng.uniform(0.5, 1.5, size=300)
    cols = LabelValues().update(labels, w).result()
    kw = dict(gamma=gamma, alpha=alpha, apply_class_balancing=balance)
    z, sums = binary_focal_minimizer(cols, label_smoothing=smoothing, **kw)
    t = labels * (1 - smoothing) + 0.5 * smoothing

    def f(logit):
        return float(w @ binary_focal_loss(t, special.expit(logit), **kw))

    ref = optimize.minimize_scalar(f, bounds=(-20, 20), method="bounded",
                                   options=dict(xatol=1e-11))
    assert sums[0] == pytest.approx(ref.fun, rel=1e-10)
    assert z[0] == pytest.approx(ref.x, abs=1e-5)


def test_binary_gamma0_is_the_prior_logit():
    cols = [(np.array([0.0, 1.0]), np.array([92.0, 8.0]))]
    z, _ = binary_focal_minimizer(cols, gamma=0.0)
    assert z[0] == pytest.approx(np.log(0.08 / 0.92), abs=1e-8)


def test_binary_all_zero_labels_has_no_best_constant():
    with pytest.raises(ValueError, match="every label is 0"):
        binary_focal_minimizer([(np.array([0.0]), np.array([5.0]))])


@pytest.mark.parametrize("gamma, alpha", [(0.0, [0.2, 0.3, 0.5]), (2.0, 0.25),
                                          (4.0, [1.0, 0.1, 0.5])])
def test_categorical_minimizer_matches_scipy(gamma, alpha):
    t = np.array([0.7, 0.2, 0.1])
    q = categorical_focal_minimizer(t, gamma=gamma, alpha=alpha)
    a = np.broadcast_to(alpha, 3)

    def f(z):
        p = special.softmax(z)
        return float(np.sum(a * (1 - p) ** gamma * -t * np.log(p)))

    ref = optimize.minimize(f, np.zeros(3), method="Nelder-Mead",
                            options=dict(xatol=1e-10, fatol=1e-15, maxiter=20000))
    assert f(np.log(q)) <= ref.fun + 1e-12
    np.testing.assert_allclose(q, special.softmax(ref.x), atol=1e-5)
    if gamma == 0:  # alpha-weighted cross-entropy: q proportional to alpha * t
        np.testing.assert_allclose(q, a * t / np.sum(a * t), rtol=1e-9)
