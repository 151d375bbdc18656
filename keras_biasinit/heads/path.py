"""The path from a model output back to its head, and why a walk may stop.

Both walks (the graph of a functional model, `keras_biasinit.heads.graph`,
and the recorded calls of a subclassed one, `keras_biasinit.heads.trace`)
step back from the output through output-preserving layers
(`keras_biasinit.heads.preserving`) and stop at the first layer that is not
one: that layer is the head if it can hold a bias (`holds_bias`). Anything
else stops the walk with `Unproven`, which says where and why.
"""

from __future__ import annotations

import dataclasses
from typing import Any, List, Optional, Tuple

__all__ = ["Path", "Unproven", "holds_bias"]


@dataclasses.dataclass
class Path:
    """A head, the shape of its output (one example; None if unknown) and the
    output-preserving layers after it, in call order; `proven` is False where
    the head is the caller's `layer=`, taken on their word."""

    head: Any
    head_shape: Optional[Tuple[Optional[int], ...]]
    after: List[Any]
    proven: bool = True


class Unproven(ValueError):
    """The walk from an output met something it cannot see through.

    Attributes:
        reason: what was met, in words.
        layer: the layer the walk stopped at, if any.
    """

    def __init__(self, reason: str, layer: Any = None) -> None:
        super().__init__(reason)
        self.reason, self.layer = reason, layer


def holds_bias(layer: Any) -> bool:
    """Whether `layer` is a kind of layer that can hold an output bias (a
    `Dense`, `Conv*`, `EinsumDense`, ...; with `use_bias=False` too)."""
    return hasattr(layer, "bias_initializer") or hasattr(layer, "bias_axes")


def stop_reason(layer: Any) -> str:
    """Why the walk cannot go on through `layer`."""
    kind = type(layer).__name__
    if not hasattr(layer, "trainable_weights"):  # a `keras.ops` node, no layer
        return (f"the operation '{layer.name}' ({kind}, from `keras.ops`) is "
                "applied outside any layer, and is not an activation the walk "
                "knows")
    if kind == "Lambda":
        return (f"layer '{layer.name}' is a Lambda: what its function does to the "
                "units cannot be proved")
    if getattr(layer, "_layers", None) or getattr(layer, "layers", None):
        return (f"layer '{layer.name}' ({kind}) computes the output from its "
                "sublayers with operations outside them")
    return (f"layer '{layer.name}' ({kind}) is neither an output layer with a bias "
            "nor an output-preserving layer (an activation, a shape-only layer or "
            "a Rescaling)")
