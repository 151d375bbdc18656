"""The graph walk: from an output of a functional or `Sequential` model to its head.

Each Keras tensor of a functional model remembers the layer call that made
it (`_keras_history`). `walk_graph` steps back from an output tensor through
the output-preserving layers to the head, entering a nested functional
model (a model used as a layer) at the output it was called for, and
leaving it again at its input. `graph_outputs` names a model's outputs the
way `compile` does; it is None for a model without a graph (subclassed).
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

import keras

from keras_biasinit.heads.path import Path
from keras_biasinit.heads.path import Unproven
from keras_biasinit.heads.path import holds_bias
from keras_biasinit.heads.path import stop_reason
from keras_biasinit.heads.preserving import kind_of

__all__ = ["graph_outputs", "walk_graph", "walk_layers"]


def _graph(model: Any) -> Optional[List[Any]]:
    """A model's output tensors, flat, or None if it has no graph."""
    if not isinstance(model, keras.Model):
        return None
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return None
    return keras.tree.flatten(outputs) if outputs else None


def graph_outputs(model: keras.Model) -> Optional[List[Tuple[str, Any]]]:
    """`(name, tensor)` per output of a functional / built `Sequential`
    model, in output order; None for a model without a graph."""
    tensors = _graph(model)
    if tensors is None:
        return None
    structure = getattr(model, "_outputs_struct", None)
    if isinstance(model, keras.Sequential):
        return [(model.layers[-1].name, tensors[0])]
    if isinstance(structure, dict):
        return list(structure.items())
    return list(zip(model.output_names, tensors))


def _shape(tensor) -> Tuple[Optional[int], ...]:
    return tuple(tensor.shape[1:])


def walk_graph(tensor: Any, target: Any = None) -> Path:
    """The `Path` from the output `tensor` back to its head: the first layer
    that is not output-preserving, or `target` if it is met first.
    `Unproven` if the walk meets a layer it cannot see through."""
    after, entered = [], []
    while True:
        # pylint: disable-next=protected-access
        layer, node_index, tensor_index = tensor._keras_history
        if isinstance(layer, keras.layers.InputLayer):
            if not entered:
                raise Unproven("the walk reached the model's input without "
                               "meeting a layer with a bias")
            model, node = entered.pop()
            inner = [id(t) for t in keras.tree.flatten(model.inputs)]
            tensor = keras.tree.flatten(node.input_tensors)[inner.index(id(tensor))]
            continue
        node = layer._inbound_nodes[node_index]  # pylint: disable=protected-access
        if layer is not target and _graph(layer) is not None:
            entered.append((layer, node))
            tensor = _graph(layer)[tensor_index]
            continue
        if layer is target or (kind_of(layer) is None and holds_bias(layer)):
            return Path(layer, _shape(tensor), after[::-1])
        if kind_of(layer) is None:
            raise Unproven(stop_reason(layer), layer)
        after.append(layer)
        tensor = node.input_tensors[0]


def walk_layers(layers: List[Any], target: Any = None) -> Path:
    """The same walk over an unbuilt `Sequential`'s list of layers (its
    shapes unknown)."""
    after = []
    for layer in reversed(layers):
        if layer is target or (kind_of(layer) is None and holds_bias(layer)):
            return Path(layer, None, after[::-1])
        if kind_of(layer) is None:
            raise Unproven(stop_reason(layer), layer)
        after.append(layer)
    raise Unproven("the model has no layer with a bias")
