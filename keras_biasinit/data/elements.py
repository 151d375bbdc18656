"""One element or batch -> checked NumPy `(values, weights)`.

Picking the target (or features) out of an element (`_pick`: dict keys, tuple
indices, paths into nested elements), checking sample weights, and folding
targets of 3+ dimensions into rows of their last axis.
"""

from __future__ import annotations

import collections.abc
import dataclasses
from typing import Any, Mapping, Optional, Tuple, Union

import numpy as np

from keras_biasinit._optional import is_tf_composite
from keras_biasinit._optional import is_tf_dataset
from keras_biasinit._optional import is_tf_tensor
from keras_biasinit.data.torch_inputs import host_array

Key = Union[str, int, None, Tuple[Union[str, int], ...]]
Batch = Tuple[np.ndarray, Optional[np.ndarray]]


@dataclasses.dataclass(frozen=True)
class WeightedKey:
    """`target=` together with `sample_weight=`: the weights of a dict element
    are its `weight` key."""

    key: Key
    weight: str


def _pick_weighted(element: Any, target: WeightedKey, role: str) -> Tuple[Any, Any]:
    if not isinstance(element, collections.abc.Mapping):
        raise ValueError(
            f"`sample_weight={target.weight!r}` names a key of dict elements (or "
            f"a column), but the elements are {type(element).__name__}s. The "
            "weights of `(x, y, sample_weight)` elements are their 3rd item: "
            "leave `sample_weight=None`."
        )
    if target.weight not in element:
        raise ValueError(
            f"The key {target.weight!r} (`sample_weight=`) is not in the "
            f"dataset's elements. Available keys: {sorted(element)}."
        )
    return _pick(element, target.key, role)[0], element[target.weight]


def _guess_key(element: Mapping, role: str) -> Any:
    """The key most likely meant, for an error message's example."""
    likely = ("label", "labels", "target", "y") if role == "target" else (
        "image", "features", "x", "inputs")
    return next((k for k in likely if k in element), sorted(element)[0])


def _pick(element: Any, target: Key, role: str) -> Tuple[Any, Any]:
    """Returns (values, weights-or-None) from one element (a batch or example).

    `role` is "target" (default: 2nd item of a tuple) or "features" (default:
    1st item). Weights are the 3rd item of an `(x, y, sample_weight)` tuple.
    A tuple `target` is a path into nested elements: `(1, "out")` is
    `element[1]["out"]`, weighted by the element's sample weights.
    """
    if isinstance(target, WeightedKey):
        return _pick_weighted(element, target, role)
    if isinstance(target, tuple):
        if not target:
            raise ValueError(f"`{role}=()` is an empty path; name a key or index.")
        values, weights = _pick(element, target[0], role)
        for key in target[1:]:
            values = _pick(values, key, role)[0]
        return values, weights
    if isinstance(element, collections.abc.Mapping):
        if target is None:
            raise ValueError(
                f"The dataset yields dicts with keys {sorted(element)}; pass "
                f"`{'target' if role == 'target' else 'features'}=` with the key "
                f"that holds the {role}, e.g. `{role}={_guess_key(element, role)!r}`."
            )
        if target not in element:
            raise ValueError(
                f"The key {target!r} is not in the dataset's elements. Available "
                f"keys: {sorted(element)}. Pass one of them as `{role}=`."
            )
        return element[target], None
    if isinstance(element, tuple):
        n = len(element)
        if target is None:
            if role == "target" and n < 2:
                raise ValueError(
                    f"The dataset yields tuples of {n} item(s) and holds no target; "
                    "expected `(x, y)` or `(x, y, sample_weight)` elements, a bare "
                    "target tensor, or `target=` naming the item."
                )
            index = 1 if role == "target" else 0
        else:
            if not isinstance(target, int) or isinstance(target, bool):
                raise ValueError(
                    f"The dataset yields tuples; `{role}=` must be an int index "
                    f"into them. Received: {role}={target!r}"
                )
            if not -n <= target < n:
                raise ValueError(
                    f"`{role}={target}` is out of range for tuples of {n} items."
                )
            index = target
        weights = element[2] if n == 3 and index % n in (0, 1) else None
        return element[index], weights
    if target is not None:
        raise ValueError(
            f"`{role}={target!r}` was given, but each element is a single "
            "tensor, not a tuple or dict. Leave it as None."
        )
    return element, None


def _as_weights(weights: Any, value_shape: Tuple[int, ...],
                ids: bool = False) -> np.ndarray:
    """Checked float64 weights, one per row, or one per element of
    `value_shape[:-1]` for values of 3 or more dimensions (temporal weights),
    or, for class ids (`ids=True`), one per id."""
    n_rows = value_shape[0]
    w = _as_numeric(host_array(weights), "sample weights").astype(np.float64)
    if w.ndim == 0:
        w = w.reshape(1)
    if w.ndim == 2 and w.shape[1] == 1:
        w = w[:, 0]
    elements = tuple(value_shape[:-1]) if len(value_shape) > 2 else None
    if ids:
        squeezed = tuple(value_shape[:-1]) if value_shape[-1] == 1 else None
        elements = squeezed if squeezed and len(squeezed) > 1 else tuple(value_shape)
    if w.shape != (n_rows,) and w.shape != elements:
        allowed = f"({n_rows},) or ({n_rows}, 1)" + (
            f" or {elements}" if elements else ""
        )
        raise ValueError(
            f"Sample weights must have shape {allowed} to match the batch of "
            f"shape {tuple(value_shape)}. Received shape {w.shape}."
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(
            "Sample weights must be finite and non-negative; found "
            f"{'NaN/inf' if not np.all(np.isfinite(w)) else 'negative'} values. "
            "Clean them in the pipeline (e.g. with `Dataset.map`)."
        )
    return w


def _first_rows(value: Any, steps: int) -> Any:
    """The first `steps` examples of an array or list (before any folding)."""
    if isinstance(value, list) or (_is_array(value) and np.ndim(value)):
        return host_array(value)[:steps]
    return value


def _check_not_nested(values: Any, role: str) -> None:
    """A tuple or dict where a tensor is needed: name the path to one part."""
    if isinstance(values, (tuple, collections.abc.Mapping)):
        parts = sorted(values) if isinstance(values, collections.abc.Mapping) else (
            list(range(len(values))))
        index = 1 if role == "target" else 0
        raise ValueError(
            f"The {role} is itself a {type(values).__name__} (parts: {parts}), as "
            "for a model with several inputs or outputs. Pick one part with a "
            f"path, e.g. `{role}=({index}, {parts[0]!r})` for "
            f"element[{index}][{parts[0]!r}]."
        )


def _as_numeric(y: np.ndarray, role: str) -> np.ndarray:
    """`y` if it holds numbers (bool, int, float; bfloat16 as float32)."""
    if y.dtype.kind in "biuf":
        return y
    if y.dtype.name.startswith(("bfloat16", "float8")):
        return y.astype(np.float32)
    raise TypeError(numeric_error(role, str(y.dtype)))


def numeric_error(role: str, dtype: str) -> str:
    """The message for data of a non-numeric dtype (NumPy's or TensorFlow's)."""
    what = {"target": "Targets", "features": "Features"}.get(role, role.capitalize())
    return (
        f"{what} must be numeric (bool, integer or float); received dtype {dtype}. "
        "Map string labels to integer ids first (e.g. `keras.layers.StringLookup`"
        " in `Dataset.map`), and convert complex or other values to real numbers."
    )


def _fold_ids(y: np.ndarray, w: Optional[np.ndarray]) -> Batch:
    """Integer class ids of any shape -> one id per row, each with its weight.

    `SparseCategoricalCrossentropy` reads ids `(n, T)`, `(n, T, 1)` or
    `(n, H, W)` against logits with one more axis and weights every id by its
    example's weight (or by its own, for weights of the ids' shape).
    """
    if y.shape[-1] == 1:
        y = y[..., 0]
    if w is not None and w.size != y.size:  # one weight per example
        w = np.repeat(w, y.size // max(y.shape[0], 1))
    return y.reshape(-1), None if w is None else w.reshape(-1)


def _to_batch(values: Any, weights: Any, fold_rows: bool = True,
              ids: bool = False) -> Batch:
    """Checked NumPy `(values, weights)` of one batch.

    `fold_rows` folds targets of 3+ dimensions into rows of their last axis;
    `ids` (softmax targets) folds integer targets of any shape into one id per
    row instead.
    """
    role = "target" if fold_rows else "features"
    _check_not_nested(values, role)
    _reject_composite(values)
    y = host_array(values)
    if y.ndim == 0:
        y = y.reshape(1)
    y = _as_numeric(y, role)
    if ids and y.dtype.kind in "iu" and y.ndim >= 2:
        _check_not_one_hot(y)
        w = None if weights is None else _as_weights(weights, y.shape, ids=True)
        return _fold_ids(y, w)
    w = None if weights is None else _as_weights(weights, y.shape)
    if fold_rows and y.ndim > 2:
        # Keras losses reduce the last axis and weight every remaining element
        # (a time step, a pixel) by its weight: those elements are the rows.
        per_example = int(np.prod(y.shape[1:-1]))
        if w is not None:
            w = np.repeat(w, per_example) if w.ndim == 1 else w.reshape(-1)
        y = y.reshape(-1, y.shape[-1])
    return y, w


def _check_not_one_hot(y: np.ndarray) -> None:
    """Integer `(n, k)` rows that are all one-hot: vectors or per-step ids?

    Refused when a batch holds enough rows to tell (2 for k >= 3, 8 for k = 2,
    where per-step ids [0, 1] / [1, 0] are common): integer one-hot labels
    read as ids would give every class the same count, silently.
    """
    n, k = y.shape if y.ndim == 2 else (0, 0)
    if k < 2 or n < (2 if k >= 3 else 8) or y.min() < 0 or y.max() > 1:
        return
    if (y.sum(axis=1) == 1).all():
        raise ValueError(
            f"Integer labels of shape {y.shape} with exactly one 1 in every row are "
            "ambiguous under softmax: one-hot vectors (CategoricalCrossentropy) or "
            "per-step class ids (SparseCategoricalCrossentropy). Integer labels are"
            " read as class ids: cast one-hot labels to float (e.g. "
            "`tf.cast(y, tf.float32)`), or shape per-step ids (n, T, 1)."
        )


def _is_array(value: Any) -> bool:
    """An array read whole: NumPy, an eager tensor, or anything with `__array__`."""
    if isinstance(value, (np.ndarray, np.generic)) or is_tf_tensor(value):
        return True
    return (hasattr(value, "__array__")
            and not isinstance(value, (tuple, list, collections.abc.Mapping))
            and not is_tf_dataset(value))


def _is_element(value: Any) -> bool:
    """One element: `(x, y)`, `(x, y, sample_weight)` or a dict."""
    return isinstance(value, (tuple, collections.abc.Mapping))


def _is_nested_numbers(value: Any) -> bool:
    """A non-empty Python list of numbers or of lists of numbers."""
    if not isinstance(value, list) or not value:
        return False
    number = (int, float, np.generic)
    return all(
        isinstance(v, number)
        or (isinstance(v, list) and all(isinstance(u, number) for u in v))
        for v in value
    )


def _reject_composite(value: Any) -> None:
    if is_tf_composite(value):
        raise TypeError(
            "Ragged and sparse targets are not supported; convert them to dense "
            "tensors first (e.g. `.to_tensor()`)."
        )
