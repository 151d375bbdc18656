"""Best constants of the classification losses: one small state per output.

`N` is the number of rows, `W` their total sample weight, `F` the weighted
mean label vector (class frequencies), `F'` the same after label smoothing
(`F (1 - s) + s / K` for softmax, `F (1 - s) + s / 2` for sigmoid): every
cross-entropy here is linear in the label, so its mean over the data is the
cross-entropy of `F'`, and the loss Keras reports at the best constant is
`(W / N)` times the minimum.

- (sparse) categorical cross-entropy: `q = F'`, loss `(W/N) H(F')`.
- binary cross-entropy: `q_j = F'_j`, loss `(W/N) mean_j H_b(F'_j)`.
- KL divergence, with Keras's clipping `c = clip(t, 1e-7, 1)`:
  `q = T / sum T` for `T = E_w[c]`, loss
  `(W/N) (sum_k E_w[c_k log c_k] - sum_k T_k log q_k)`.
- categorical focal: the minimiser of `sum_k alpha_k F'_k (1-q_k)^gamma
  (-log q_k)`; binary focal: per column, over the distinct label values
  (`keras_biasinit.stats.focal`).
"""

from __future__ import annotations

import numpy as np

from keras_biasinit.best_constant._state import Wrapped
from keras_biasinit.initializers.class_prior_bias import ClassPriorBias
from keras_biasinit.initializers.class_prior_bias import _check_distributions
from keras_biasinit.initializers.focal_bias import FocalBias
from keras_biasinit.stats import ClassCounts
from keras_biasinit.stats import Moments
from keras_biasinit.stats.focal import EPSILON
from keras_biasinit.stats.focal import binary_focal_minimizer
from keras_biasinit.stats.focal import categorical_focal_loss
from keras_biasinit.stats.focal import categorical_focal_minimizer
from keras_biasinit.stats.label_values import LabelValues


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-np.sum(p * np.log(p)))


def _binary_entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(p) + (1 - p) * np.log1p(-p))


def _check_labels(y: np.ndarray, name: str) -> None:
    if y.size and not (np.min(y) >= 0 and np.max(y) <= 1):
        raise ValueError(
            f"The labels of {name} must lie in [0, 1] (0/1, soft or multi-label "
            f"targets); found values in [{np.min(y):g}, {np.max(y):g}]."
        )


class _Counts(Wrapped):
    """Class ids or label vectors, counted with `ClassCounts`."""

    def __init__(self, spec, units: int, activation: str, name: str, **_):
        self.spec, self.units, self.name = spec, units, name
        self.softmax = spec.kind in ("categorical_crossentropy",
                                     "sparse_categorical_crossentropy",
                                     "categorical_focal_crossentropy")
        self.statistic = ClassCounts(units)

    def update(self, y: np.ndarray, w) -> None:
        if self.softmax and np.issubdtype(y.dtype, np.integer) and y.ndim == 2 \
                and y.shape[1] != 1:
            # Per-step class ids (n, T): every id is a row, with its example's weight.
            w = None if w is None else np.repeat(w, y.shape[1])
            y = y.reshape(-1)
        if self.softmax and (y.ndim == 1 or y.shape[1] == 1):
            self.statistic.update_ids(y, w)
            return
        if self.softmax:
            _check_distributions(y)
        self.statistic.update_vectors(y, w)

    def _frequencies(self):
        c = self.statistic
        if c.rows == 0 or c.weight <= 0:
            raise ValueError(
                f"No labels with positive weight were seen for {self.name}."
            )
        smoothing = float(self.spec.params.get("label_smoothing", 0.0) or 0.0)
        f = c.counts / c.weight
        shift = 1.0 / self.units if self.softmax else 0.5
        return f * (1.0 - smoothing) + smoothing * shift, c.weight / c.rows

    def _zero(self, f: np.ndarray) -> None:
        bad = np.flatnonzero(f <= 0) if self.softmax else np.flatnonzero(
            (f <= 0) | (f >= 1))
        if bad.size:
            what = "class(es)" if self.softmax else "output(s)"
            raise ValueError(
                f"For {self.name}, {what} {bad[:10].tolist()} "
                f"{'never occur' if self.softmax else 'are always 0 or always 1'} "
                "in the data, so the best bias is infinite. Use `label_smoothing=` "
                "in the loss, or remove them."
            )

    def result(self):
        f, scale = self._frequencies()
        self._zero(f)
        if self.spec.kind == "categorical_focal_crossentropy":
            p = self.spec.params
            q = categorical_focal_minimizer(f, gamma=p["gamma"], alpha=p["alpha"])
            loss = scale * categorical_focal_loss(f, q, gamma=p["gamma"],
                                                  alpha=p["alpha"])
            return FocalBias(q, "softmax", gamma=p["gamma"], alpha=p["alpha"],
                             label_smoothing=p["label_smoothing"],
                             expected_loss=loss)
        if self.softmax:
            return ClassPriorBias(f, "softmax", expected_loss=scale * _entropy(f))
        loss = scale * float(np.mean(_binary_entropy(f)))
        return ClassPriorBias(f, "sigmoid", expected_loss=loss)


class _KLSums(Wrapped):
    """Weighted means of the clipped labels `c` and of `c log c`."""

    def __init__(self, spec, units: int, activation: str, name: str, **_):
        self.units, self.name = units, name
        self.statistic = Moments()

    def update(self, y: np.ndarray, w) -> None:
        if y.ndim != 2 or y.shape[1] != self.units:
            raise ValueError(
                f"KL divergence compares label distributions: the targets of "
                f"{self.name} must have shape (n, {self.units}); received "
                f"{tuple(y.shape)}. One-hot encode class ids first."
            )
        c = np.clip(y.astype(np.float64), EPSILON, 1.0)
        self.statistic.update(np.concatenate([c, c * np.log(c)], axis=1), w)

    def result(self):
        m = self.statistic
        m.check_nonempty()
        t, t_log_t = m.mean[: self.units], m.mean[self.units:]
        q = t / t.sum()
        loss = m.weight / m.rows * float(t_log_t.sum() - np.sum(t * np.log(q)))
        return ClassPriorBias(q, "softmax", expected_loss=max(loss, 0.0))


class _FocalValues(Wrapped):
    """Distinct label values per column, for the binary focal loss."""

    def __init__(self, spec, units: int, activation: str, name: str, **_):
        self.spec, self.units, self.name = spec, units, name
        self.statistic = LabelValues()

    def update(self, y: np.ndarray, w) -> None:
        _check_labels(y, self.name)
        if y.ndim == 2 and y.shape[1] not in (1, self.units):
            raise ValueError(
                f"The labels of {self.name} have {y.shape[1]} columns but the "
                f"output has {self.units} units."
            )
        self.statistic.update(y, w)

    def result(self):
        p = self.spec.params
        logits, sums = binary_focal_minimizer(
            self.statistic.result(), gamma=p["gamma"], alpha=p["alpha"],
            apply_class_balancing=p["apply_class_balancing"],
            label_smoothing=p["label_smoothing"],
        )
        loss = float(sums.mean()) / self.statistic.rows
        return FocalBias(1.0 / (1.0 + np.exp(-logits)), "sigmoid", gamma=p["gamma"],
                         alpha=p["alpha"],
                         apply_class_balancing=p["apply_class_balancing"],
                         label_smoothing=p["label_smoothing"], expected_loss=loss)
