"""Finding a model's output heads: the bias to set, the activation, the loss.

The rule: an output's head is the layer whose output reaches the model
output through only output-preserving layers (activations, shape-only layers
and `Rescaling`; `keras_biasinit.heads.preserving`), and only the trailing
run of such layers counts. It is found by walking back from the output: in
the graph of a functional, `Sequential` or nested model
(`keras_biasinit.heads.graph`), or, for a subclassed model, in one traced
call of `call()` (`keras_biasinit.heads.trace`). Where the walk cannot see
(a `Lambda`, an operation in `call()`), it is a ValueError that names
`layer=` and `activation=`; with `layer=`, what lies between the layer and
the output and cannot be seen is taken on the caller's word to pass the
layer's units through, with `activation=` applied.

Each head is paired with its output's loss (`loss=`, else the compiled one)
and looked up in the table (`keras_biasinit.best_constant`), all before any
data is read (a subclassed model is traced on a few rows) and before any
bias changes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, List, Optional, Tuple

import keras
import numpy as np

from keras_biasinit.best_constant import LossSpec
from keras_biasinit.best_constant import Rule
from keras_biasinit.best_constant import identify_loss
from keras_biasinit.best_constant import rule_for
from keras_biasinit.heads.arguments import per_output
from keras_biasinit.heads.path import Path
from keras_biasinit.heads.preserving import AFFINE
from keras_biasinit.heads.preserving import kind_of
from keras_biasinit.heads.units import UnitMap
from keras_biasinit.heads.units import follow
from keras_biasinit.heads.walks import NAME_IT
from keras_biasinit.heads.walks import output_paths
from keras_biasinit.heads.walks import walkers_of

__all__ = ["Head", "find_heads"]



@dataclasses.dataclass
class Head:
    """One output: where its bias is, how the loss sees it, its table row."""

    name: str
    index: int
    layer: Any
    activation: str
    spec: LossSpec
    rule: Optional[Rule]
    units: int
    num_outputs: int = 1
    unit_map: Optional[UnitMap] = None

    def bias_values(self, constants: Any) -> Optional[np.ndarray]:
        """The bias that puts the loss's best `constants` at every loss
        unit; None when the bias is the constants as they are."""
        if self.unit_map is None or self.unit_map.trivial:
            return None
        return self.unit_map.bias(constants, self.layer.name)


def _bias_shape(layer: Any, output: str) -> Tuple[int, ...]:
    what = (f"Output '{output}': its head, layer '{layer.name}' "
            f"({type(layer).__name__}),")
    if getattr(layer, "use_bias", True) is False:
        raise ValueError(
            f"{what} has no bias (`use_bias=False`): there is nothing to set. Build "
            "it with `use_bias=True`, or pass `layer=` naming a layer with a bias."
        )
    if hasattr(layer, "bias_axes") and not layer.bias_axes:
        raise ValueError(
            f"{what} has no bias (`bias_axes=None`): there is nothing to set. Give "
            "it `bias_axes=` (e.g. the output axis letter), or pass `layer=`."
        )
    if not hasattr(layer, "bias_initializer"):
        raise ValueError(f"{what} has no bias to set. {NAME_IT}")
    bias = getattr(layer, "bias", None)
    if bias is not None:
        return tuple(int(d) for d in bias.shape)
    for attr in ("units", "filters"):
        if isinstance(getattr(layer, attr, None), int):
            return (getattr(layer, attr),)
    raise ValueError(
        f"{what} is not built yet and its number of units is unknown: build the "
        "model first (e.g. `model.build(input_shape)`)."
    )


def _unit_map(path: Path, bias_shape, activation: Optional[str], output: str):
    shape = path.head_shape
    if shape is None:
        moving = [a for a in path.after
                  if kind_of(a) == AFFINE or type(a).__name__ in (
                      "Reshape", "Flatten", "Permute")]
        if moving:
            raise ValueError(
                f"Output '{output}': layer '{moving[0].name}' moves or rescales the "
                "head's units, and the model is not built: build it first."
            )
        shape = bias_shape
    return follow(path.head, bias_shape, shape, path.after, activation)


def _compiled_loss(model: keras.Model, loss: Any) -> Any:
    if loss is not None:
        return loss
    if not getattr(model, "compiled", False) or model.loss is None:
        raise ValueError(
            "The model has no loss: compile it (`model.compile(loss=...)`) or "
            "pass `loss=`."
        )
    return model.loss


def _loss_per_output(loss: Any, names: List[str]) -> List[Any]:
    if isinstance(loss, dict):
        return per_output(loss, names, "loss")
    if isinstance(loss, (list, tuple)):
        if len(loss) != len(names):
            raise ValueError(
                f"The loss list has {len(loss)} items but the model has "
                f"{len(names)} outputs {names}: give one loss per output."
            )
        return list(loss)
    return [loss] * len(names)


def find_heads(model: keras.Model, loss: Optional[Any] = None, *,
               layer: Any = None, activation: Any = None,
               sample: Optional[Callable[[], Any]] = None,
               require_rule: bool = True) -> List[Head]:
    """Every output that has a loss, as a `Head`; ValueError on any problem.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((3,)), keras.layers.Dense(6, name="logits"),
    ...     keras.layers.Reshape((2, 3)), keras.layers.Softmax()])
    >>> model.compile(loss="sparse_categorical_crossentropy")
    >>> head, = find_heads(model)
    >>> head.layer.name, head.activation, head.units
    ('logits', 'softmax', 3)

    Args:
        model: a Keras model.
        loss: the loss, in any form `compile` takes. Defaults to None: the
            compiled loss.
        layer: the head (a layer or its name), or a dict of them by output
            name. Defaults to None: found by the rule.
        activation: what `call()` applies after the head outside any layer,
            or a dict by output name. Defaults to None.
        sample: a function returning a few rows of the model's inputs, to
            trace a subclassed model's `call()` with. Defaults to None.
        require_rule: whether an output whose (loss, activation) pair is not
            in the table is an error; if False its `rule` is None. Defaults to
            True.
    """
    loss = _compiled_loss(model, loss)
    walkers, graph = walkers_of(model, sample)
    paths = output_paths(model, layer, activation, walkers, graph)
    names = [name or path.head.name for (name, _), (path, _) in zip(walkers, paths)]
    heads = []
    for index, (name, (path, act), output_loss) in enumerate(
            zip(names, paths, _loss_per_output(loss, names))):
        if output_loss is None:
            continue
        unit_map = _unit_map(path, _bias_shape(path.head, name), act, name)
        spec = identify_loss(output_loss, unit_map.activation)
        try:
            rule = rule_for(spec, unit_map.activation, name)
        except ValueError:
            if require_rule:
                raise
            rule = None
        heads.append(Head(name, index, path.head, unit_map.activation, spec, rule,
                          unit_map.units, len(names), unit_map))
    if not heads:
        raise ValueError("No output of the model has a loss: there is nothing to set.")
    return heads
