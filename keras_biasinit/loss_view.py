"""What each output's loss sees: its Keras mask on the data, and its elements.

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
without a mask needs no `x` at all. A mask made inside a nested model, or
anywhere in a subclassed model, does not show on the symbolic outputs:
where such a model holds a layer that makes masks (`mask_zero=True`,
`Masking`, a `compute_mask` of its own), `RuntimeMasks` runs the whole model
on `x` and reads its outputs' masks (only once, if the first batch has none).

`loss_view(model, heads, class_weight)` puts it together for the heads of
`keras_biasinit.heads`: how each output's loss counts its elements
(`keras_biasinit.best_constant.counting`) and the masks to compute.

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

from keras_biasinit._optional import is_tf_dataset
from keras_biasinit.best_constant.counting import check_single_output
from keras_biasinit.best_constant.counting import loss_elements
from keras_biasinit.data.loss_elements import LossElements
from keras_biasinit.data.loss_elements import check_class_weight_shape
from keras_biasinit.data.loss_elements import class_weighted
from keras_biasinit.data.progress import print_msg


class OutputMasks:
    """The masks of some model outputs, as a function of the inputs `x`."""

    def __init__(self, model: keras.Model, masks: List[Any],
                 indices: Sequence[int]) -> None:
        present = [m for m in masks if m is not None]
        self._where = [None if m is None else present.index(m) for m in masks]
        self._model = keras.Model(_input_structure(model), present)
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


class RuntimeMasks:
    """The masks of some outputs, read from the whole model run on `x`: for
    a subclassed model, or a nested one that makes masks, whose symbolic
    outputs do not show the masks Keras's loss sees at run time. If the
    first batch shows no mask on any output, the model is not run again."""

    def __init__(self, model: keras.Model, indices: Sequence[int]) -> None:
        self._model, self.indices, self._none = model, list(indices), False

    def describe(self) -> str:
        return (f"the whole model '{self._model.name}' (a mask made inside a "
                "nested or subclassed model is seen only by running it)")

    def __call__(self, x: Any) -> List[Optional[np.ndarray]]:
        if self._none:
            return [None] * len(self.indices)
        outputs = self._model(x, training=False)
        if isinstance(outputs, dict):
            outputs = list(outputs.values())
        elif not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        masks = [getattr(outputs[i], "_keras_mask", None) for i in self.indices]
        self._none = all(m is None for m in masks)
        return [None if m is None else keras.ops.convert_to_numpy(m).astype(bool)
                for m in masks]


def _input_structure(model: keras.Model) -> Any:
    """The model's symbolic inputs, in the structure `x` is given in."""
    for owner in (model, getattr(model, "_functional", None)):
        structure = getattr(owner, "_inputs_struct", None)
        if structure is not None:
            return structure
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs


def _makes_masks(layer) -> bool:
    """Whether `layer` puts a mask on its output (as far as can be told):
    `mask_zero=True`, `Masking`, or a `compute_mask` of its own outside Keras."""
    own = type(layer).compute_mask is not keras.layers.Layer.compute_mask
    return bool(getattr(layer, "mask_zero", False)) or isinstance(
        layer, keras.layers.Masking) or (
        own and not type(layer).__module__.startswith("keras."))


def _hidden_masks(model: keras.Model) -> bool:
    """Whether masks may arise where the symbolic outputs cannot show them:
    inside a subclassed model, or inside a model nested in this one."""
    nested = [layer for layer in model._flatten_layers(include_self=False)
              if isinstance(layer, keras.Model)]
    if _symbolic_outputs(model) is None:
        nested = [model]
    return any(_makes_masks(layer) for inner in nested
               for layer in inner._flatten_layers(include_self=True))


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


def output_masks(model: keras.Model, indices: Sequence[int]) -> Any:
    """An `OutputMasks` for the outputs at `indices` (positions in
    `model.outputs`), or None when none of them carries a Keras mask; a
    `RuntimeMasks` where masks may be made out of the symbolic graph's
    sight (a subclassed model, or a nested model, with a layer that makes
    masks)."""
    if _hidden_masks(model):
        return RuntimeMasks(model, indices)
    outputs = _symbolic_outputs(model)
    if outputs is None:
        return None
    masks = [getattr(outputs[i], "_keras_mask", None) if i < len(outputs) else None
             for i in indices]
    if all(m is None for m in masks):
        return None
    return OutputMasks(model, masks, indices)


def loss_view(model: keras.Model, heads: Sequence[Any], class_weight: Any = None,
              verbose: int = 0) -> "tuple[List[LossElements], Optional[OutputMasks]]":
    """Per head how its loss counts its elements, and the masks on the heads'
    outputs (None without any); at `verbose`, says what runs on `x`."""
    check_single_output(class_weight, heads[0].num_outputs)
    elements = [loss_elements(head.spec, head.units, f"output '{head.name}'",
                              class_weight) for head in heads]
    masks = output_masks(model, [head.index for head in heads])
    if masks is not None and verbose:
        print_msg("Outputs with a Keras mask: only unmasked elements count; the "
                  f"mask is computed from x each batch by: {masks.describe()}.")
    return elements, masks


class _ClassWeighted(keras.utils.PyDataset):
    """A `PyDataset` whose batches carry `fit`'s class weights."""

    def __init__(self, data: keras.utils.PyDataset, class_weight, ids: bool):
        super().__init__()
        self._data, self._class_weight, self._ids = data, class_weight, ids

    def __len__(self) -> int:
        return len(self._data)

    @property
    def num_batches(self):
        return self._data.num_batches

    def __getitem__(self, index):
        x, y, *w = self._data[index]
        return x, y, class_weighted(y, w[0] if w else None, self._class_weight,
                                    self._ids)


def _tf_class_weights(class_weight, ids: bool):
    """A `Dataset.map` function: `fit`'s class weights times any sample weights."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    def weigh(x, y, w=None):
        check_class_weight_shape(y.shape, y.dtype.is_integer, ids)
        classes = y
        if y.shape.rank >= 2:
            classes = y[..., 0] if y.shape[-1] == 1 else tf.argmax(y, axis=-1)
        classes = tf.cast(tf.round(tf.cast(classes, tf.float64)), tf.int64)
        cw = tf.ones_like(classes, tf.float32)
        for key, value in class_weight.items():
            cw = tf.where(classes == key, tf.constant(value, tf.float32), cw)
        if w is None:
            return x, y, cw
        w = tf.cast(w, tf.float32)
        if w.shape.rank == 2 and w.shape[1] == 1 and cw.shape.rank > 1:
            w = w[:, 0]
        while w.shape.rank < cw.shape.rank:
            w = w[..., None]
        while cw.shape.rank < w.shape.rank:
            cw = cw[..., None]
        return x, y, w * cw

    return weigh


def with_class_weight(data: Any, class_weight: Any, ids: bool = False) -> Any:
    """`data` (`(x, y[, w])` arrays, a `tf.data.Dataset` or a `PyDataset`) with
    `fit`'s class weights folded into its sample weights, for `evaluate`,
    which takes no `class_weight`."""
    if class_weight is None:
        return data
    if isinstance(data, tuple):
        x, y, *w = data
        return x, y, class_weighted(y, w[0] if w else None, class_weight, ids)
    if isinstance(data, keras.utils.PyDataset):
        return _ClassWeighted(data, class_weight, ids)
    if is_tf_dataset(data):
        return data.map(_tf_class_weights(class_weight, ids))
    raise TypeError(
        "`class_weight` needs data that `evaluate` reads twice: a tuple of "
        "arrays, a tf.data.Dataset or a keras.utils.PyDataset. Received: "
        f"{type(data).__name__}."
    )
