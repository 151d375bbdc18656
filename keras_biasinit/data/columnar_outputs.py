"""A model's outputs from pandas / Arrow columns (`adapt_output_bias`).

A DataFrame does not say which columns feed which output: `target=` is a
column (or a list of columns, one per unit) for a one-output model, or a
dict keyed by output name with one such entry per output; `classes=`
likewise (a list, or a dict by output name); `sample_weight=` is one weight
column for every output. The columns are read as
`keras_biasinit.data.columnar` reads them, all outputs' in one pass.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

from keras_biasinit.data.columnar import chunks
from keras_biasinit.data.columnar import column_names
from keras_biasinit.data.columnar import columnar_kind
from keras_biasinit.data.columnar import count_rows
from keras_biasinit.data.columnar import read_values
from keras_biasinit.data.columnar import select_columns
from keras_biasinit.data.columnar import select_weight


def per_output(value: Any, outputs: Sequence[str], what: str,
               columns: Sequence) -> List[Any]:
    """`adapt_output_bias`'s `target=` (or `classes=`) for each output: one
    value for a one-output model, or a dict keyed by output name."""
    if isinstance(value, dict):
        extra = sorted(set(value) - set(outputs), key=str)
        missing = [name for name in outputs if name not in value]
        if extra or (missing and what == "target"):
            raise ValueError(
                f"`{what}=` is a dict keyed by output name; the outputs are "
                f"{list(outputs)}. Missing: {missing}; unknown: {extra}."
            )
        return [value.get(name) for name in outputs]
    if value is not None and len(outputs) == 1:
        return [value]
    if value is None and what != "target":
        return [None] * len(outputs)
    raise ValueError(
        f"`{what}=` for columnar data is a column (or a list of columns) for a "
        "one-output model, or a dict keyed by output name with one each; the "
        f"outputs are {list(outputs)} and the columns {list(columns)}. "
        f"Received: {what}={value!r}"
    )


def columnar_outputs_reader(data: Any, outputs: Sequence[str], target: Any,
                            sample_weight: Optional[str], classes: Any,
                            steps: Optional[int]):
    """`(make_iterator, total rows)` of `keras_biasinit.data.outputs` for a
    pandas or Arrow input: each step yields `([(values, weights) per output],
    None, rows)`, all outputs weighted by the one `sample_weight` column."""
    names = column_names(data, columnar_kind(data))
    keys = per_output(target, outputs, "target", names)
    class_lists = per_output(classes, outputs, "classes", names)
    selected = [select_columns(data, key, "target") for key in keys]
    weight = select_weight(data, sample_weight)
    needed = [c for columns, _ in selected for c in columns] + weight
    make_chunks = chunks(data, needed, steps)

    def make_iterator():
        for chunk in make_chunks():
            weights = read_values(chunk, weight, True) if weight else None
            parts = [(read_values(chunk, columns, single, labels), weights)
                     for (columns, single), labels in zip(selected, class_lists)]
            yield parts, None, chunk[1]

    return make_iterator, count_rows(data, steps)
