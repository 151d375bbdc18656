"""Where each bias unit reaches the loss: the head's units pushed forward.

From the head to the model output, the output-preserving layers
(`keras_biasinit.heads.preserving`) move units (`Reshape`, `Permute`,
`Flatten`), rescale them (`Rescaling`: `y = x * scale + offset`) or apply an
activation. `follow` pushes an index array, laid out like the head's output,
through them, with the composed `scale` and `offset` beside it. The loss sees
position `p` as `activation(scale[p] * bias[index[p]] + offset[p])` (plus the
kernel's part, ~0 at init), so the constant `c` the loss table finds for the
unit `p[-1]` of the loss's last axis asks for

    bias[index[p]] = (c[p[-1]] - offset[p]) / scale[p]

at every `p`. `UnitMap.bias(c)` solves it; a bias unit asked for two
different values (a unit broadcast over loss units that need different
constants) is a ValueError.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from keras_biasinit.heads.preserving import ACTIVATION
from keras_biasinit.heads.preserving import AFFINE
from keras_biasinit.heads.preserving import MIXING
from keras_biasinit.heads.preserving import activation_name
from keras_biasinit.heads.preserving import affine_parts
from keras_biasinit.heads.preserving import function_name
from keras_biasinit.heads.preserving import kind_of
from keras_biasinit.heads.preserving import move_units

__all__ = ["UnitMap", "follow"]

@dataclasses.dataclass
class UnitMap:
    """The loss's view of a head's bias: `index`, `scale` and `offset` laid
    out like one example of the model output; `activation` the (single)
    non-linear activation on the way, or "linear"."""

    index: np.ndarray
    scale: np.ndarray
    offset: np.ndarray
    activation: str
    bias_shape: Tuple[int, ...]

    @property
    def units(self) -> int:
        """The width of the loss's last axis (1 for a scalar output)."""
        return int(self.index.shape[-1]) if self.index.ndim else 1

    @property
    def trivial(self) -> bool:
        """Whether the bias is the loss's constants as they are."""
        units = self.units
        last = self.index.reshape(-1, units) if self.index.ndim else self.index
        return (tuple(self.bias_shape) == (units,)
                and np.array_equal(last, np.broadcast_to(np.arange(units),
                                                         np.shape(last)))
                and np.all(self.scale == 1) and not np.any(self.offset))

    def bias(self, constants: Any, layer_name: str) -> np.ndarray:
        """The bias (of `bias_shape`) that puts `constants` (one per unit of
        the loss's last axis, or one) at every loss unit.

        Example:

        >>> m = UnitMap(np.array([[0, 1], [2, 3]]), np.full((2, 2), 2.0),
        ...             np.zeros((2, 2)), "linear", (4,))
        >>> m.bias([1.0, 3.0], "dense").tolist()
        [0.5, 1.5, 0.5, 1.5]
        """
        c = np.asarray(constants, np.float64).reshape(-1)
        if self.index.ndim:
            c = np.broadcast_to(c, (self.units,))
        want = ((c - self.offset) / self.scale).reshape(-1)
        index = self.index.reshape(-1)
        size = int(np.prod(self.bias_shape))
        low, high = np.full(size, np.inf), np.full(size, -np.inf)
        np.minimum.at(low, index, want)
        np.maximum.at(high, index, want)
        spread = high - low
        bad = np.flatnonzero(spread > 1e-6 * np.maximum(1.0, np.abs(high)))
        if bad.size:
            j = int(bad[0])
            raise ValueError(
                f"Bias unit {j} of layer '{layer_name}' reaches several loss units "
                f"that need different constants ({low[j]:.6g} and {high[j]:.6g}): "
                "the layers after it broadcast or move one bias value onto units "
                "the loss treats apart, so no bias gives the best constant. Give "
                "the head one unit per loss unit (e.g. a `Dense` whose units "
                "match the loss's last axis)."
            )
        return low.reshape(self.bias_shape)


def _start(layer, bias_shape, shape) -> np.ndarray:
    """The bias unit at each position of the head's own output."""
    units = np.arange(int(np.prod(bias_shape))).reshape(bias_shape)
    if getattr(layer, "data_format", None) == "channels_first" and len(shape) > 1:
        units = units.reshape(units.shape + (1,) * (len(shape) - units.ndim))
    try:
        return np.array(np.broadcast_to(units, shape))
    except ValueError as error:
        raise ValueError(
            f"The bias of layer '{layer.name}' has shape {tuple(bias_shape)}, "
            f"which does not broadcast to its output shape {shape}."
        ) from error


def _keeps_rows(layer, shape) -> bool:
    """Whether a shape-only layer keeps every row of the last axis whole."""
    if not shape:
        return True
    width = shape[-1]
    moved = move_units(layer, np.arange(int(np.prod(shape))).reshape(shape))
    if not moved.ndim or moved.shape[-1] != width:
        return False
    rows = moved.reshape(-1, width)
    return bool((rows % width == np.arange(width)).all()
                and (rows // width == rows[:, :1] // width).all())


def _combine(current: str, new: str, what: str, layer_name: str) -> str:
    if new == "linear":
        return current
    if current != "linear":
        raise ValueError(
            f"The output of layer '{layer_name}' goes through two non-linear "
            f"activations, {current} and then {new} ({what}): the best constant "
            "is known for one output activation."
        )
    return new


def _concrete(shape: Sequence[Optional[int]]) -> Tuple[int, ...]:
    """Unknown dimensions as 1: the bias is constant along them."""
    return tuple(1 if d is None else int(d) for d in shape)


def follow(head: Any, bias_shape: Sequence[int], head_shape: Sequence[Optional[int]],
           after: Sequence[Any], activation: Optional[str] = None) -> UnitMap:
    """The `UnitMap` of `head` (its bias of `bias_shape`, its output of
    `head_shape`, one example) through the output-preserving layers `after`
    it (in call order), with `activation` applied at the end (outside any
    layer), if given."""
    shape = _concrete(head_shape)
    index = _start(head, tuple(bias_shape), shape)
    scale, offset = np.ones(shape), np.zeros(shape)
    act = function_name(getattr(head, "activation", None))
    for layer in after:
        kind = kind_of(layer)
        if kind == ACTIVATION:
            act = _combine(act, activation_name(layer), f"layer '{layer.name}'",
                           head.name)
        elif kind == AFFINE:
            if act != "linear":
                raise ValueError(
                    f"Layer '{layer.name}' (Rescaling) rescales the output of "
                    f"layer '{head.name}' after its {act} activation: the loss "
                    "then sees no activation the table knows. Put the Rescaling "
                    "before the activation, or pass `layer=`/`activation=`."
                )
            s, o = affine_parts(layer, index.shape)
            scale, offset = scale * s, offset * s + o
        else:
            if act in MIXING and not _keeps_rows(layer, index.shape):
                raise ValueError(
                    f"Layer '{layer.name}' ({type(layer).__name__}) moves the "
                    f"units of layer '{head.name}' after its {act}, which then "
                    "no longer runs over the loss's last axis. Apply the softmax "
                    "after the reshape (e.g. a `Softmax` layer at the end)."
                )
            index, scale, offset = (move_units(layer, a)
                                    for a in (index, scale, offset))
    if activation is not None:
        act = _combine(act, activation, "`activation=`", head.name)
    return UnitMap(index, scale, offset, act, tuple(int(d) for d in bias_shape))
