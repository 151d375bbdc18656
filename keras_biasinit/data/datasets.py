"""One pass over a `tf.data.Dataset`: checked up front, batched, merged, counted.

Everything that can be known from the element spec is checked before the pass
starts (a dense numeric target, scalars are not batches), so a bad input fails
at once with a clear error instead of deep inside TensorFlow, after a long
pipeline has run. Errors raised by the user's own pipeline (a `map` function
that fails) pass through unchanged.
"""

from __future__ import annotations

import itertools
from typing import Any, Optional

import numpy as np

from keras_biasinit._optional import tensorflow as tf
from keras_biasinit.data.batched import is_batched_dataset
from keras_biasinit.data.elements import _check_not_nested
from keras_biasinit.data.elements import _pick
from keras_biasinit.data.elements import numeric_error
from keras_biasinit.data.progress import print_msg

#: Rows per batch when an unbatched dataset is batched for a pass.
PASS_BATCH_SIZE = 4096

#: With `merge_batches=True`, a tf.data pass reads batches of about this many
#: bytes of target: small batches are merged inside the tf.data graph
#: (`Dataset.rebatch`), so the pass's per-batch Python cost is paid once per
#: few MiB, not once per small batch.
PASS_BATCH_BYTES = 4 * 2**20


def _check_dtype(dtype: tf.DType, role: str) -> None:
    if dtype.is_bool or dtype.is_floating or (
        dtype.is_integer and not dtype.is_quantized
    ):
        return
    raise TypeError(numeric_error(role, dtype.name))


def check_specs(value_spec: Any, weight_spec: Any, role: str) -> None:
    """Dense numeric target (or features) and weights, from the element spec."""
    _check_not_nested(value_spec, role)
    for s, what in ((value_spec, role), (weight_spec, "sample weights")):
        if s is None:
            continue
        if not isinstance(s, tf.TensorSpec):
            composite = isinstance(s, (tf.RaggedTensorSpec, tf.SparseTensorSpec))
            note = " (ragged and sparse ones are not supported)" if composite else ""
            raise TypeError(
                f"The {what} must be a dense tensor; the dataset's element spec has "
                f"{s}{note}. Convert it in the pipeline (e.g. `.map(...)` with "
                "`.to_tensor()`)."
            )
        _check_dtype(s.dtype, what)


def check_cardinality(dataset: tf.data.Dataset, steps: Optional[int]) -> None:
    if int(dataset.cardinality()) == tf.data.INFINITE_CARDINALITY and steps is None:
        raise ValueError(
            "The dataset is infinite (e.g. it ends in `.repeat()`), so the pass "
            "would never end. Pass `steps=` to read a fixed number of elements."
        )


def check_batched(batched: Optional[bool], dataset: tf.data.Dataset,
                  value_spec: tf.TensorSpec) -> bool:
    """`batched`, or the detected answer; scalar elements are never batches."""
    if batched is None:
        return is_batched_dataset(dataset, value_spec)
    if batched and value_spec.shape.rank == 0:
        raise ValueError(
            "`batched=True` was given, but each element's target is a scalar "
            "(shape ()), so each element is one example, not a batch of rows. Pass "
            "`batched=False`, or leave `batched=None` to detect it."
        )
    return bool(batched)


def merged_rows(spec: Any, batched: bool) -> Optional[int]:
    """Rows of about `PASS_BATCH_BYTES` for elements of `spec`; None if unknown."""
    row_bytes = 0
    for s in tf.nest.flatten(spec):
        dims = s.shape[1:] if batched else s.shape
        if not dims.is_fully_defined():
            return None
        row_bytes += max(1, dims.num_elements()) * max(1, s.dtype.size)
    return int(min(2**16, max(1, PASS_BATCH_BYTES // row_bytes)))


def _last_row_marker(values: tf.Tensor) -> tf.Tensor:
    """1 in the last row of a batch, 0 elsewhere: after `rebatch`, the sum of a
    merged batch's markers is the number of the user's batches it completes."""
    n = tf.shape(values)[0]
    return tf.one_hot(n - 1, n, dtype=tf.uint8)


def pass_dataset(dataset, target, role, steps, batched, verbose, merge_batches):
    """The pipeline of one pass and how to read it.

    Returns `(make_iterator, total, unit)`: `make_iterator()` yields
    `(values, weights, units)` NumPy triples, `units` being how many of the
    user's batches (or examples, for unbatched data) each one holds, `total`
    their number when known.
    """
    check_cardinality(dataset, steps)
    value_spec, weight_spec = _pick(dataset.element_spec, target, role)
    check_specs(value_spec, weight_spec, role)
    batched = check_batched(batched, dataset, value_spec)

    ds = dataset if steps is None else dataset.take(steps)
    total = int(ds.cardinality())
    total = total if total >= 0 else None
    rows = merged_rows(value_spec, batched) if merge_batches else None
    rebatch = batched and rows is not None and rows >= 2 * PASS_BATCH_SIZE
    unit = "batch" if batched else "example"
    if batched and not rebatch and isinstance(dataset.element_spec, tf.TensorSpec):
        # Batches that are the target itself: the user's own dataset, as it
        # is. Any new stage makes tf.data rewrite the whole pipeline's graph
        # at its first iterator: 16 ms for `from_tensor_slices` of a 200 MB
        # array, 0.4x the bare iteration of 50k rows of 1000 columns.
        def make_iterator():
            for values in itertools.islice(dataset.as_numpy_iterator(), steps):
                yield values, None, 1

        return make_iterator, total, unit
    mark = rebatch and bool(verbose)  # counting merged batches costs ~25 us each
    make_iterator = _picked_pass(ds, target, role, weight_spec is not None, batched,
                                 rows, rebatch, mark, verbose)
    return make_iterator, total, unit


def _picked_pass(ds, target, role, weighted, batched, rows, rebatch, mark,
                 verbose):
    """`make_iterator` over `ds` with the target (and weights) picked in the
    pipeline (for a target, without computing the features where
    `keras_biasinit.data.prune` can), an unbatched `ds` batched to `rows` (at
    least `PASS_BATCH_SIZE`), small batches merged to `rows` if `rebatch`,
    and, with `mark`, the input's batches counted (`_last_row_marker`)."""
    if not isinstance(ds.element_spec, tf.TensorSpec):  # (else the target itself)
        ds = _select(ds, target, role, weighted, verbose)
    if mark:
        ds = ds.map(tf.autograph.experimental.do_not_convert(_marked))
    if not batched:
        ds = ds.batch(max(PASS_BATCH_SIZE, rows or 0))
    elif rebatch:
        ds = ds.rebatch(rows)
    ds = ds.prefetch(tf.data.AUTOTUNE)

    def make_iterator():
        for element in ds.as_numpy_iterator():
            parts = element if isinstance(element, tuple) else (element,)
            values = parts[0]
            weights = parts[1] if weighted else None
            if mark:
                units = int(np.count_nonzero(parts[-1]))
            else:
                units = np.shape(values)[0] if not batched else 1
            yield values, weights, units

    return make_iterator


def _select(ds, target, role, weighted, verbose) -> tf.data.Dataset:
    """The dataset of `values` or `(values, weights)`; a target pass tells at
    `verbose` whether the features were pruned."""

    def select(element):
        values, weights = _pick(element, target, role)
        # A bare tensor, not a 1-tuple: tf.data packs tuple elements in Python
        # at about 50 us a batch, which doubles a fast pre-batched pass.
        return (values, weights) if weighted else values

    if role != "target":
        # Python control flow on the element's structure only: no AutoGraph
        # (its conversion cost ~2 ms a pass).
        return ds.map(tf.autograph.experimental.do_not_convert(
            lambda *element: select(_unwrap(element))))
    from keras_biasinit.data.prune import project  # TensorFlow-only module

    ds, note = project(ds, select)
    if verbose:
        print_msg(f"Label pass: {note}")
    return ds


def _marked(*parts):
    return parts + (_last_row_marker(parts[0]),)


def _unwrap(args: tuple) -> Any:
    # `Dataset.map` splats tuple elements into positional arguments.
    return args[0] if len(args) == 1 else args
