"""Measuring a compiled model's loss for `verify_loss_at_init`.

`evaluate` as Keras reports it (every log, per output too), the
regularization losses, compile's `loss_weights`, every head's kernel set to
zero for a while (`zero_kernels`), whether a bias still holds what its
initializer made, and the check that an endless input comes with `steps`.
"""

from __future__ import annotations

import collections.abc
import contextlib
from typing import Any, Dict, Iterator, List, Optional

import keras
import numpy as np

from keras_biasinit._optional import is_tf_dataset

__all__ = ["bias_is_initial", "check_finite", "evaluate", "loss_weights",
           "output_loss", "regularization", "zero_kernels"]


def check_finite(dataset: Any, steps: Optional[int]) -> None:
    """An endless input without `steps` is an error, not an endless evaluate."""
    if steps is not None or isinstance(dataset, tuple):
        return
    if is_tf_dataset(dataset):
        # pylint: disable-next=import-outside-toplevel
        from keras_biasinit.data.datasets import check_cardinality
        check_cardinality(dataset, steps)
    elif isinstance(dataset, collections.abc.Iterable):
        # pylint: disable-next=import-outside-toplevel
        from keras_biasinit.data.reading import iterable_length
        iterable_length(dataset, steps)


def evaluate(model, dataset, steps, verbose) -> Dict[str, float]:
    """Every log of `model.evaluate` on `dataset` (a tuple of arrays too)."""
    if isinstance(dataset, tuple) and len(dataset) in (2, 3):
        x, y, *weights = dataset
        logs = model.evaluate(
            x, y, sample_weight=weights[0] if weights else None, steps=steps,
            verbose=verbose, return_dict=True,
        )
    else:
        logs = model.evaluate(dataset, steps=steps, verbose=verbose, return_dict=True)
    return {key: float(value) for key, value in logs.items()}


def regularization(model) -> float:
    """The regularization losses `evaluate` adds to the data loss."""
    return sum(float(keras.ops.convert_to_numpy(x)) for x in model.losses)


def bias_is_initial(layer) -> Optional[bool]:
    """Whether the bias still holds what its (keras_biasinit) initializer made."""
    values = getattr(layer.bias_initializer, "bias", None)
    if values is None or getattr(layer, "bias", None) is None:
        return None
    current = keras.ops.convert_to_numpy(layer.bias).astype(np.float64)
    values = np.asarray(values, np.float64)
    if values.size == current.size:
        values = values.reshape(current.shape)
    try:
        initial = np.broadcast_to(values, current.shape)
    except ValueError:
        return False
    return bool(np.allclose(current, initial, rtol=1e-3, atol=1e-3))


def loss_weights(model, names) -> List[float]:
    """Compile's `loss_weights` per output (1 where not given)."""
    config = getattr(getattr(model, "_compile_config", None), "config", None) or {}
    weights = config.get("loss_weights")
    if isinstance(weights, dict):
        return [float(weights.get(name, 1.0)) for name in names]
    if isinstance(weights, (list, tuple)):
        return [float(w) for w in weights]
    return [1.0 if weights is None else float(weights)] * len(names)


@contextlib.contextmanager
def zero_kernels(heads) -> Iterator[None]:
    """Every head's kernel set to zero inside the block, then restored."""
    saved = []
    for head in heads:
        kernel = getattr(head.layer, "kernel", None)
        if kernel is None:
            raise ValueError(
                f"The head of output '{head.name}', layer '{head.layer.name}', has "
                "no `kernel` to set to zero for the split of the gap."
            )
        saved.append((kernel, keras.ops.convert_to_numpy(kernel)))
    try:
        for kernel, value in saved:
            kernel.assign(np.zeros_like(value))
        yield
    finally:
        for kernel, value in saved:
            kernel.assign(value)


def output_loss(logs: Dict[str, float], name: str) -> float:
    """The `<name>_loss` log of one output."""
    key = f"{name}_loss"
    if key not in logs:
        raise ValueError(
            f"`evaluate` reports no '{key}' for output '{name}' (it reported "
            f"{sorted(logs)}): the per-output loss cannot be checked. Pass "
            "`expected=` for the total loss."
        )
    return logs[key]
