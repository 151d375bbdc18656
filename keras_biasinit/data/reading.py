"""The reading loop: any supported input -> a re-iterable source of batches."""

from __future__ import annotations

import collections.abc
import itertools
from typing import Any, Iterator, Optional, Sequence, Union

import keras
import numpy as np

from keras_biasinit._optional import is_tf_dataset
from keras_biasinit.data.columnar import columnar_kind
from keras_biasinit.data.columnar import columnar_reader
from keras_biasinit.data.datasets import PASS_BATCH_BYTES
from keras_biasinit.data.datasets import PASS_BATCH_SIZE
from keras_biasinit.data.datasets import pass_dataset
from keras_biasinit.data.elements import Batch
from keras_biasinit.data.elements import Key
from keras_biasinit.data.elements import WeightedKey
from keras_biasinit.data.elements import _first_rows
from keras_biasinit.data.elements import _is_array
from keras_biasinit.data.elements import _is_element
from keras_biasinit.data.elements import _is_nested_numbers
from keras_biasinit.data.elements import _pick
from keras_biasinit.data.elements import _reject_composite
from keras_biasinit.data.elements import _to_batch
from keras_biasinit.data.torch_inputs import loader_elements
from keras_biasinit.data.progress import PassProgress
from keras_biasinit.data.progress import resolve_verbose

__all__ = ["Batches", "read_batches", "PASS_BATCH_SIZE", "PASS_BATCH_BYTES"]

_SUPPORTED = (
    "a tf.data.Dataset (e.g. from tensorflow_datasets), a NumPy array, a tuple "
    "or dict of arrays, a pandas DataFrame/Series, a pyarrow Table/RecordBatch/"
    "ChunkedArray or pyarrow.dataset.Dataset, or a Python iterable of batches"
)


class Batches:
    """A re-iterable source of NumPy `(values, weights)` batches.

    Each `iter()` is one pass over the data, with its own progress bar
    (`keras_biasinit.data.progress`); passes after the first are labelled
    "Pass 2", "Pass 3", ... Built by `read_batches`; the statistics in
    `keras_biasinit.stats` consume it.

    Attributes:
        reiterable: whether the data can be read more than once (False for
            one-shot iterators such as generators).
        total: how many `unit`s one pass reads, when known: the user's batches,
            or the examples of an unbatched dataset or an array.
        unit: `"batch"` or `"example"`, what the progress bar counts.
        passes: how many passes have been started.
        allow_empty: whether a pass that reads no row is fine (one shard of a
            dataset split over workers may be empty; the union is checked).
            Defaults to False: an empty pass is a ValueError.
    """

    def __init__(self, make_iterator, *, reiterable, total, unit="batch",
                 verbose=0, fold_rows=True, ids=False):
        self._make_iterator = make_iterator  # yields (values, weights, units)
        self._fold_rows = fold_rows
        self._ids = ids
        self.reiterable = reiterable
        self.total = total
        self.unit = unit
        self._verbose = verbose
        self.passes = 0
        self.allow_empty = False

    def __iter__(self) -> Iterator[Batch]:
        if self.passes and not self.reiterable:
            raise ValueError(
                "This data is a one-shot iterator (e.g. a generator) and was "
                "already read once. Pass a re-iterable input instead: a "
                "tf.data.Dataset, an array, or a list of batches."
            )
        self.passes += 1
        progress = PassProgress(self.total, self.unit, self._verbose, self.passes)
        rows = 0
        for values, weights, units in self._make_iterator():
            batch, n = self._convert(values, weights)
            rows += n
            if n:
                yield batch
            progress.add(units)
        progress.finish()
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

    def _convert(self, values, weights):
        """One item of the pass as it is yielded, and its number of rows."""
        batch = _to_batch(values, weights, self._fold_rows, self._ids)
        return batch, batch[0].shape[0]


def _check_steps(steps: Optional[int]) -> None:
    if steps is not None and (
        isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1
    ):
        raise ValueError(
            f"`steps` must be a positive integer or None. Received: steps={steps!r}"
        )


def read_batches(
    data: Any,
    *,
    target: Key = None,
    role: str = "target",
    steps: Optional[int] = None,
    batched: Optional[bool] = None,
    verbose: Union[str, int] = "auto",
    merge_batches: bool = False,
    class_ids: bool = False,
    sample_weight: Optional[str] = None,
    classes: Optional[Sequence] = None,
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
        verbose: `"auto"`, 0, 1 or 2, as in `Model.fit`: a progress bar per
            pass, counting the input's own batches (or examples, for unbatched
            data and arrays) against their known total. `"auto"` is 1 for
            streamed data (a `tf.data.Dataset`, an iterable of batches) and 0
            for an array or one `(x, y)` / dict element held in memory. See
            `keras_biasinit.data.progress`.
        merge_batches: for a `tf.data.Dataset`, read batches of about
            `PASS_BATCH_BYTES` (an unbatched one is batched to that size, small
            batches are merged in the tf.data graph) instead of the
            pipeline's own batches: the same rows, far fewer Python steps.
            Statistics that do not depend on batching use it for speed; the
            progress bar still counts the input's own batches. Defaults to
            False.
        class_ids: read integer targets of any shape as class ids (softmax
            targets, as `SparseCategoricalCrossentropy` reads them): every id
            is a row of its own, weighted by its example's weight or by its
            own (weights of the ids' shape). Float targets are unaffected.
            Defaults to False.
        sample_weight: the key of the sample weights in dict elements, or
            the weight column of a pandas / Arrow input. Defaults to None:
            the 3rd item of `(x, y, sample_weight)` elements, else unweighted.
        classes: the class list of a pandas / Arrow label column (strings,
            categories): each label is read as its position in the list (see
            `keras_biasinit.data.columns`). Defaults to None.

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
    options = {"fold_rows": role == "target", "ids": class_ids}
    kind = columnar_kind(data)
    if kind is not None:  # pandas / Arrow: columns by name
        make_iterator, total = columnar_reader(data, target, role, sample_weight,
                                               classes, steps)
        return Batches(make_iterator, reiterable=True, total=total, unit="example",
                       verbose=resolve_verbose(verbose, kind == "dataset"),
                       **options)
    columns = {"target": target, "sample_weight": sample_weight, "classes": classes}
    if is_tf_dataset(data):
        verbose = resolve_verbose(verbose, streamed=True)
        make_iterator, total, unit = pass_dataset(
            data, _with_weight_key(role=role, **columns), role, steps, batched,
            verbose, merge_batches)
        return Batches(make_iterator, reiterable=True, total=total, unit=unit,
                       verbose=verbose, **options)

    _reject_composite(data)
    if _is_nested_numbers(data):
        data = np.asarray(data)  # e.g. [[1, 2], [3, 4]]: rows of data, not batches
    if _is_array(data) or _is_element(data):
        values, weights = _pick(data, _with_weight_key(role=role, **columns), role)
        if steps is not None:  # for arrays, a step is an example (a row)
            values = _first_rows(values, steps)
            weights = _first_rows(weights, steps)
        examples = np.shape(values)[0] if np.ndim(values) else 1

        def make_iterator():
            yield values, weights, examples

        return Batches(make_iterator, reiterable=True, total=examples,
                       unit="example", verbose=resolve_verbose(verbose, False),
                       **options)
    return _iterable_batches(loader_elements(data), columns, role, steps,
                             resolve_verbose(verbose, True), options)


def _with_weight_key(*, target: Any, role: str, sample_weight: Optional[str],
                     classes: Optional[Sequence]) -> Any:
    """`target` for a non-columnar input; with `sample_weight=`, a key that
    also picks the weights out of dict elements."""
    if classes is not None:
        raise ValueError(
            "`classes=` maps the labels of a pandas or Arrow column to class "
            "ids; other inputs need integer ids already (e.g. map strings with "
            "`keras.layers.StringLookup`). Leave `classes=None`."
        )
    if isinstance(target, list):
        raise ValueError(
            f"A list `{role}=` names several columns of a pandas or Arrow "
            f"input. Received: {role}={target!r} for another input: pass one "
            "dict key or tuple index (or a tuple path)."
        )
    return target if sample_weight is None else WeightedKey(target, sample_weight)


#: A `len()` this large says "endless" (a grain `MapDataset.repeat()` says
#: `sys.maxsize` or 2**58).
ENDLESS_LENGTH = 2**53


def iterable_length(data: Any, steps: Optional[int]) -> Optional[int]:
    """Batches one pass over an iterable reads, if known (`len`, a
    `PyDataset`'s `num_batches`, capped by `steps`); an infinite `PyDataset`,
    or a length of `ENDLESS_LENGTH` or more (grain's `repeat()`), without
    `steps` is a ValueError."""
    length = len(data) if isinstance(data, collections.abc.Sized) else None
    if length is not None and length >= ENDLESS_LENGTH and steps is None:
        raise ValueError(
            f"The data says its length is {length}, i.e. it is endless (e.g. a "
            "grain `MapDataset.repeat()`), so the pass would never end. Pass "
            "`steps=` to read a fixed number of batches."
        )
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
    return length


def _iterable_batches(data, columns, role, steps, verbose, options) -> Batches:
    """Batches from a Python iterable of batches (a list, generator, PyDataset;
    DataFrames or Arrow record batches, e.g. `pd.read_csv(..., chunksize=n)`,
    are read by column). `columns`: `target`, `sample_weight`, `classes`."""
    if isinstance(data, (str, bytes)) or not isinstance(
        data, collections.abc.Iterable
    ):
        raise TypeError(
            f"Unsupported input of type {type(data).__name__}. Expected "
            f"{_SUPPORTED}."
        )

    one_shot = isinstance(data, collections.abc.Iterator)
    length = iterable_length(data, steps)

    def make_iterator():
        key = None  # `target=` for the elements that are not columnar
        for element in itertools.islice(data, steps):
            if columnar_kind(element) is not None:
                read_columns, _ = columnar_reader(element, role=role, steps=None,
                                                  **columns)
                yield from ((v, w, 1) for v, w, _ in read_columns())
                continue
            key = key or (_with_weight_key(role=role, **columns),)
            if _is_element(element):
                yield _pick(element, key[0], role) + (1,)
            elif _is_array(element) or isinstance(element, (int, float, np.generic)):
                yield element, None, 1
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

    return Batches(make_iterator, reiterable=not one_shot, total=length,
                   unit="batch", verbose=verbose, **options)
