"""Best constants of the regression losses: one small state per output.

With `N` rows, weights `w_i` (1 without) and `W = sum_i w_i`, each loss Keras
reports is `sum_i w_i loss(y_i, c) / N`, averaged over the output columns:

- mean squared error: `c = E_w[y]`, loss `sum_i w_i (y_i - c)^2 / N`;
- mean absolute error: `c` = weighted median, loss `sum_i w_i |y_i - c| / N`;
- Huber(delta): `c` = Huber location (`keras_biasinit.stats.huber`);
- log-cosh: `c` = root of `sum_i w_i tanh(c - y_i)`;
- mean squared logarithmic error, with Keras's `max(., 1e-7)`: for
  `u = log1p(max(y, 1e-7))`, `c = expm1(E_w[u])`, loss
  `sum_i w_i (u_i - E_w[u])^2 / N`;
- mean absolute percentage error, `100 |y - c| / max(|y|, 1e-7)`: `c` = the
  weighted median of `y` with weights `w_i / max(|y_i|, 1e-7)`;
- Poisson, `c - y log(c + 1e-7)`: `c = E_w[y] - 1e-7`, loss
  `(W/N) (c - E_w[y] log E_w[y])` (negative when the mean exceeds e).

Order statistics (median, Huber, log-cosh, MAPE) buffer the output's values
during the pass (`keras_biasinit.stats.buffer`) and solve exactly after it.
"""

from __future__ import annotations

import numpy as np

from keras_biasinit.initializers.constant_bias import ConstantBias
from keras_biasinit.initializers.huber_bias import HuberBias
from keras_biasinit.initializers.link_bias import LinkBias
from keras_biasinit.initializers.mean_bias import MeanBias
from keras_biasinit.initializers.median_bias import MedianBias
from keras_biasinit.stats import Moments
from keras_biasinit.stats import huber_location
from keras_biasinit.stats import weighted_median
from keras_biasinit.stats.buffer import ValueBuffer
from keras_biasinit.stats.focal import EPSILON
from keras_biasinit.stats.log_cosh import log_cosh
from keras_biasinit.stats.log_cosh import log_cosh_location
from keras_biasinit.stats.quantile import quantile_of_arrays


def _check_width(y: np.ndarray, units: int, name: str) -> None:
    width = 1 if y.ndim == 1 else int(np.prod(y.shape[1:]))
    if width not in (1, units):
        raise ValueError(
            f"The targets of {name} have {width} columns but the output has "
            f"{units} units: pass targets of shape (n, {units}) (or (n,) for one "
            "target shared by every unit)."
        )


class _Moments:
    """Mean and variance: MSE, MSLE (of `log1p(max(y, eps))`) and Poisson."""

    def __init__(self, spec, units: int, activation: str, name: str, **_):
        self.kind, self.units, self.activation, self.name = (
            spec.kind, units, activation, name)
        self.moments = Moments()

    def update(self, y: np.ndarray, w) -> None:
        _check_width(y, self.units, self.name)
        if self.kind == "mean_squared_logarithmic_error":
            y = np.log1p(np.maximum(y.astype(np.float64), EPSILON))
        self.moments.update(y, w)

    def result(self):
        m = self.moments
        m.check_nonempty()
        if self.kind == "mean_squared_error":
            return MeanBias(m.mean, expected_loss=float(np.mean(m.m2 / m.rows)))
        if self.kind == "mean_squared_logarithmic_error":
            return ConstantBias(np.expm1(m.mean), self.kind,
                                expected_loss=float(np.mean(m.m2 / m.rows)))
        if (m.mean <= EPSILON).any():
            raise ValueError(
                f"The mean target of {self.name} is {m.mean.min():g}: a Poisson rate "
                "must be positive, and counts that are all 0 have no finite "
                "best bias. Check the targets (non-negative counts)."
            )
        rate = m.mean - EPSILON
        loss = m.weight / m.rows * float(np.mean(rate - m.mean * np.log(m.mean)))
        return LinkBias(rate, self.activation, expected_loss=loss)


class _Buffered:
    """The output's values, buffered: MAE, Huber, log-cosh, MAPE."""

    def __init__(self, spec, units: int, activation: str, name: str,
                 memory_budget: int = 256 * 2**20, **_):
        self.spec, self.units, self.name = spec, units, name
        self.budget = memory_budget
        self.buffer = ValueBuffer(memory_budget, name)

    def update(self, y: np.ndarray, w) -> None:
        _check_width(y, self.units, self.name)
        self.buffer.update(y, w)

    def result(self):
        kind, rows = self.spec.kind, self.buffer.rows
        if kind == "mean_absolute_error":
            r = weighted_median(self._batches(), memory_budget=4 * self.budget)
            return MedianBias(r.median,
                              expected_loss=float(r.mean_absolute_deviation.mean()))
        if kind == "huber":
            delta = float(self.spec.params["delta"])
            r = huber_location(self._batches(), delta=delta,
                               memory_budget=4 * self.budget)
            return HuberBias(r.location, delta, expected_loss=float(r.mean_loss.mean()))
        y, w = self.buffer.arrays()
        weights = np.ones(rows) if w is None else w
        if kind == "log_cosh":
            c = log_cosh_location(y, w)
            loss = float(np.mean(weights @ log_cosh(c - y))) / rows
            return ConstantBias(c, kind, expected_loss=loss)
        scale = np.maximum(np.abs(y), EPSILON)  # mean_absolute_percentage_error
        c = np.array([
            quantile_of_arrays(y[:, [j]], 0.5, weights / scale[:, j])[0]
            for j in range(y.shape[1])
        ])
        loss = 100.0 * float(np.mean(weights @ (np.abs(y - c) / scale))) / rows
        return ConstantBias(c, kind, expected_loss=loss)

    def _batches(self):
        return [self.buffer.arrays()]
