"""The Keras masks that reach a model's outputs, computed on the data.

A layer's `compute_mask` (`Embedding(mask_zero=True)`, `Masking`, ...) puts a
mask on its output, and layers that support masking pass it on (`Dense`,
`GRU(return_sequences=True)`, `TimeDistributed`, ...). The mask on a model
output reaches the loss: Keras leaves the masked elements out and
normalises each batch by the unmasked ones
(`keras_biasinit.data.loss_elements`).

In a functional or `Sequential` model the output's symbolic tensor carries
its mask as a symbolic tensor too, computed from the inputs by a few ops
(`not_equal`, `any`): `OutputMasks` is a small model of just those ops, run
on the `x` of each batch, so the rest of the model never runs. An output
without a mask needs no `x` at all. A subclassed model has no symbolic
outputs: its masks are not seen (say so in the docs; pass per-step sample
weights that are 0 on the padding instead).

Example:

>>> tokens = keras.Input((None,), dtype="int32")
>>> hidden = keras.layers.Embedding(10, 4, mask_zero=True)(tokens)
>>> model = keras.Model(tokens, keras.layers.Dense(3)(hidden))
>>> masks = output_masks(model, [0])
>>> masks.describe()
'not_equal'
>>> masks(np.array([[4, 2, 0]]))[0].tolist()
[[True, True, False]]
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

import keras
import numpy as np


class OutputMasks:
    """The masks of some model outputs, as a function of the inputs `x`."""

    def __init__(self, model: keras.Model, masks: List[Any],
                 indices: Sequence[int]) -> None:
        present = [m for m in masks if m is not None]
        self._where = [None if m is None else present.index(m) for m in masks]
        self._model = keras.Model(model.input, present)
        self.indices = list(indices)

    def describe(self) -> str:
        """The operations run on `x` each batch, in graph order."""
        return ", ".join(op.name for op in self._model.operations
                         if not isinstance(op, keras.layers.InputLayer))

    def __call__(self, x: Any) -> List[Optional[np.ndarray]]:
        """Per output asked for, its mask on the batch `x` (None: no mask)."""
        computed = self._model(x, training=False)
        if not isinstance(computed, (list, tuple)):
            computed = [computed]
        arrays = [keras.ops.convert_to_numpy(m).astype(bool) for m in computed]
        return [None if where is None else arrays[where] for where in self._where]


def _symbolic_outputs(model: keras.Model) -> Optional[list]:
    """The output tensors in the order the heads number them (a dict output
    in its own key order, as `keras_biasinit.heads` reads it)."""
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return None
    structure = getattr(model, "_outputs_struct", None)
    if isinstance(structure, dict):
        return list(structure.values())
    return list(outputs) if outputs else None


def output_masks(model: keras.Model, indices: Sequence[int]) -> Optional[OutputMasks]:
    """An `OutputMasks` for the outputs at `indices` (positions in
    `model.outputs`), or None when none of them carries a Keras mask (or
    the model has no symbolic outputs, as a subclassed model)."""
    outputs = _symbolic_outputs(model)
    if outputs is None:
        return None
    masks = [getattr(outputs[i], "_keras_mask", None) if i < len(outputs) else None
             for i in indices]
    if all(m is None for m in masks):
        return None
    return OutputMasks(model, masks, indices)
