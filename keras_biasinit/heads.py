"""Finding a model's output heads: the layer with a bias, its activation, its loss.

For each model output, `find_heads` walks back from the output through
trailing `Activation` / `Softmax` layers to the layer that holds the bias (a
`Dense`, `Conv*`, `EinsumDense`, ...: anything with `bias` and
`bias_initializer`), takes the output activation (the trailing layer's, or
the layer's own), and pairs it with that output's loss: `loss=` if given,
else the compiled `model.loss` (one loss for every output, a dict keyed by
output name, or a list in output order; an output whose loss is None is
left alone). Each pair is looked up in the table
(`keras_biasinit.best_constant`); any problem is a ValueError raised here,
before any data is read and before any bias is changed.

Functional and `Sequential` models are followed through their graph. A
subclassed model has no graph to follow: its last layer with a bias is taken,
with its own activation (or that of `Activation` / `Softmax` layers listed
after it), and it must have one output.
"""

from __future__ import annotations

import dataclasses
from typing import Any, List, Optional, Tuple

import keras

from keras_biasinit.best_constant import LossSpec
from keras_biasinit.best_constant import Rule
from keras_biasinit.best_constant import identify_loss
from keras_biasinit.best_constant import rule_for

_ACTIVATION_LAYERS = (keras.layers.Activation, keras.layers.Softmax)


@dataclasses.dataclass
class Head:
    """One output: where its bias is, and which row of the table it uses."""

    name: str
    index: int
    layer: Any
    activation: str
    spec: LossSpec
    rule: Rule
    units: int
    num_outputs: int = 1


def _activation_name(fn) -> str:
    if fn is None:
        return "linear"
    try:
        name = keras.activations.serialize(fn)
    except (ValueError, TypeError):
        name = None
    return name if isinstance(name, str) else getattr(fn, "__name__", repr(fn))


def _trailing(layer) -> str:
    if isinstance(layer, keras.layers.Softmax):
        axis = layer.axis
        if axis not in (-1, [-1], (-1,)):
            return f"softmax(axis={axis})"
        return "softmax"
    return _activation_name(layer.activation)


def _head_layer(chain: List[Any], name: str) -> Tuple[Any, str]:
    """From the output backwards: (layer with the bias, output activation)."""
    trailing = [layer for layer in chain if isinstance(layer, _ACTIVATION_LAYERS)]
    layer = chain[len(trailing)] if len(chain) > len(trailing) else None
    if layer is None or not hasattr(layer, "bias_initializer") or \
            not getattr(layer, "use_bias", True):
        what = type(layer).__name__ if layer is not None else "nothing"
        raise ValueError(
            f"Output '{name}': the layer before its activation is {what} "
            f"('{getattr(layer, 'name', '?')}'), which has no bias to set. Use an "
            "output layer with a bias (e.g. `Dense(..., use_bias=True)`)."
        )
    acts = [_trailing(a) for a in trailing] + [_activation_name(layer.activation)]
    nonlinear = [a for a in acts if a != "linear"]
    if len(nonlinear) > 1:
        raise ValueError(
            f"Output '{name}': layer '{layer.name}' is followed by several "
            f"activations ({', '.join(reversed(nonlinear))}); the best constant is "
            "known for one output activation."
        )
    return layer, nonlinear[0] if nonlinear else "linear"


def _graph_chain(tensor) -> List[Any]:
    chain = []
    history = tensor._keras_history  # pylint: disable=protected-access
    while True:
        op = history.operation
        chain.append(op)
        if not isinstance(op, _ACTIVATION_LAYERS):
            return chain
        node = op._inbound_nodes[history.node_index]  # pylint: disable=protected-access
        history = node.input_tensors[0]._keras_history


def _outputs(model) -> List[Tuple[str, List[Any]]]:
    """Each output's name and its layers, from the output backwards."""
    if isinstance(model, keras.Sequential):
        layers = list(reversed(model.layers))
        return [(model.layers[-1].name if model.layers else "output", layers)]
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        outputs = None
    if outputs:
        structure = getattr(model, "_outputs_struct", None)
        if isinstance(structure, dict):
            names, tensors = list(structure), list(structure.values())
        else:
            names, tensors = list(model.output_names), list(outputs)
        return [(n, _graph_chain(t)) for n, t in zip(names, tensors)]
    # A subclassed model: its last layer with a bias, and activations after it.
    layers = list(reversed(model.layers))
    with_bias = [i for i, layer in enumerate(layers)
                 if hasattr(layer, "bias_initializer")]
    if not with_bias:
        raise ValueError(
            "Found no layer with a bias in the model: an output layer such as "
            "`Dense` is needed."
        )
    i = with_bias[0]
    chain = [a for a in layers[:i] if isinstance(a, _ACTIVATION_LAYERS)]
    return [(layers[i].name, chain + [layers[i]])]


def _loss_per_output(loss: Any, names: List[str]) -> List[Any]:
    if isinstance(loss, dict):
        unknown = sorted(set(loss) - set(names))
        if unknown:
            raise ValueError(
                f"The loss dict has keys {unknown} that are not outputs of the "
                f"model; its outputs are {names}."
            )
        return [loss.get(n) for n in names]
    if isinstance(loss, (list, tuple)):
        if len(loss) != len(names):
            raise ValueError(
                f"The loss list has {len(loss)} items but the model has "
                f"{len(names)} outputs {names}: give one loss per output."
            )
        return list(loss)
    return [loss] * len(names)


def _units(layer) -> int:
    bias = getattr(layer, "bias", None)
    if bias is not None:
        return int(bias.shape[-1])
    for attr in ("units", "filters"):
        if isinstance(getattr(layer, attr, None), int):
            return getattr(layer, attr)
    raise ValueError(
        f"Layer '{layer.name}' is not built yet and its number of units is "
        "unknown: build the model first (e.g. `model.build(input_shape)`)."
    )


def find_heads(model: keras.Model, loss: Optional[Any] = None) -> List[Head]:
    """Every output that has a loss, as a `Head`; ValueError on any problem."""
    if loss is None:
        if not getattr(model, "compiled", False) or model.loss is None:
            raise ValueError(
                "The model has no loss: compile it (`model.compile(loss=...)`) or "
                "pass `loss=`."
            )
        loss = model.loss
    outputs = _outputs(model)
    losses = _loss_per_output(loss, [name for name, _ in outputs])
    heads = []
    for index, ((name, chain), output_loss) in enumerate(zip(outputs, losses)):
        if output_loss is None:
            continue
        layer, activation = _head_layer(chain, name)
        spec = identify_loss(output_loss, activation)
        rule = rule_for(spec, activation, name)
        heads.append(Head(name, index, layer, activation, spec, rule, _units(layer),
                          len(outputs)))
    if not heads:
        raise ValueError("No output of the model has a loss: there is nothing to set.")
    return heads
