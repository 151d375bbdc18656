"""Subclassed tracing: what `call()` actually does, from one call on a few rows.

A subclassed model has no graph to walk, and the order its layers were
created in says nothing about which one feeds the output. `trace` calls the
model once (inference mode) on a small batch and records every layer call
made meanwhile: the layer, its first input and its outputs, in the order the
calls finished. Every tensor is then known by its producer: the innermost
layer call that returned that very object. `walk_trace` steps back from an
output the way `keras_biasinit.heads.graph` does: through output-preserving
layers to the head. An output made by an operation in `call()` outside any
layer (e.g. `keras.ops.softmax`) has no producer: that cannot be proved
unless the caller says what the operation is (`activation=`): then the
producer is the one layer call whose output, through that activation,
equals the model's output on the traced batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Dict, Iterator, List, Optional, Tuple

import keras
import numpy as np

from keras_biasinit.heads.path import Path
from keras_biasinit.heads.path import Unproven
from keras_biasinit.heads.path import holds_bias
from keras_biasinit.heads.path import stop_reason
from keras_biasinit.heads.preserving import kind_of

__all__ = ["Trace", "trace", "walk_trace"]


@dataclasses.dataclass
class _Call:
    layer: Any
    first_input: Any
    outputs: List[Any]


@contextlib.contextmanager
def _recording(calls: List[_Call]) -> Iterator[None]:
    """Records every `Layer.__call__` that finishes inside the block."""
    original = keras.layers.Layer.__call__

    def recorded(layer, *args, **kwargs):
        outputs = original(layer, *args, **kwargs)
        first = args[0] if args else kwargs.get("inputs")
        leaves = keras.tree.flatten(first) if first is not None else []
        calls.append(_Call(layer, leaves[0] if leaves else None,
                           keras.tree.flatten(outputs)))
        return outputs

    keras.layers.Layer.__call__ = recorded
    try:
        yield
    finally:
        keras.layers.Layer.__call__ = original


@dataclasses.dataclass
class Trace:
    """One recorded call of `model`: its `outputs` (the structure `call()`
    returned) and, per tensor object, the innermost call that made it."""

    model: Any
    outputs: Any
    producers: Dict[int, _Call]
    calls: List[_Call]

    def named_outputs(self) -> List[Tuple[Optional[str], Any]]:
        """`(name, tensor)` per output: dict keys, or None to be named after
        the head."""
        if isinstance(self.outputs, dict):
            return list(self.outputs.items())
        return [(None, t) for t in keras.tree.flatten(self.outputs)]


def trace(model: keras.Model, inputs: Any) -> Trace:
    """Calls `model` once on `inputs` (inference mode), recording its layers.

    A model not built yet is called once more, first: its build runs
    `call()` on symbolic tensors, which are not recorded.

    Example:

    >>> model = keras.Sequential([keras.layers.Dense(2), keras.layers.Softmax()])
    >>> recorded = trace(model, np.ones((1, 3), "float32"))
    >>> [type(c.layer).__name__ for c in recorded.calls]
    ['Dense', 'Softmax', 'Sequential']
    """
    if not model.built:  # building traces `call()` symbolically: not recorded
        model(inputs, training=False)
    calls: List[_Call] = []
    with _recording(calls):
        outputs = model(inputs, training=False)
    producers: Dict[int, _Call] = {}
    for call in calls:
        if call.layer is model:
            continue
        for leaf in call.outputs:
            producers.setdefault(id(leaf), call)
    return Trace(model, outputs, producers, calls)


def _through(recorded: Trace, tensor: Any, activation) -> Any:
    """The one recorded tensor that `activation` maps onto `tensor`."""
    target = keras.ops.convert_to_numpy(tensor)
    matches = {}
    for call in recorded.calls:
        for leaf in call.outputs:
            if call.layer is recorded.model or tuple(leaf.shape) != target.shape:
                continue
            value = keras.ops.convert_to_numpy(activation(leaf))
            if np.allclose(value, target, rtol=1e-5, atol=1e-7):
                matches.setdefault(id(leaf), leaf)
    if len(matches) != 1:
        found = "no layer's output" if not matches else "several layers' outputs"
        raise Unproven(f"{found} give the model's output through the activation")
    return next(iter(matches.values()))


def walk_trace(recorded: Trace, tensor: Any, target: Any = None,
               activation=None) -> Path:
    """The `Path` from an output `tensor` of the traced call back to its
    head (or to `target`, if met first); `activation` (a function), if given,
    is what `call()` applied to a layer's output to make `tensor`."""
    if activation is not None:
        tensor = _through(recorded, tensor, activation)
    after = []
    while True:
        call = recorded.producers.get(id(tensor))
        if call is None:
            raise Unproven(
                "the output is made by an operation in `call()` outside any layer "
                "(e.g. `keras.ops.softmax`), which cannot be seen")
        layer = call.layer
        if layer is target or (kind_of(layer) is None and holds_bias(layer)):
            return Path(layer, tuple(tensor.shape[1:]), after[::-1])
        if kind_of(layer) is None:
            raise Unproven(stop_reason(layer), layer)
        after.append(layer)
        tensor = call.first_input
