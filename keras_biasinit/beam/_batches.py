"""Examples (or batches) of a PCollection -> checked NumPy `(values, weights)`.

Unbatched examples are gathered (per bundle) and stacked, so that the
statistics see a few thousand rows per update, never one: the same
element forms and the same checks and error messages as `from_dataset`
(`keras_biasinit.data.elements`). Elements that are pandas DataFrames or
pyarrow Tables / RecordBatches (what `beam.io.ReadFromParquetBatched` yields)
are batches whatever `batched=` says, read by column as `from_dataset` reads
them (`keras_biasinit.data.columnar`): only the named columns become NumPy.
"""

from __future__ import annotations

from typing import Any, Iterator, List

import apache_beam as beam
import numpy as np
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from keras_biasinit.data import PASS_BATCH_SIZE
from keras_biasinit.data import read_batches
from keras_biasinit.data.columnar import columnar_kind
from keras_biasinit.data.elements import Batch
from keras_biasinit.data.elements import Key
from keras_biasinit.data.elements import WeightedKey
from keras_biasinit.data.elements import _check_not_nested
from keras_biasinit.data.elements import _pick
from keras_biasinit.data.elements import _to_batch

#: Examples stacked into one batch (fewer at the end of a bundle).
EXAMPLES_PER_BATCH = PASS_BATCH_SIZE * 4


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


def examples_to_batch(examples: List[Any], key: Any, role: str) -> Batch:
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


def columnar_to_batches(element: Any, key: Any, role: str,
                        columns: dict) -> Iterator[Batch]:
    """The checked batches of a DataFrame / Table / RecordBatch element:
    `columns` holds `sample_weight` and `classes`, as `read_batches` takes
    them."""
    batches = read_batches(element, target=key, role=role, verbose=0, **columns)
    batches.allow_empty = True  # one empty element is fine; the union is checked
    yield from batches


def element_to_batches(element: Any, key: Any, role: str,
                       columns: dict) -> Iterator[Batch]:
    """The checked batch of an element that is itself a batch (if not empty)."""
    if columnar_kind(element) is not None:
        yield from columnar_to_batches(element, key, role, columns)
        return
    if columns["sample_weight"] is not None:
        key = WeightedKey(key, columns["sample_weight"])
    values, weights = _pick(element, key, role)
    batch = _to_batch(values, weights, fold_rows=role == "target")
    if batch[0].shape[0]:
        yield batch


class _Batcher(beam.DoFn):
    """Elements -> checked batches, in one step of the pipeline: columnar
    elements (and, with `batched`, every element) are batches already;
    examples are gathered, up to `EXAMPLES_PER_BATCH`, and stacked (what is
    left at the end of a bundle too)."""

    def __init__(self, key: Any, role: str, batched: bool, columns: dict) -> None:
        super().__init__()
        self.key, self.role, self.batched, self.columns = key, role, batched, columns
        weight = columns["sample_weight"]
        self.example_key = key if weight is None else WeightedKey(key, weight)
        self._examples: List[Any] = []

    def start_bundle(self) -> None:
        self._examples = []

    def process(self, element) -> Iterator[Batch]:
        if self.batched or columnar_kind(element) is not None:
            yield from element_to_batches(element, self.key, self.role, self.columns)
            return
        self._examples.append(element)
        if len(self._examples) >= EXAMPLES_PER_BATCH:
            yield self._stack()

    def finish_bundle(self):
        if self._examples:
            yield WindowedValue(self._stack(), GlobalWindow().max_timestamp(),
                                [GlobalWindow()])

    def _stack(self) -> Batch:
        examples, self._examples = self._examples, []
        return examples_to_batch(examples, self.example_key, self.role)


class ToBatches(beam.PTransform):
    """Elements (in the global window) -> NumPy `(values, weights)` batches of
    the target (or features).

    Args:
        key: `target=` (or `features=`): a dict key, tuple index or path; for
            columnar elements a column or a list of columns.
        role: `"target"` or `"features"`.
        batched: whether each element is a batch (rows on axis 0); columnar
            elements always are.
        sample_weight: the weight key of dict elements, or the weight column.
        classes: the class list of a columnar label column.
    """

    def __init__(self, key: Key, role: str, batched: bool,
                 sample_weight: Any = None, classes: Any = None) -> None:
        super().__init__()
        self.key, self.role, self.batched = key, role, batched
        self.columns = {"sample_weight": sample_weight, "classes": classes}

    def expand(self, pcoll):
        return pcoll | "Batches" >> beam.ParDo(
            _Batcher(self.key, self.role, self.batched, self.columns))
