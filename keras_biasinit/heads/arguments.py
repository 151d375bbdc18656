"""The `layer=` and `activation=` arguments: checked, and spread over outputs.

`layer` is a layer of the model, by name or as the object (nested layers
included), or a dict of them by output name; `activation` is what `call()`
applies after that layer outside any layer: a Keras activation, by name or
as the function, or a dict of them by output name.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple

import keras

from keras_biasinit.heads.preserving import function_name

__all__ = ["activation_arg", "layer_arg", "per_output"]


def _layers(model: keras.Model) -> List[Any]:
    # pylint: disable-next=protected-access
    return list(model._flatten_layers(include_self=False))


def layer_arg(model: keras.Model, layer: Any) -> Any:
    """The layer `layer` names (a name or a layer of `model`), or None.

    Example:

    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="out")])
    >>> layer_arg(model, "out").name
    'out'
    """
    if layer is None:
        return None
    layers = _layers(model)
    if isinstance(layer, str):
        found = [candidate for candidate in layers if candidate.name == layer]
        if not found:
            names = sorted({candidate.name for candidate in layers})
            raise ValueError(
                f"`layer='{layer}'` names no layer of the model. Its layers are "
                f"{names}. Received: layer={layer!r}"
            )
        return found[0]
    if isinstance(layer, keras.layers.Layer):
        if not any(candidate is layer for candidate in layers):
            raise ValueError(
                f"`layer` ('{layer.name}') is not a layer of this model. Pass one "
                f"of its layers or its name. Received: layer={layer!r}"
            )
        return layer
    raise TypeError(
        "`layer` must be a layer name, a keras layer, or a dict of them by output "
        f"name. Received: layer={layer!r}"
    )


def activation_arg(activation: Any) -> Tuple[Optional[str], Optional[Callable]]:
    """`(name, function)` of the activation `activation` names; `(None,
    None)` for None.

    Example:

    >>> activation_arg("softmax")[0]
    'softmax'
    """
    if activation is None:
        return None, None
    try:
        fn = keras.activations.get(activation)
    except (ValueError, TypeError) as error:
        raise ValueError(
            "`activation` must be a Keras activation (a name such as 'softmax', "
            f"'sigmoid', 'exponential', or the function). Received: "
            f"activation={activation!r}"
        ) from error
    return function_name(fn), fn


def per_output(value: Any, names: Sequence[Optional[str]], what: str) -> List[Any]:
    """`value` for each output: a dict's entry by output name, else the same
    value for every output."""
    if not isinstance(value, dict):
        return [value] * len(names)
    unknown = sorted(set(value) - {n for n in names if n is not None})
    if unknown:
        raise ValueError(
            f"The `{what}` dict has keys {unknown} that are not outputs of the "
            f"model; its outputs are {[n for n in names if n is not None]}."
        )
    return [value.get(name) for name in names]
