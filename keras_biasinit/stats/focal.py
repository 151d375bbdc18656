"""Exact minimisers of the focal losses over constant predictions (pure NumPy).

Binary focal cross-entropy (`keras.losses.BinaryFocalCrossentropy`) of a
label `t` and a predicted probability `q`:

    FL(t, q) = a(t) * (1 - p_t)^gamma * bce(t, q),
    p_t = t q + (1 - t)(1 - q),   bce = -(t log q + (1 - t) log(1 - q)),

with `a(t) = t alpha + (1 - t)(1 - alpha)` under `apply_class_balancing`, else
1. For `gamma > 0` it is not linear in `t`, so the mean loss of a constant `q`
needs the distinct label values and their weights, not only the mean label:
`label_values.LabelValues` keeps them (two per column for hard labels, also under
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

from typing import Sequence, Tuple, Union

import numpy as np

#: Keras's `backend.epsilon()`: probabilities are clipped to [EPSILON, 1 - EPSILON].
EPSILON = 1e-7
#: The logits searched for a binary focal minimum: sigmoid(+-30) is within
#: 1e-13 of 0 or 1, far beyond Keras's clipping.
_LOGIT_RANGE = 30.0
_GRID = 1201


def binary_focal_loss(
    labels: np.ndarray,
    probabilities: Union[float, np.ndarray],
    *,
    gamma: float = 2.0,
    alpha: float = 0.25,
    apply_class_balancing: bool = False,
) -> np.ndarray:
    """Elementwise binary focal loss, as Keras computes it (labels already
    smoothed; the cross-entropy's probabilities clipped to [1e-7, 1 - 1e-7]).

    Example:

    >>> binary_focal_loss(np.array([1.0, 0.0]), 0.5).round(6).tolist()
    [0.173287, 0.173287]

    (`(1 - 0.5)**2 * log 2` for either label.)
    """
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
