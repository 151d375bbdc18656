"""Which elements an output's loss counts, and how much each weighs.

Keras weighs every element of a loss (an example, a time step, a pixel) by
its sample weight, times `fit`'s `class_weight[class of its label]`; leaves
out the masked ones (the output's Keras mask, and the labels equal to
`SparseCategoricalCrossentropy`'s `ignore_class`); and normalises each batch
by the elements left (`keras_biasinit.data.loss_elements`). `loss_elements`
reads that from the loss, checking what cannot have a finite best constant;
`per_example` turns a state's loss per row into the loss per example that
`evaluate` reports.

Example:

>>> from keras_biasinit.best_constant import identify_loss
>>> spec = identify_loss(keras.losses.SparseCategoricalCrossentropy(
...     ignore_class=-1))
>>> loss_elements(spec, 3, "output 'tags'")
LossElements(ids=True, sparse=True, class_weight=None, ignore_class=-1)
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from keras_biasinit.best_constant._state import RowsPerExample
from keras_biasinit.best_constant._state import with_expected_loss
from keras_biasinit.best_constant.spec import LossSpec
from keras_biasinit.data.loss_elements import LossElements
from keras_biasinit.data.loss_elements import check_class_weight

#: The losses whose integer targets of any shape are class ids.
ID_LOSSES = ("categorical_crossentropy", "sparse_categorical_crossentropy",
              "categorical_focal_crossentropy")


def _ignore_class(spec: LossSpec, units: int, name: str) -> Optional[int]:
    ignore = spec.params.get("ignore_class")
    if ignore is None:
        return None
    ignore = int(ignore)
    if 0 <= ignore < units:
        raise ValueError(
            f"For {name}, `ignore_class={ignore}` is one of the output's {units} "
            f"classes: Keras leaves every label {ignore} out of the loss, so the "
            f"best bias of unit {ignore} is -inf (its probability is never "
            "rewarded). Give the padding an id outside [0, "
            f"{units}) (e.g. -1) and keep `ignore_class` there, or drop that unit "
            "and shift the labels."
        )
    return ignore


def loss_elements(spec: LossSpec, units: int, name: str,
                  class_weight: Optional[Mapping[int, float]] = None
                  ) -> LossElements:
    """How the loss `spec` of an output with `units` units counts its elements.

    Args:
        spec: the output's loss.
        units: the output's units (the number of classes under softmax).
        name: the output, for messages (e.g. `"output 'tags'"`).
        class_weight: `fit`'s `{class: weight}`. Defaults to None.

    Returns:
        A `keras_biasinit.data.loss_elements.LossElements`.
    """
    return LossElements(ids=spec.kind in ID_LOSSES,
                        sparse=spec.kind == "sparse_categorical_crossentropy",
                        class_weight=check_class_weight(class_weight),
                        ignore_class=_ignore_class(spec, units, name))


def check_single_output(class_weight: Any, outputs: int) -> None:
    """`fit` takes `class_weight` for one output only: so do we."""
    if class_weight is not None and outputs > 1:
        raise ValueError(
            f"`class_weight` applies to a model with one output, as in "
            f"`Model.fit`; this one has {outputs}. Weigh each output's classes "
            "with its own sample weights instead: `(x, y, sample_weight)` with "
            "sample_weight a dict by output name of `class_weight[label]` arrays."
        )


def per_example(initializer, counts: RowsPerExample):
    """`initializer` with its `expected_loss` (a sum over the rows its state
    saw, / rows) turned into the loss per example: times rows / examples."""
    return with_expected_loss(initializer, counts.result())
