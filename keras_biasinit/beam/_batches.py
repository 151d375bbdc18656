"""Examples (or batches) of a PCollection -> checked NumPy `(values, weights)`.

Unbatched examples are grouped with `beam.BatchElements` and stacked, so that
the statistics see a few thousand rows per update, never one: the same
element forms and the same checks and error messages as `from_dataset`
(`keras_biasinit.data.elements`).
"""

from __future__ import annotations

from typing import Any, Iterator, List

import apache_beam as beam
import numpy as np

from keras_biasinit.data import PASS_BATCH_SIZE
from keras_biasinit.data.elements import Batch
from keras_biasinit.data.elements import Key
from keras_biasinit.data.elements import _check_not_nested
from keras_biasinit.data.elements import _pick
from keras_biasinit.data.elements import _to_batch


def _stack(parts: List[Any], what: str) -> np.ndarray:
    """One array from the examples' parts, or a ValueError naming the shapes."""
    try:
        return np.asarray(parts)
    except ValueError:
        shapes = sorted({str(np.shape(p)) for p in parts})
        raise ValueError(
            f"The examples' {what}s have different shapes ({', '.join(shapes[:4])}): "
            f"every example needs the same {what} shape. If each element is a "
            "batch of examples, pass `batched=True`."
        ) from None


def examples_to_batch(examples: List[Any], key: Key, role: str) -> Batch:
    """A checked batch from a list of examples: `(x, y)`, `(x, y, w)`, dicts
    or bare values (NumPy arrays or Python numbers)."""
    picked = [_pick(example, key, role) for example in examples]
    _check_not_nested(picked[0][0], role)
    values = _stack([v for v, _ in picked], role)
    weights = [w for _, w in picked]
    if all(w is None for w in weights):
        stacked = None
    elif any(w is None for w in weights):
        raise ValueError(
            "Some examples carry sample weights and others do not: use "
            "`(x, y, sample_weight)` elements for all of them, or for none."
        )
    else:
        stacked = _stack(weights, "sample weight")
    return _to_batch(values, stacked, fold_rows=role == "target")


def element_to_batches(element: Any, key: Key, role: str) -> Iterator[Batch]:
    """The checked batch of an element that is itself a batch (if not empty)."""
    values, weights = _pick(element, key, role)
    batch = _to_batch(values, weights, fold_rows=role == "target")
    if batch[0].shape[0]:
        yield batch


class ToBatches(beam.PTransform):
    """Elements -> NumPy `(values, weights)` batches of the target (or features).

    Args:
        key: `target=` (or `features=`): a dict key, tuple index or path.
        role: `"target"` or `"features"`.
        batched: whether each element is a batch (rows on axis 0).
    """

    def __init__(self, key: Key, role: str, batched: bool) -> None:
        super().__init__()
        self.key, self.role, self.batched = key, role, batched

    def expand(self, pcoll):
        key, role = self.key, self.role
        if self.batched:
            return pcoll | "Check" >> beam.FlatMap(element_to_batches, key, role)
        return (
            pcoll
            | "Group" >> beam.BatchElements(min_batch_size=PASS_BATCH_SIZE // 4,
                                            max_batch_size=PASS_BATCH_SIZE * 4)
            | "Stack" >> beam.Map(examples_to_batch, key, role)
        )
