"""Every loss of the table, against SciPy minimising the same Keras loss.

For each (loss, activation) pair, with and without sample weights:
`adapt_output_bias` sets the bias of a model whose output kernel is zero; its
`evaluate` equals `expected_loss`, and both equal the minimum over constants
that SciPy finds on the Keras loss object itself (in float64), starting from
nothing this package computed.
"""

import keras
import numpy as np
import pytest
from scipy import optimize

import keras_biasinit as kbi

pytestmark = pytest.mark.keras

N = 64
_RNG = np.random.default_rng(20)


def _one_hot(ids, k=3):
    return np.eye(k, dtype="float32")[ids]


def _ids():
    return _RNG.choice(3, size=N, p=[0.6, 0.3, 0.1])


def _soft():
    return _RNG.dirichlet([2.0, 1.0, 0.5], size=N).astype("float32")


def _binary(width=1, rate=0.2):
    return (_RNG.uniform(size=(N, width)) < rate).astype("float32")


def _regression(width=1):
    y = 40.0 + 10.0 * _RNG.standard_t(3, size=(N, width))
    y[:3] += 200.0  # outliers
    return y.astype("float32")


def _positive():
    return _RNG.lognormal(1.0, 0.8, size=(N, 1)).astype("float32")


def _counts():
    return _RNG.poisson(3.5, size=(N, 1)).astype("float32")


L = keras.losses
# (id, loss factory (dtype -> Loss), activation, units, targets, separate layer)
CASES = [
    ("cce", lambda d: L.CategoricalCrossentropy(dtype=d), "softmax", 3,
     _one_hot(_ids()), False),
    ("cce_smoothing_softmax_layer",
     lambda d: L.CategoricalCrossentropy(label_smoothing=0.1, dtype=d),
     "softmax", 3, _one_hot(_ids()), True),
    ("cce_logits_soft", lambda d: L.CategoricalCrossentropy(from_logits=True, dtype=d),
     "linear", 3, _soft(), False),
    ("scce", lambda d: L.SparseCategoricalCrossentropy(dtype=d), "softmax", 3,
     _ids(), False),
    ("scce_logits",
     lambda d: L.SparseCategoricalCrossentropy(from_logits=True, dtype=d),
     "linear", 3, _ids()[:, None], False),
    ("kld", lambda d: L.KLDivergence(dtype=d), "softmax", 3, _soft(), False),
    ("bce_multilabel", lambda d: L.BinaryCrossentropy(dtype=d), "sigmoid", 2,
     _binary(2), False),
    ("bce_smoothing_logits",
     lambda d: L.BinaryCrossentropy(from_logits=True, label_smoothing=0.2, dtype=d),
     "linear", 1, _binary(), False),
    ("focal_gamma0", lambda d: L.BinaryFocalCrossentropy(gamma=0.0, dtype=d),
     "sigmoid", 1, _binary(), True),
    ("focal_balanced",
     lambda d: L.BinaryFocalCrossentropy(gamma=2.0, alpha=0.25,
                                         apply_class_balancing=True, dtype=d),
     "sigmoid", 1, _binary(rate=0.08), False),
    ("focal_logits_smoothing",
     lambda d: L.BinaryFocalCrossentropy(gamma=2.0, from_logits=True,
                                         label_smoothing=0.1, dtype=d),
     "linear", 2, _binary(2), False),
    ("focal_soft_labels",
     lambda d: L.BinaryFocalCrossentropy(gamma=1.5, alpha=0.4,
                                         apply_class_balancing=True, dtype=d),
     "sigmoid", 1, np.round(_RNG.beta(0.5, 2.0, size=(N, 1)), 1).astype("float32"),
     False),
    ("categorical_focal",
     lambda d: L.CategoricalFocalCrossentropy(gamma=2.0, alpha=0.25, dtype=d),
     "softmax", 3, _one_hot(_ids()), False),
    ("categorical_focal_alphas_logits",
     lambda d: L.CategoricalFocalCrossentropy(gamma=0.0, alpha=[0.2, 0.3, 0.5],
                                              from_logits=True, label_smoothing=0.1,
                                              dtype=d),
     "linear", 3, _one_hot(_ids()), False),
    ("mse", lambda d: L.MeanSquaredError(dtype=d), "linear", 2, _regression(2), False),
    ("mae", lambda d: L.MeanAbsoluteError(dtype=d), "linear", 1, _regression(), False),
    ("huber", lambda d: L.Huber(delta=5.0, dtype=d), "linear", 1, _regression(), False),
    ("log_cosh", lambda d: L.LogCosh(dtype=d), "linear", 1, _regression(), False),
    ("msle", lambda d: L.MeanSquaredLogarithmicError(dtype=d), "linear", 1,
     _positive(), False),
    ("mape", lambda d: L.MeanAbsolutePercentageError(dtype=d), "linear", 1,
     _positive(), False),
    ("poisson_exp", lambda d: L.Poisson(dtype=d), "exponential", 1, _counts(), False),
    ("poisson_softplus", lambda d: L.Poisson(dtype=d), "softplus", 1, _counts(),
     True),
    ("poisson_linear", lambda d: L.Poisson(dtype=d), "linear", 1, _counts(), False),
]
WEIGHTS = _RNG.uniform(0.2, 3.0, size=N).astype("float32")


def _reference_dtype():
    """float64, unless the backend cannot (JAX without `jax_enable_x64`)."""
    if keras.backend.backend() == "jax":
        import jax

        return "float64" if jax.config.read("jax_enable_x64") else "float32"
    return "float64"


REF = _reference_dtype()
# A float32 reference (JAX without x64) leaves SciPy a float32 landscape.
REF_RTOL = 1e-5 if REF == "float64" else 1e-3


def _model(activation, units, separate):
    layers = [keras.Input((3,))]
    if separate:
        layers += [keras.layers.Dense(units, kernel_initializer="zeros", name="head"),
                   keras.layers.Activation(activation)]
    else:
        layers.append(keras.layers.Dense(units, activation=activation, name="head",
                                         kernel_initializer="zeros"))
    return keras.Sequential(layers)


def _keras_loss_of_constant(loss, activation, y, w):
    """f(b): the Keras loss (in float64 where the backend has it) of the
    constant pre-activation b."""
    y64 = keras.ops.convert_to_tensor(np.asarray(y, REF))
    w64 = None if w is None else keras.ops.convert_to_tensor(w.astype(REF))
    act = keras.activations.get(activation)

    def f(b):
        b = keras.ops.convert_to_tensor(np.atleast_1d(b).astype(REF)[None, :])
        pred = keras.ops.repeat(act(b), N, axis=0)
        return float(keras.ops.convert_to_numpy(loss(y64, pred, sample_weight=w64)))

    return f


def _scipy_minimum(f, activation, units, y):
    """The minimum of f over constants, found by SciPy from a neutral start."""
    if units > 1:
        regression = y.ndim == 2 and y.shape[1] == units and y.max() > 1
        start = np.asarray(y, np.float64).min(axis=0) if regression else np.zeros(units)
        best = optimize.minimize(f, start, method="Nelder-Mead",
                                 options=dict(xatol=1e-9, fatol=1e-13, maxiter=40000))
        return best.fun
    if y.max() <= 1 or activation == "softmax":
        bounds = (-15.0, 15.0)  # a logit
    elif activation == "exponential":
        bounds = (-5.0, 5.0)
    else:
        bounds = (float(y.min()) - 1.0, float(y.max()) + 1.0)
    best = optimize.minimize_scalar(f, bounds=bounds, method="bounded",
                                    options=dict(xatol=1e-10))
    return best.fun


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_best_constant_matches_scipy_and_evaluate(case):
    _, make_loss, activation, units, y, separate = case
    x = np.random.default_rng(1).normal(size=(N, 3)).astype("float32")
    model = _model(activation, units, separate)
    model.compile(loss=make_loss(None))
    for w in (None, WEIGHTS):
        data = (x, y) if w is None else (x, y, w)
        init = kbi.adapt_output_bias(model, data, verbose=0)[model.layers[-1].name]
        measured = model.evaluate(x, y, sample_weight=w, batch_size=N, verbose=0)
        f = _keras_loss_of_constant(make_loss(REF), activation, y, w)
        reference = _scipy_minimum(f, activation, units, y)
        # SciPy's minimum is never below ours (ours is exact) ...
        assert reference >= init.expected_loss - REF_RTOL / 100 * abs(
            init.expected_loss) - 1e-9
        # ... and ours is that minimum, and what Keras reports.
        assert init.expected_loss == pytest.approx(reference, rel=REF_RTOL, abs=1e-8)
        assert measured == pytest.approx(init.expected_loss, rel=1e-5, abs=1e-6)
        # The model's bias is the initializer's.
        bias = keras.ops.convert_to_numpy(model.get_layer("head").bias)
        np.testing.assert_allclose(bias, np.broadcast_to(init.bias, bias.shape),
                                   rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("positives, best, at_prior", [
    (85, 0.02781, 0.04430),  # the SPEC's figures: a realised positive rate of 0.085
    (80, 0.02665, 0.04312),  # exactly 0.08 (Keras's own loss on a grid agrees)
])
def test_focal_figure_from_the_spec(positives, best, at_prior):
    """Positive rate ~0.08, gamma 2, alpha 0.25, class balancing: the optimum
    (q ~ 0.21) beats the prior logit that RetinaNet-style heads use by ~40%.
    The SPEC's 0.0278 vs 0.0443 are those of 85 positives in 1000 (a sample
    drawn at 0.08); exactly 80 give 0.0267 vs 0.0431."""
    y = np.zeros((1000, 1), "float32")
    y[:positives] = 1.0
    x = np.zeros((1000, 3), "float32")
    loss = keras.losses.BinaryFocalCrossentropy(gamma=2.0, alpha=0.25,
                                                apply_class_balancing=True)
    model = _model("sigmoid", 1, False)
    model.compile(loss=loss)
    init = kbi.adapt_output_bias(model, (x, y), verbose=0)["head"]
    assert isinstance(init, kbi.FocalBias)
    assert init.expected_loss == pytest.approx(best, abs=5e-6)
    assert float(init.probabilities[0]) == pytest.approx(0.213, abs=3e-3)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(init.expected_loss,
                                                            rel=1e-5)
    # A grid over q of Keras's own loss finds no lower constant.
    grid = np.linspace(0.15, 0.28, 131)
    on_grid = [float(loss(y, np.full((1000, 1), q, "float32"))) for q in grid]
    assert min(on_grid) >= init.expected_loss - 1e-6
    rate = positives / 1000
    assert float(loss(y, np.full((1000, 1), rate, "float32"))) == pytest.approx(
        at_prior, abs=5e-6)
    # The prior logit is what ClassPriorBias gives: the optimum beats it.
    model.get_layer("head").bias.assign([np.log(rate / (1 - rate))])
    assert model.evaluate(x, y, verbose=0) == pytest.approx(at_prior, abs=5e-6)
