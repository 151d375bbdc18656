"""What a Keras loss is: its function, its parameters, its reduction.

Any form `compile(loss=...)` accepts (a string, a `Loss` class or instance, a
loss function, a serialized config) is resolved the way Keras resolves it
(`keras.losses.get`), then named by the Keras loss *function* it computes
(`LossSpec.kind`, e.g. `"binary_focal_crossentropy"`) with that function's
keyword arguments, defaults filled in (`LossSpec.params`). The parameters are
read from the instance's own arguments, not from `get_config()`: Keras 3.15's
`Huber.get_config()` drops `delta`.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Dict, Optional

import keras

#: Keras loss functions with a best constant, by the name used in the table.
_FUNCTIONS = {
    "categorical_crossentropy": keras.losses.categorical_crossentropy,
    "sparse_categorical_crossentropy": keras.losses.sparse_categorical_crossentropy,
    "binary_crossentropy": keras.losses.binary_crossentropy,
    "kl_divergence": keras.losses.kl_divergence,
    "binary_focal_crossentropy": keras.losses.binary_focal_crossentropy,
    "categorical_focal_crossentropy": keras.losses.categorical_focal_crossentropy,
    "mean_squared_error": keras.losses.mean_squared_error,
    "mean_absolute_error": keras.losses.mean_absolute_error,
    "huber": keras.losses.huber,
    "log_cosh": keras.losses.log_cosh,
    "mean_squared_logarithmic_error": keras.losses.mean_squared_logarithmic_error,
    "mean_absolute_percentage_error": keras.losses.mean_absolute_percentage_error,
    "poisson": keras.losses.poisson,
}
_KINDS = {fn: kind for kind, fn in _FUNCTIONS.items()}
#: Reductions whose loss is `sum_i w_i loss_i / rows`, what `expected_loss` is.
REDUCTIONS = ("sum_over_batch_size", "mean")


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """A Keras loss, resolved.

    Attributes:
        kind: the Keras loss function's name (a key of the table), or None
            for a loss this package does not know.
        params: the function's keyword arguments (`from_logits`,
            `label_smoothing`, `gamma`, `alpha`, `delta`, ...), defaults
            filled in.
        reduction: the `Loss` instance's reduction.
        name: how to show the loss to a user.
        loss: the resolved Keras loss object.
    """

    kind: Optional[str]
    params: Dict[str, Any]
    reduction: str
    name: str
    loss: Any = dataclasses.field(compare=False, repr=False, default=None)

    def describe(self) -> str:
        """The loss and its non-default parameters, e.g. `huber(delta=5.0)`."""
        if self.kind is None:
            return self.name
        defaults = _defaults(_FUNCTIONS[self.kind])
        shown = {k: v for k, v in self.params.items()
                 if k != "axis" and defaults.get(k, object()) != v}
        args = ", ".join(f"{k}={v!r}" for k, v in sorted(shown.items()))
        return f"{self.kind}({args})" if args else self.kind


def _defaults(fn) -> Dict[str, Any]:
    return {
        name: p.default for name, p in inspect.signature(fn).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def _display_name(identifier: Any, resolved: Any) -> str:
    if isinstance(identifier, str):
        return repr(identifier)
    name = getattr(resolved, "name", None) or getattr(resolved, "__name__", None)
    return repr(name) if name else repr(resolved)


def identify_loss(identifier: Any, activation: Optional[str] = None) -> LossSpec:
    """Resolves a `compile(loss=...)` value to a `LossSpec`.

    `"crossentropy"` / `"ce"`, which Keras resolves from the shapes, become
    binary cross-entropy for a sigmoid output (or one unit) and categorical
    otherwise: the two share a best constant with the sparse form.

    Example:

    >>> identify_loss(keras.losses.Huber(delta=5.0)).describe()
    'huber(delta=5.0)'
    """
    if isinstance(identifier, str) and identifier.lower() in ("crossentropy", "ce"):
        identifier = ("binary_crossentropy" if activation == "sigmoid"
                      else "categorical_crossentropy")
    try:
        resolved = keras.losses.get(identifier)
    except (ValueError, TypeError):
        resolved = identifier
    fn, kwargs = resolved, {}
    reduction = "sum_over_batch_size"
    if isinstance(resolved, keras.losses.Loss):
        reduction = resolved.reduction
        fn = getattr(resolved, "fn", None)
        kwargs = dict(getattr(resolved, "_fn_kwargs", None) or {})
    kind = _KINDS.get(fn) if fn is not None else None
    params = {**_defaults(fn), **kwargs} if kind else {}
    return LossSpec(kind, params, reduction, _display_name(identifier, resolved),
                    resolved)
