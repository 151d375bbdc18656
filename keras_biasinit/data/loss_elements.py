"""One output's batch -> the rows its Keras loss counts, with Keras's weights.

A Keras loss reduces the last axis of its targets and weighs every other
element (an example, a time step, a pixel) by its sample weight. With a mask
(the model output's Keras mask, and/or `ignore_class` of
`SparseCategoricalCrossentropy`), Keras 3 normalises each batch by its
unmasked elements (`keras.losses.Loss.__call__` -> `apply_mask`), and
`evaluate` averages the batch losses weighted by their number of examples:

    loss = (1 / N) sum_b n_b / V_b sum_{i in b, unmasked} w_i l_i

with `N` examples in all, `n_b` examples in batch `b`, `V_b` its unmasked
elements (all of them without a mask), `w_i` an element's sample weight
times its class weight. `loss_rows` turns one batch into the unmasked rows
and the weights `u_i = w_i n_b / V_b`: a state fed them finds the constant
that minimises `loss` exactly, and its `sum_i u_i l_i / rows` times
`rows / N` (`RowsPerExample`) is the loss `evaluate` reports.

`class_weight` maps labels to classes as `fit` does
(`keras.src.trainers.data_adapters`): the argmax of the last axis for label
vectors, the rounded value for ids and single binary labels; a class the dict
does not name weighs 1.

Example:

>>> rows, weights, n = loss_rows(np.array([[1, 2, 0], [2, 0, 0]]), None,
...                              np.array([[1, 1, 0], [1, 0, 0]], bool),
...                              LossElements(ids=True))
>>> rows.tolist(), weights.tolist(), n
([1, 2, 2], [0.6666666666666666, 0.6666666666666666, 0.6666666666666666], 2)
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Tuple

import numpy as np

from keras_biasinit.data.elements import _to_batch


@dataclasses.dataclass(frozen=True)
class LossElements:
    """How one output's loss counts its elements.

    Attributes:
        ids: softmax targets: integer ids of any shape are one row each.
        sparse: `SparseCategoricalCrossentropy`: float targets are ids too
            (Keras casts them to integers).
        class_weight: `fit`'s `{class: weight}`, or None.
        ignore_class: `SparseCategoricalCrossentropy(ignore_class=...)`, or None.
    """

    ids: bool = False
    sparse: bool = False
    class_weight: Optional[Mapping[int, float]] = None
    ignore_class: Optional[int] = None


def check_class_weight(class_weight: Any) -> Optional[dict]:
    """`class_weight` as `{int: float}`, checked as `fit` would need it."""
    if class_weight is None:
        return None
    if not isinstance(class_weight, Mapping):
        raise TypeError(
            "`class_weight` must be a dict mapping class ids to weights, as in "
            f"`Model.fit`. Received: class_weight={class_weight!r}"
        )
    checked = {}
    for key, value in class_weight.items():
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)):
            raise TypeError(
                f"`class_weight` keys must be integer class ids. Received key {key!r}."
            )
        weight = float(value)
        if not np.isfinite(weight) or weight < 0:
            raise ValueError(
                "`class_weight` values must be finite and non-negative. Received "
                f"class_weight[{key}]={value!r}."
            )
        checked[int(key)] = weight
    return checked


def class_of_labels(y: np.ndarray) -> np.ndarray:
    """Each label's class as `fit`'s `class_weight` reads it: the argmax of
    the last axis for vectors, the rounded id otherwise (shape `y.shape[:-1]`
    for vectors and trailing-1 ids, `y.shape` for `(n,)`)."""
    if y.ndim >= 2:
        y = np.argmax(y, axis=-1) if y.shape[-1] != 1 else y[..., 0]
    return np.round(y).astype(np.int64)


def _class_weights(y: np.ndarray, class_weight: Mapping[int, float],
                   ids: bool) -> np.ndarray:
    """One class weight per example (or per element of per-step targets)."""
    check_class_weight_shape(y.shape, y.dtype.kind in "iu", ids)
    classes = class_of_labels(y)
    found, where = np.unique(classes, return_inverse=True)
    table = np.asarray([class_weight.get(int(c), 1.0) for c in found], np.float64)
    return table[where].reshape(classes.shape)


def check_class_weight_shape(shape: Tuple, integer: bool, ids: bool) -> None:
    """Per-step ids `(n, T)` (no trailing axis of 1) cannot take `class_weight`
    as `fit` reads it: the error says what to do."""
    y_shape = tuple(shape)
    if ids and integer and len(y_shape) >= 2 and y_shape[-1] != 1:
        raise ValueError(
            f"`class_weight` with class ids of shape {y_shape}: Keras's `fit` reads "
            "their last axis as a one-hot vector and weighs each example by its "
            "argmax, not each step by its class. Give the ids a trailing axis, "
            f"{y_shape + (1,)} (fit then weighs every step by its class), or pass "
            "the per-step weights as `sample_weight`."
        )


def class_weighted(y: Any, weights: Any, class_weight: Optional[Mapping[int, float]],
                   ids: bool = False) -> Any:
    """The sample weights times the class weights (`fit`'s sample weights
    when there are none), in a shape Keras accepts."""
    if class_weight is None:
        return weights
    y = np.asarray(y)
    cw = _class_weights(y, class_weight, ids)
    if weights is None:
        return cw
    w = np.asarray(weights, dtype=np.float64)
    w = w[:, 0] if w.ndim == 2 and w.shape[1] == 1 and cw.ndim > 1 else w
    if w.ndim < cw.ndim:
        w = w.reshape(w.shape + (1,) * (cw.ndim - w.ndim))
    elif cw.ndim < w.ndim:
        cw = cw.reshape(cw.shape + (1,) * (w.ndim - cw.ndim))
    return w * cw


def loss_rows(values: Any, weights: Any, mask: Optional[np.ndarray],
              elements: LossElements, batch_size: Optional[int] = None
              ) -> Tuple[np.ndarray, np.ndarray, int]:
    """The rows the loss counts, their weights `u_i = w_i n_b / V_b`, and `n_b`.

    `values` and `weights` are one batch, in every shape Keras accepts
    (`(n,)`, `(n, 1)`, per-step `(n, T)`, per-pixel `(n, H, W)` weights; ids
    or label vectors), folded into rows by `keras_biasinit.data.elements`;
    `mask` is the output's Keras mask of the batch (one flag per loss
    element), or None. `batch_size`: normalise each run of that many
    examples as a batch of its own. Defaults to None: the whole batch.
    """
    y = np.asarray(values)
    if elements.sparse and y.dtype.kind == "f" and np.all(np.isfinite(y)):
        y = values = y.astype(np.int64)  # as Keras casts sparse labels
    examples = int(y.shape[0]) if y.ndim else 1
    w = class_weighted(y, weights, elements.class_weight, elements.ids)
    rows, row_weights = _to_batch(values, w, ids=elements.ids)
    if mask is None and elements.ignore_class is None and len(rows) == examples:
        return rows, row_weights, examples  # one element per example: as given
    keep = np.ones(rows.shape[0], bool)
    if mask is not None:
        flags = np.asarray(mask).reshape(-1)
        if flags.shape[0] != rows.shape[0]:
            raise ValueError(
                f"The output's Keras mask has {flags.shape[0]} elements for a batch "
                f"of {rows.shape[0]} loss elements (targets of shape {y.shape}): "
                "give targets of the output's shape."
            )
        keep &= flags.astype(bool)
    if elements.ignore_class is not None:
        keep &= np.reshape(rows, (rows.shape[0], -1))[:, 0] != elements.ignore_class
    scale = _batch_scales(keep, examples, batch_size)
    u = scale if row_weights is None else row_weights * scale
    return rows[keep], u[keep], examples


def _batch_scales(keep: np.ndarray, examples: int,
                  batch_size: Optional[int]) -> np.ndarray:
    """Per row, `n_b / V_b` of its batch: the whole batch, or (arrays read
    in larger chunks) each run of `batch_size` examples."""
    per_example = keep.shape[0] // max(examples, 1)
    size = examples if batch_size is None else min(batch_size, examples)
    group = np.arange(keep.shape[0]) // max(per_example * size, 1)
    valid = np.bincount(group, weights=keep.astype(np.float64))
    counts = np.bincount(np.arange(examples) // max(size, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        scales = np.where(valid > 0, counts / np.maximum(valid, 1), 0.0)
    return scales[group]
