"""The reading loop: any supported input -> a re-iterable source of batches."""

from __future__ import annotations

import collections.abc
import itertools
from typing import Any, Iterator, Optional, Union

import keras
import numpy as np
import tensorflow as tf
from keras.utils import Progbar

from keras_biasinit.data.batched import is_batched_dataset
from keras_biasinit.data.elements import Batch
from keras_biasinit.data.elements import Key
from keras_biasinit.data.elements import _check_not_nested
from keras_biasinit.data.elements import _first_rows
from keras_biasinit.data.elements import _is_array
from keras_biasinit.data.elements import _is_element
from keras_biasinit.data.elements import _is_nested_numbers
from keras_biasinit.data.elements import _pick
from keras_biasinit.data.elements import _reject_composite
from keras_biasinit.data.elements import _to_batch

__all__ = ["Batches", "read_batches", "PASS_BATCH_SIZE", "PASS_BATCH_BYTES"]

#: Rows per batch when an unbatched dataset is batched for a pass.
PASS_BATCH_SIZE = 4096

#: With `merge_batches=True`, a tf.data pass reads batches of about this many
#: bytes of target: small batches are merged inside the tf.data graph
#: (`Dataset.rebatch`), so the pass's per-batch Python cost is paid once per
#: few MiB, not once per small batch.
PASS_BATCH_BYTES = 4 * 2**20
_SUPPORTED = (
    "a tf.data.Dataset (e.g. from tensorflow_datasets), a NumPy array, a tuple "
    "or dict of arrays, or a Python iterable of batches"
)


class Batches:
    """A re-iterable source of NumPy `(values, weights)` batches.

    Each `iter()` is one pass over the data (with its own progress bar). Built by
    `read_batches`; the statistics in `keras_biasinit.stats` consume it.

    Attributes:
        reiterable: whether the data can be read more than once (False for
            one-shot iterators such as generators).
        num_batches: the number of batches one pass reads, when known.
        allow_empty: whether a pass that reads no row is fine (one shard of a
            dataset split over workers may be empty; the union is checked).
            Defaults to False: an empty pass is a ValueError.
    """

    def __init__(self, make_iterator, *, reiterable, num_batches, verbose,
                 fold_rows=True):
        self._make_iterator = make_iterator
        self._fold_rows = fold_rows
        self.reiterable = reiterable
        self.num_batches = num_batches
        self._verbose = verbose
        self._passes = 0
        self.allow_empty = False

    def __iter__(self) -> Iterator[Batch]:
        if self._passes and not self.reiterable:
            raise ValueError(
                "This data is a one-shot iterator (e.g. a generator) and was "
                "already read once. Pass a re-iterable input instead: a "
                "tf.data.Dataset, an array, or a list of batches."
            )
        self._passes += 1
        progbar = (
            Progbar(self.num_batches, verbose=self._verbose, unit_name="batch")
            if self._verbose
            else None
        )
        rows = step = 0
        for step, (values, weights) in enumerate(self._make_iterator(), start=1):
            batch = _to_batch(values, weights, self._fold_rows)
            rows += batch[0].shape[0]
            if batch[0].shape[0]:
                yield batch
            if progbar is not None:
                progbar.update(step)
        if progbar is not None and self.num_batches is None:
            progbar.update(step if rows else 0, finalize=True)
        if rows == 0 and not self.allow_empty:
            hint = (
                "" if self.reiterable else " A generator or iterator that was "
                "already consumed (e.g. by an earlier call) reads as empty: pass a "
                "fresh one, or a re-iterable input."
            )
            raise ValueError(
                "The data is empty: the pass read no rows. Check the dataset (and "
                f"`steps=`, if given).{hint}"
            )


def _resolve_verbose(verbose: Union[str, int]) -> int:
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2):
        raise ValueError(
            f'`verbose` must be "auto", 0, 1 or 2. Received: verbose={verbose!r}'
        )
    return int(verbose)


def _check_steps(steps: Optional[int]) -> None:
    if steps is not None and (
        isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1
    ):
        raise ValueError(
            f"`steps` must be a positive integer or None. Received: steps={steps!r}"
        )


def _merged_rows(spec: Any, batched: bool) -> Optional[int]:
    """Rows of about `PASS_BATCH_BYTES` for elements of `spec`; None if unknown."""
    row_bytes = 0
    for s in tf.nest.flatten(spec):
        dims = s.shape[1:] if batched else s.shape
        if not dims.is_fully_defined():
            return None
        row_bytes += max(1, dims.num_elements()) * s.dtype.size
    return int(min(2**16, max(1, PASS_BATCH_BYTES // row_bytes)))


def _dataset_batches(dataset, target, role, steps, batched, verbose,
                     merge_batches=False) -> Batches:
    cardinality = int(dataset.cardinality())
    if cardinality == tf.data.INFINITE_CARDINALITY and steps is None:
        raise ValueError(
            "The dataset is infinite (e.g. it ends in `.repeat()`), so the pass "
            "would never end. Pass `steps=` to read a fixed number of elements."
        )
    spec = dataset.element_spec
    value_spec, weight_spec = _pick(spec, target, role)
    _check_not_nested(value_spec, role)
    for s in (value_spec, weight_spec):
        if s is not None and not isinstance(s, tf.TensorSpec):
            raise TypeError(
                f"The {role} must be a dense tensor; the dataset's element spec has "
                f"{s}. Convert it in the pipeline (e.g. `.map(...)` with "
                "`.to_tensor()`)."
            )
    if batched is None:
        batched = is_batched_dataset(dataset, value_spec)

    ds = dataset
    if steps is not None:
        ds = ds.take(steps)
    if weight_spec is None:
        # A bare tensor, not a 1-tuple: tf.data packs tuple elements in Python
        # at about 50 us a batch, which doubles a fast pre-batched pass.
        ds = ds.map(lambda *e: _pick(_unwrap(e), target, role)[0])
    else:
        ds = ds.map(lambda *e: _pick(_unwrap(e), target, role))
    rows = _merged_rows(ds.element_spec, batched) if merge_batches else None
    if not batched:
        ds = ds.batch(max(PASS_BATCH_SIZE, rows or 0))
    elif rows is not None and rows >= 2 * PASS_BATCH_SIZE:
        ds = ds.rebatch(rows)
    ds = ds.prefetch(tf.data.AUTOTUNE)

    n = int(ds.cardinality())
    num_batches = n if n >= 0 else None

    def make_iterator():
        if weight_spec is not None:
            yield from ds.as_numpy_iterator()
            return
        for values in ds.as_numpy_iterator():
            yield values, None

    return Batches(make_iterator, reiterable=True, num_batches=num_batches,
                   verbose=verbose, fold_rows=role == "target")


def _unwrap(args: tuple) -> Any:
    # `Dataset.map` splats tuple elements into positional arguments.
    return args[0] if len(args) == 1 else args


def read_batches(
    data: Any,
    *,
    target: Key = None,
    role: str = "target",
    steps: Optional[int] = None,
    batched: Optional[bool] = None,
    verbose: Union[str, int] = "auto",
    merge_batches: bool = False,
) -> Batches:
    """Turns any supported input into a re-iterable source of NumPy batches.

    Args:
        data: a `tf.data.Dataset` (batched or not; tfds datasets included), a
            NumPy array or eager tensor, a tuple/dict of arrays (one element), or
            a Python iterable of batches (a list, a generator).
        target: which part of each element to read: a dict key, a tuple index,
            or a tuple path of them into nested elements (`(1, "out")` reads
            `y["out"]` of `(x, y)` elements, keeping their sample weights).
            Defaults to the 2nd item of a tuple for `role="target"` (the 1st for
            `role="features"`), or the whole element.
        role: `"target"` or `"features"`; only changes the default above and
            the wording of errors.
        steps: read at most this many elements of `data`: batches, examples of
            an unbatched dataset, or rows of an array. Defaults to None: read
            everything, which is an error for an infinite dataset. (An endless
            pipeline whose cardinality TensorFlow cannot know, such as an
            endless generator or `repeat().filter(...)`, cannot be caught: pass
            `steps=` for those.)
        batched: whether each element of a `tf.data.Dataset` is a batch. Defaults
            to None: decided as described in this module's docstring.
        verbose: `"auto"`, 0, 1 or 2, as in `Model.fit`; `"auto"` is 1. Shows a
            `keras.utils.Progbar` per pass.
        merge_batches: for a `tf.data.Dataset`, read batches of about
            `PASS_BATCH_BYTES` (an unbatched one is batched to that size, small
            batches are merged in the tf.data graph) instead of the
            pipeline's own batches: the same rows, far fewer Python steps.
            Statistics that do not depend on batching use it for speed; the
            progress bar then counts merged batches. Defaults to False.

    Returns:
        A `Batches` object; iterate it for `(values, weights)` NumPy pairs.

    Example:

    >>> batches = read_batches(np.array([0, 1, 1, 2]), verbose=0)
    >>> [values.tolist() for values, _ in batches]
    [[0, 1, 1, 2]]
    """
    if role not in ("target", "features"):
        raise ValueError(f'`role` must be "target" or "features". Received: {role!r}')
    _check_steps(steps)
    verbose = _resolve_verbose(verbose)

    if isinstance(data, tf.data.Dataset):
        return _dataset_batches(data, target, role, steps, batched, verbose,
                                merge_batches)

    _reject_composite(data)
    if _is_nested_numbers(data):
        data = np.asarray(data)  # e.g. [[1, 2], [3, 4]]: rows of data, not batches
    if _is_array(data) or _is_element(data):
        def make_iterator():
            values, weights = _pick(data, target, role)
            if steps is not None:  # for arrays, a step is an example (a row)
                values = _first_rows(values, steps)
                weights = _first_rows(weights, steps)
            yield values, weights
        return Batches(make_iterator, reiterable=True, num_batches=1,
                       verbose=verbose, fold_rows=role == "target")

    if isinstance(data, (str, bytes)) or not isinstance(
        data, collections.abc.Iterable
    ):
        raise TypeError(
            f"Unsupported input of type {type(data).__name__}. Expected "
            f"{_SUPPORTED}."
        )

    one_shot = isinstance(data, collections.abc.Iterator)
    length = len(data) if isinstance(data, collections.abc.Sized) else None
    if isinstance(data, keras.utils.PyDataset):
        length = data.num_batches
        if length is None and steps is None:
            raise ValueError(
                "The PyDataset is infinite (its `num_batches` is None), so the "
                "pass would never end. Pass `steps=` to read a fixed number of "
                "batches."
            )
    if length is not None and steps is not None:
        length = min(length, steps)

    def make_iterator():
        for element in itertools.islice(data, steps):
            if _is_element(element):
                yield _pick(element, target, role)
            elif _is_array(element) or isinstance(element, (int, float, np.generic)):
                yield element, None
            elif isinstance(element, list):
                raise TypeError(
                    "An iterable of batches yielded a Python list, which could be "
                    "one example's values or a batch of scalar rows. Yield NumPy "
                    "arrays with the rows on axis 0 (e.g. `np.asarray(batch)`)."
                )
            else:
                raise TypeError(
                    "Each item of an iterable must be a batch: an array, or a "
                    "tuple/dict holding arrays. Received an item of type "
                    f"{type(element).__name__}. Expected {_SUPPORTED}."
                )

    return Batches(make_iterator, reiterable=not one_shot, num_batches=length,
                   verbose=verbose, fold_rows=role == "target")
