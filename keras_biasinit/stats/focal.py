"""Exact minimisers of the focal losses over constant predictions (pure NumPy).

Binary focal cross-entropy (`keras.losses.BinaryFocalCrossentropy`) of a
label `t` and a predicted probability `q`:

    FL(t, q) = a(t) * (1 - p_t)^gamma * bce(t, q),
    p_t = t q + (1 - t)(1 - q),   bce = -(t log q + (1 - t) log(1 - q)),

with `a(t) = t alpha + (1 - t)(1 - alpha)` under `apply_class_balancing`, else
1. For `gamma > 0` it is not linear in `t`, so the mean loss of a constant `q`
needs the distinct label values and their weights, not only the mean label:
`LabelValues` keeps them (two per column for hard labels, also under
`label_smoothing`). `binary_focal_minimizer` finds the best logit per column
on a grid of logits, refined by golden-section search: the mean loss is
smooth in the logit and, for hard labels, convex in `q` (each of its two terms
is), so the grid's best point brackets the minimum.

Categorical focal cross-entropy (`keras.losses.CategoricalFocalCrossentropy`)
is linear in the label vector: `sum_k alpha_k (1 - q_k)^gamma (-t_k log q_k)`,
so its mean over the data needs only the mean label vector `T` (as
`ClassCounts` sums it). Each term `-(1 - q)^gamma log q` is convex on (0, 1)
(checked on a grid for gamma in [0, 20]), so the minimiser over the simplex
is the KKT point `c_k g'(q_k) = -lambda` with `sum q_k = 1`, `c_k = alpha_k
T_k`, found by nested bisection.

Reference:
    - [Lin et al., 2017, "Focal Loss for Dense Object Detection"](
      https://arxiv.org/abs/1708.02002)
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from keras_biasinit.stats._checks import as_columns
from keras_biasinit.stats._checks import check_weights

#: Keras's `backend.epsilon()`: probabilities are clipped to [EPSILON, 1 - EPSILON].
EPSILON = 1e-7
#: The logits searched for a binary focal minimum: sigmoid(+-30) is within
#: 1e-13 of 0 or 1, far beyond Keras's clipping.
_LOGIT_RANGE = 30.0
_GRID = 1201


class LabelValues:
    """Distinct label values of each column with their summed weights.

    Mergeable; holds at most `max_values` distinct values per column (soft
    labels with many distinct values need more and are an error that says so).

    Example:

    >>> s = LabelValues().update(np.array([[0.0], [1.0], [1.0]]))
    >>> values, weights = s.result()[0]
    >>> values.tolist(), weights.tolist()
    ([0.0, 1.0], [1.0, 2.0])
    """

    def __init__(self, max_values: int = 1 << 16) -> None:
        self.max_values = int(max_values)
        self.rows = 0
        self.weight = 0.0
        self._columns: Optional[List[Tuple[np.ndarray, np.ndarray]]] = None

    def update(self, values: np.ndarray, weights: Optional[np.ndarray] = None):
        """Adds a batch of labels `(n,)` or `(n, d)` with weights `(n,)`."""
        y = as_columns(values)
        w = check_weights(weights, y.shape[0])
        w_all = np.ones(y.shape[0]) if w is None else w
        batch = LabelValues(self.max_values)
        batch.rows, batch.weight = y.shape[0], float(w_all.sum())
        batch._columns = []
        for j in range(y.shape[1]):
            unique, inverse = np.unique(y[:, j], return_inverse=True)
            batch._columns.append(
                (unique, np.bincount(inverse, weights=w_all, minlength=unique.size))
            )
        return self.merge(batch)

    def merge(self, other: "LabelValues") -> "LabelValues":
        """Combines `other` into this state."""
        if other._columns is None:
            return self
        if self._columns is None:
            self._columns = [(v.copy(), w.copy()) for v, w in other._columns]
        elif len(other._columns) != len(self._columns):
            raise ValueError(
                f"Batches have different widths: {len(self._columns)} label "
                f"columns, then {len(other._columns)}. Every batch must have the "
                "same target shape."
            )
        else:
            merged = []
            for (v1, w1), (v2, w2) in zip(self._columns, other._columns):
                unique, inverse = np.unique(np.concatenate([v1, v2]),
                                            return_inverse=True)
                merged.append((unique, np.bincount(
                    inverse, weights=np.concatenate([w1, w2]), minlength=unique.size
                )))
            self._columns = merged
        for values, _ in self._columns:
            if values.size > self.max_values:
                raise ValueError(
                    f"The labels hold more than {self.max_values} distinct values in "
                    "one column; the exact focal loss of soft labels needs each "
                    "distinct value. Round the soft labels (e.g. to 1e-4) first."
                )
        self.rows += other.rows
        self.weight += other.weight
        return self

    def to_arrays(self) -> Dict[str, np.ndarray]:
        columns = self._columns or []
        return {
            "rows": np.asarray([self.rows]), "weight": np.asarray([self.weight]),
            "sizes": np.asarray([v.size for v, _ in columns], np.int64),
            "values": np.concatenate([v for v, _ in columns] or [np.zeros(0)]),
            "weights": np.concatenate([w for _, w in columns] or [np.zeros(0)]),
        }

    def from_arrays(self, arrays: Dict[str, np.ndarray]) -> "LabelValues":
        state = LabelValues(self.max_values)
        state.rows = int(arrays["rows"][0])
        state.weight = float(arrays["weight"][0])
        sizes = np.asarray(arrays["sizes"], np.int64)
        if sizes.size:
            ends = np.cumsum(sizes)[:-1]
            values = np.split(np.asarray(arrays["values"], np.float64), ends)
            weights = np.split(np.asarray(arrays["weights"], np.float64), ends)
            state._columns = list(zip(values, weights))
        return state

    def result(self) -> List[Tuple[np.ndarray, np.ndarray]]:
        """Per column, the sorted distinct values and their summed weights."""
        if self._columns is None:
            raise ValueError("No labels were seen: the data is empty.")
        return [(v.copy(), w.copy()) for v, w in self._columns]


def binary_focal_loss(
    labels: np.ndarray,
    probabilities: Union[float, np.ndarray],
    *,
    gamma: float = 2.0,
    alpha: float = 0.25,
    apply_class_balancing: bool = False,
) -> np.ndarray:
    """Elementwise binary focal loss, as Keras computes it (labels already
    smoothed; the cross-entropy's probabilities clipped to [1e-7, 1 - 1e-7])."""
    t = np.asarray(labels, dtype=np.float64)
    q = np.asarray(probabilities, dtype=np.float64)
    clipped = np.clip(q, EPSILON, 1.0 - EPSILON)
    bce = -(t * np.log(clipped) + (1.0 - t) * np.log1p(-clipped))
    p_t = t * q + (1.0 - t) * (1.0 - q)
    loss = np.power(1.0 - p_t, gamma) * bce
    if apply_class_balancing:
        loss = loss * (t * alpha + (1.0 - t) * (1.0 - alpha))
    return loss


def _golden(f, low: float, high: float, iterations: int = 100) -> float:
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = low, high
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(iterations):
        if b - a <= 1e-13 * max(1.0, abs(a)):
            break
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = f(d)
    return (a + b) / 2.0


def binary_focal_minimizer(
    columns: Sequence[Tuple[np.ndarray, np.ndarray]],
    *,
    gamma: float = 2.0,
    alpha: float = 0.25,
    apply_class_balancing: bool = False,
    label_smoothing: float = 0.0,
) -> Tuple[np.ndarray, np.ndarray]:
    """The best logit per column and the summed weighted loss it leaves.

    Args:
        columns: per column, distinct label values and their summed weights
            (`LabelValues.result()`); labels before smoothing.
        gamma, alpha, apply_class_balancing, label_smoothing: the loss's own.

    Returns:
        `(logits, loss_sums)`: per column the minimising logit `z` (the bias
        of a sigmoid output) and `sum_v W_v FL(v, sigmoid(z))`.
    """
    grid = np.linspace(-_LOGIT_RANGE, _LOGIT_RANGE, _GRID)
    logits, sums = [], []
    for j, (values, weights) in enumerate(columns):
        keep = weights > 0
        t = values[keep] * (1.0 - label_smoothing) + 0.5 * label_smoothing
        w = weights[keep]

        def total(z, t=t, w=w):
            q = 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))
            loss = binary_focal_loss(t[:, None], np.atleast_1d(q)[None, :],
                                     gamma=gamma, alpha=alpha,
                                     apply_class_balancing=apply_class_balancing)
            return w @ loss

        on_grid = total(grid)
        best = int(np.argmin(on_grid))
        if best in (0, grid.size - 1):
            side = "0" if best == 0 else "1"
            raise ValueError(
                f"Output column {j}: every label is {side} (with positive weight), "
                "so the focal loss keeps falling as the bias goes to "
                f"{'-' if best == 0 else '+'}infinity and has no finite best "
                "constant. Use `label_smoothing=` in the loss, or remove that "
                "output."
            )
        z = _golden(lambda v: float(total(v)[0]), grid[best - 1], grid[best + 1])
        logits.append(z)
        sums.append(float(total(z)[0]))
    return np.array(logits), np.array(sums)


def categorical_focal_minimizer(
    mean_labels: np.ndarray,
    *,
    gamma: float = 2.0,
    alpha: Union[float, Sequence[float]] = 0.25,
) -> np.ndarray:
    """The class probabilities `q` minimising `sum_k alpha_k T_k (1 - q_k)^gamma
    (-log q_k)` over the simplex, for the (smoothed) mean label vector `T`."""
    t = np.asarray(mean_labels, dtype=np.float64)
    c = np.broadcast_to(np.asarray(alpha, dtype=np.float64), t.shape) * t
    zero = np.flatnonzero(c <= 0)
    if zero.size:
        raise ValueError(
            f"Class(es) {zero[:10].tolist()} have zero frequency (or alpha 0), so "
            "the focal loss is lowest with their probability at 0: their bias "
            "would be -inf. Use `label_smoothing=` in the loss, or remove those "
            "classes."
        )

    def slope(log_q):  # -g'(q) > 0, decreasing in q, for g = -(1-q)^gamma log q
        q = np.exp(log_q)
        one_minus = -np.expm1(log_q)
        return np.power(one_minus, gamma) / q - gamma * np.power(
            one_minus, gamma - 1.0) * log_q if gamma else 1.0 / q

    def probabilities(log_lam):
        lo, hi = np.full(t.shape, -745.0), np.zeros(t.shape)
        target = np.exp(log_lam) / c  # slope(q_k) = lambda / c_k
        for _ in range(120):
            mid = (lo + hi) / 2.0
            too_small = slope(mid) > target  # q too small: slope too steep
            lo, hi = np.where(too_small, mid, lo), np.where(too_small, hi, mid)
        return np.exp((lo + hi) / 2.0)

    lo, hi = -60.0, 60.0  # log lambda; sum q decreases in lambda
    for _ in range(120):
        mid = (lo + hi) / 2.0
        if probabilities(mid).sum() > 1.0:
            lo = mid
        else:
            hi = mid
    q = probabilities((lo + hi) / 2.0)
    return q / q.sum()


def categorical_focal_loss(
    mean_labels: np.ndarray,
    probabilities: np.ndarray,
    *,
    gamma: float = 2.0,
    alpha: Union[float, Sequence[float]] = 0.25,
) -> float:
    """`sum_k alpha_k T_k (1 - q_k)^gamma (-log q_k)`, with Keras's clipping."""
    t = np.asarray(mean_labels, dtype=np.float64)
    q = np.clip(np.asarray(probabilities, dtype=np.float64), EPSILON, 1 - EPSILON)
    a = np.broadcast_to(np.asarray(alpha, dtype=np.float64), t.shape)
    return float(np.sum(a * np.power(1.0 - q, gamma) * (-t * np.log(q))))
