"""One pandas or Arrow column -> a checked NumPy array.

A column becomes NumPy only when nothing is lost or invented on the way:

- nulls (pandas `NA`/`NaN`/`None`, Arrow nulls) are refused with their count,
  never read as NaN or 0;
- numeric and bool columns (NumPy, pandas nullable and Arrow-backed dtypes)
  are read as they are;
- label columns (strings, categoricals, Arrow dictionaries) become class ids
  only with the class list `classes` (id = position in the list), and any
  column is mapped through `classes` when it is given; without it they are
  refused: the list is never taken from the data, whose categories and their
  order can differ between files, shards and batches.

Neither pandas nor pyarrow is imported here unless a column of theirs comes in.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np



def library(value: Any) -> Optional[str]:
    """`"pandas"` or `"pyarrow"` for their objects (by type, never importing)."""
    top = type(value).__module__.split(".")[0]
    return top if top in ("pandas", "pyarrow") else None


def _label(name: Any) -> str:
    return "the column" if name is None else f"Column {name!r}"


def _null_error(name: Any, nulls: int, rows: int, where: str) -> ValueError:
    return ValueError(
        f"{_label(name)} has {nulls} null value(s) in {rows} rows{where}. Nulls "
        "are never read as NaN or 0: drop those rows or fill them first (e.g. "
        "`df.dropna(subset=[...])`, `pyarrow.compute.drop_null`, or a filter "
        "on the Parquet scan)."
    )


def _labels_error(name: Any, kind: str, seen: Sequence) -> ValueError:
    shown = list(seen)[:10]
    return ValueError(
        f"{_label(name)} holds {kind} labels (e.g. {shown}). They become class "
        "ids only with the class list, in id order: pass `classes=[...]` (to "
        "`ClassPriorBias.from_dataset`, `ComputeInitializer` or "
        f"`adapt_output_bias`), e.g. `classes={sorted(map(str, shown))!r}`. It "
        "is never taken from the data, whose categories and their order can "
        "differ between files and shards."
    )


def _type_error(name: Any, kind: Any) -> TypeError:
    return TypeError(
        f"{_label(name)} must be numeric (bool, integer or float); its type is "
        f"{kind}. Convert it first, or pick another column."
    )


def _unknown_error(name: Any, missing: Sequence, count: int) -> ValueError:
    return ValueError(
        f"{_label(name)} holds {count} value(s) not in `classes`, e.g. "
        f"{list(missing)[:5]}. Add them to `classes=` (every label needs an "
        "id), or drop those rows first."
    )


def column_to_numpy(column: Any, name: Any = None,
                    classes: Optional[Sequence] = None, where: str = "") -> np.ndarray:
    """A pandas Series or Arrow (Chunked)Array as a 1-D NumPy array.

    Args:
        column: the column.
        name: its name, for messages.
        classes: the class list: each value becomes its position in it.
            Defaults to None: numeric and bool columns only.
        where: where the column was read, for messages (e.g. " (batch at
            row 4096)").

    Example:

    >>> import pyarrow as pa
    >>> column_to_numpy(pa.array(["b", "a", "b"]).dictionary_encode(), "label",
    ...                 classes=["a", "b"]).tolist()
    [1, 0, 1]
    >>> column_to_numpy(pa.array([1.5, None]), "price")
    Traceback (most recent call last):
    ...
    ValueError: Column 'price' has 1 null value(s) in 2 rows. Nulls ...
    """
    if library(column) == "pandas":
        return _pandas_column(column, name, classes, where)
    return _arrow_column(column, name, classes, where)


def _pandas_column(series, name, classes, where) -> np.ndarray:
    nulls = int(series.isna().sum())
    if nulls:
        raise _null_error(name, nulls, len(series), where)
    dtype = series.dtype
    if classes is not None:
        import pandas as pd  # a pandas column is here: pandas is imported

        index = pd.Index(list(classes))
        if type(dtype).__name__ == "CategoricalDtype":
            ids = index.get_indexer(series.cat.categories)[series.cat.codes.to_numpy()]
        else:
            ids = index.get_indexer(series)
        bad = ids < 0
        if bad.any():
            raise _unknown_error(name, series[bad].unique(), int(bad.sum()))
        return ids.astype(np.int64)
    if type(dtype).__name__ == "CategoricalDtype":
        raise _labels_error(name, "categorical", series.cat.categories)
    if dtype.kind not in "biuf":
        if dtype.kind in "OSU":
            raise _labels_error(name, "string (or object)", series.head(100).unique())
        raise _type_error(name, dtype)
    return series.to_numpy(dtype=getattr(dtype, "numpy_dtype", None))


def _arrow_column(array, name, classes, where) -> np.ndarray:
    import pyarrow as pa  # an Arrow column is here: pyarrow is imported
    import pyarrow.compute as pc

    if array.null_count:
        raise _null_error(name, array.null_count, len(array), where)
    kind = array.type
    if classes is not None:
        values = kind.value_type if pa.types.is_dictionary(kind) else kind
        try:
            value_set = pa.array(list(classes), type=values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as error:
            raise ValueError(
                f"`classes` must hold values of {_label(name).lower()}'s type "
                f"{values}. Received: classes={list(classes)!r} ({error})"
            ) from None
        ids = pc.index_in(array, value_set=value_set)
        if ids.null_count:
            missing = pc.filter(array, pc.is_null(ids))
            raise _unknown_error(name, pc.unique(missing).to_pylist(), ids.null_count)
        return ids.to_numpy().astype(np.int64)
    if pa.types.is_dictionary(kind):
        dictionary = array.dictionary if isinstance(array, pa.Array) else (
            pc.unique(array).to_pylist())
        raise _labels_error(name, "dictionary (categorical)", list(dictionary))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        raise _labels_error(name, "string", pc.unique(array.slice(0, 100)).to_pylist())
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)
            or pa.types.is_boolean(kind)):
        raise _type_error(name, kind)
    return array.to_numpy(zero_copy_only=False)
