"""pandas and Arrow inputs: the named columns only, as NumPy batches of rows.

What is read:

- a pandas `DataFrame`, a pyarrow `Table` or `RecordBatch`: `target=` (or
  `features=`) names a column (values `(n,)`) or a list of columns (values
  `(n, d)`, one bias per column, in that order); `sample_weight=` names the
  weight column. Held in memory, read in one step.
- a pandas `Series`, a pyarrow `ChunkedArray` or `Array`: the column itself
  (no `target=`, or its own name).
- a `pyarrow.dataset.Dataset` (e.g. `pyarrow.dataset.dataset("data/",
  format="parquet")`, a folder or list of Parquet files): scanned in record
  batches of `SCAN_BATCH_ROWS` rows with little read-ahead, so memory stays
  bounded whatever the data's size; the scan projects the named columns, so
  no other column is read from disk. It can be read again (the exact order
  statistics' further passes scan it again). The progress bar counts rows
  against the dataset's row count where that is cheap (Parquet footers, data
  in memory), else without a total.

`steps=` counts rows. Each column goes through
`keras_biasinit.data.columns.column_to_numpy` (nulls refused, labels mapped
through `classes`). pandas and pyarrow are never imported here: their
objects are told by their type's module.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from keras_biasinit.data.columns import column_to_numpy
from keras_biasinit.data.columns import library

#: Rows per record batch of a `pyarrow.dataset.Dataset` scan.
SCAN_BATCH_ROWS = 65_536
#: Record batches (and files) a scan may read ahead: bounded memory.
SCAN_BATCH_READAHEAD = 2
SCAN_FRAGMENT_READAHEAD = 1

#: `(chunk, rows, first_row)`: a frame, a column or a record batch of rows.
Chunk = Tuple[Any, int, int]


def columnar_kind(data: Any) -> Optional[str]:
    """`"frame"`, `"column"`, `"dataset"` (pandas / Arrow) or None."""
    lib, name = library(data), type(data).__name__
    if lib == "pandas":
        return {"DataFrame": "frame", "Series": "column"}.get(name)
    if lib == "pyarrow":
        if name in ("Table", "RecordBatch"):
            return "frame"
        if name.endswith("Array"):  # ChunkedArray, Int64Array, ...
            return "column"
        if any(c.__name__ == "Dataset" for c in type(data).__mro__):
            return "dataset"
    return None


def column_names(data: Any, kind: str) -> List[Any]:
    if kind == "column":
        return [None]
    if library(data) == "pandas":
        return list(data.columns)
    return list(data.schema.names)


def _get(chunk: Any, name: Any) -> Any:
    if name is None:  # a single column
        return chunk
    return chunk[name] if library(chunk) == "pandas" else chunk.column(name)


def _guess(names: Sequence, role: str) -> Any:
    likely = ("label", "labels", "target", "y", "price") if role == "target" else (
        "features", "x")
    return next((n for n in likely if n in names), names[-1])


def select_columns(data: Any, key: Any, role: str) -> Tuple[List[Any], bool]:
    """`target=` / `features=` as `(column names, single)`: `single` for one
    named column (values `(n,)`), else a list (values `(n, d)`)."""
    kind = columnar_kind(data)
    names = column_names(data, kind)
    if kind == "column":
        own = getattr(data, "name", None)
        if key is None or (own is not None and key == own):
            return [None], True
        raise ValueError(
            f"`{role}={key!r}` was given, but the input is a single column "
            f"(named {own!r}). Leave `{role}=None` to read it."
        )
    if key is None:
        raise ValueError(
            f"A {type(data).__name__} holds several columns: {names}. Pass "
            f"`{role}=` naming the {role} column, e.g. `{role}="
            f"{_guess(names, role)!r}`, or a list of columns (one bias each)."
        )
    single = not isinstance(key, (list, tuple))
    columns = [key] if single else list(key)
    if not columns:
        raise ValueError(
            f"`{role}=` names a column or a list of columns of the "
            f"{type(data).__name__}; the list is empty. The columns are: {names}."
        )
    check_present(columns, names, role)
    return columns, single


def check_present(columns: Sequence, names: Sequence, role: str) -> None:
    """A ValueError listing the columns there are, for any one not there."""
    unknown = [c for c in columns if c not in names]
    if unknown:
        raise ValueError(
            f"No column {unknown[0]!r} (`{role}=`). The columns are: {names}."
        )


def select_weight(data: Any, sample_weight: Optional[str]) -> List[Any]:
    """`[sample_weight]` checked against the columns, or `[]`."""
    if sample_weight is None:
        return []
    kind = columnar_kind(data)
    if kind == "column" or isinstance(sample_weight, (list, tuple)):
        raise ValueError(
            "`sample_weight=` names the one weight column of a DataFrame, Table "
            "or dataset; a single column (Series, Array) has no other. "
            f"Received: sample_weight={sample_weight!r}"
        )
    check_present([sample_weight], column_names(data, kind), "sample_weight")
    return [sample_weight]


def _in_memory(data: Any, steps: Optional[int]) -> Iterator[Chunk]:
    if steps is not None:
        data = data.iloc[:steps] if library(data) == "pandas" else data.slice(0, steps)
    yield data, len(data), 0


def _scan(dataset: Any, columns: List[str], steps: Optional[int]) -> Iterator[Chunk]:
    """Record batches of the projected columns, at most `steps` rows."""
    scanner = dataset.scanner(
        columns=columns, batch_size=SCAN_BATCH_ROWS,
        batch_readahead=SCAN_BATCH_READAHEAD,
        fragment_readahead=SCAN_FRAGMENT_READAHEAD,
    )
    first = 0
    for batch in scanner.to_batches():
        rows = batch.num_rows
        if steps is not None and first + rows >= steps:
            yield batch.slice(0, steps - first), steps - first, first
            return
        if rows:
            yield batch, rows, first
        first += rows


def count_rows(data: Any, steps: Optional[int]) -> Optional[int]:
    """Rows one pass reads, where cheap to know (not by a scan of the data)."""
    if columnar_kind(data) != "dataset":
        rows = len(data)
    elif type(data).__name__ == "InMemoryDataset" or type(
            getattr(data, "format", None)).__name__ == "ParquetFileFormat":
        rows = data.count_rows()  # from the Parquet footers
    else:
        return None
    return rows if steps is None else min(rows, steps)


def chunks(data: Any, columns: List[Any], steps: Optional[int]
           ) -> Callable[[], Iterator[Chunk]]:
    """`make_chunks()`: one pass over `data` reading only `columns`."""
    if columnar_kind(data) == "dataset":
        return lambda: _scan(data, list(dict.fromkeys(columns)), steps)
    return lambda: _in_memory(data, steps)


def read_values(chunk: Chunk, columns: List[Any], single: bool,
                classes: Optional[Sequence] = None) -> np.ndarray:
    """The NumPy values of `columns` in one chunk: `(n,)` or `(n, d)`."""
    data, _, first = chunk
    where = f" (in the scan's batch from row {first})" if first else ""
    arrays = [column_to_numpy(_get(data, c), c, classes, where) for c in columns]
    return arrays[0] if single else np.column_stack(arrays)


def columnar_reader(data: Any, target: Any, role: str,
                    sample_weight: Optional[str], classes: Optional[Sequence],
                    steps: Optional[int]):
    """`(make_iterator, total rows)` of `keras_biasinit.data.read_batches` for
    a pandas or Arrow input: `make_iterator()` yields `(values, weights,
    rows)`.

    Example:

    >>> import pandas as pd
    >>> df = pd.DataFrame({"price": [1.0, 3.0], "w": [1.0, 0.5], "x": [0, 1]})
    >>> make_iterator, rows = columnar_reader(df, ["price", "x"], "target", "w",
    ...                                       None, None)
    >>> [(v.tolist(), w.tolist(), n) for v, w, n in make_iterator()], rows
    ([([[1.0, 0.0], [3.0, 1.0]], [1.0, 0.5], 2)], 2)
    """
    columns, single = select_columns(data, target, role)
    weight = select_weight(data, sample_weight)
    make_chunks = chunks(data, columns + weight, steps)

    def make_iterator():
        for chunk in make_chunks():
            values = read_values(chunk, columns, single, classes)
            weights = read_values(chunk, weight, True) if weight else None
            yield values, weights, chunk[1]

    return make_iterator, count_rows(data, steps)

