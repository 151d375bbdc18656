"""Reading the targets of several model outputs in one pass.

A model with several outputs is fed `(x, y)` or `(x, y, sample_weight)`
elements whose `y` is a dict keyed by output name, or a list/tuple in output
order (a single tensor for a one-output model), and whose sample weights are
one array for every output or the same kind of dict/list. `read_outputs`
reads each output's `(values, weights)` from every element, in one pass,
with the same inputs `keras_biasinit.data.read_batches` takes: a
`tf.data.Dataset` (batched or not; the targets are selected inside the
pipeline, and an unbatched one is batched), a tuple of arrays (one batch), a
`keras.utils.PyDataset` or any iterable of such tuples (a one-shot generator
is read once). Only a `tf.data.Dataset` goes through TensorFlow.

Each output's batch becomes the rows its loss counts, weighted as Keras
weighs them (`keras_biasinit.data.loss_elements`: every sample-weight shape,
`class_weight`, `ignore_class`, and the output's Keras mask, computed from the
batch's `x` by `masks` when given; `x` is read only then). Where a loss is
normalised per batch (a mask or `ignore_class`), a tuple of arrays is read in
batches of 32 rows, as `fit` and `evaluate` batch it by default.
"""

from __future__ import annotations

import collections.abc
import itertools
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from keras_biasinit._optional import is_tf_dataset
from keras_biasinit._optional import tensorflow as tf
from keras_biasinit.data.columnar import columnar_kind
from keras_biasinit.data.columnar_outputs import columnar_outputs_reader
from keras_biasinit.data.datasets import PASS_BATCH_SIZE
from keras_biasinit.data.datasets import check_batched
from keras_biasinit.data.datasets import check_cardinality
from keras_biasinit.data.datasets import check_specs
from keras_biasinit.data.elements import Batch
from keras_biasinit.data.elements import _first_rows
from keras_biasinit.data.loss_elements import LossElements
from keras_biasinit.data.loss_elements import loss_rows
from keras_biasinit.data.torch_inputs import loader_elements
from keras_biasinit.data.reading import Batches
from keras_biasinit.data.reading import _check_steps
from keras_biasinit.data.reading import iterable_length
from keras_biasinit.data.progress import print_msg
from keras_biasinit.data.progress import resolve_verbose

__all__ = ["OneOutput", "OutputBatches", "read_outputs"]

#: An output, as `(name, index)`: its key in a dict `y`, its place in a list.
Output = Tuple[str, int]
#: The batch size of `fit` and `evaluate` on arrays, when none is given.
ARRAY_BATCH_SIZE = 32
#: Arrays are read (their masks computed) in chunks of this many batches.
_ARRAY_CHUNK = 1024


def _part(structure: Any, output: Output, count: int, what: str) -> Any:
    """One output's part of a target (or sample weight) structure."""
    name, index = output
    if isinstance(structure, collections.abc.Mapping):
        if name not in structure:
            if what == "sample weights":
                return None
            raise ValueError(
                f"The targets are a dict with keys {sorted(structure)}, without "
                f"the output '{name}'. Key the targets by output name."
            )
        return structure[name]
    if isinstance(structure, (list, tuple)):
        if len(structure) != count:
            raise ValueError(
                f"The {what} are a {type(structure).__name__} of "
                f"{len(structure)} items but the model has {count} outputs: give "
                "one per output, in output order (or a dict keyed by output name)."
            )
        return structure[index]
    if count > 1 and what == "targets":
        raise ValueError(
            f"The data hold one target tensor but the model has {count} outputs: "
            "pass `y` as a dict keyed by output name or a list in output order."
        )
    return structure


def _features(element: Any) -> Any:
    """The `x` of an `(x, y[, w])` element."""
    return element[0] if isinstance(element, tuple) else None


def _select(element: Any, outputs: Sequence[Output],
            n: int) -> List[Tuple[Any, Any]]:
    """Per output, `(values, weights-or-None)` from one `(x, y[, w])` element
    of a model with `n` outputs."""
    if not isinstance(element, tuple) or len(element) not in (2, 3):
        size = f" of {len(element)} items" if isinstance(element, tuple) else ""
        raise ValueError(
            "Each element must be `(x, y)` or `(x, y, sample_weight)`, as "
            f"`model.fit` takes it; received a {type(element).__name__}{size}."
        )
    y = element[1]
    w = element[2] if len(element) == 3 else None
    return [
        (_part(y, o, n, "targets"), None if w is None else _part(w, o, n,
                                                                 "sample weights"))
        for o in outputs
    ]


class OutputBatches(Batches):
    """A source of per-output NumPy batches: each step a list of
    `(rows, weights)`, one per output, as its loss counts them. One `iter()`
    is one pass, with the progress bar, the one-shot and the empty-data
    checks of `keras_biasinit.data.Batches` (`allow_empty`, `reiterable`,
    `passes`). After the first pass, `rows[i]` is how many rows output `i`
    was given and `examples` how many examples were read."""

    def setup(self, elements: Sequence[LossElements], masks=None,
              batch_size: Optional[int] = None) -> "OutputBatches":
        self._elements, self._masks = list(elements), masks
        self._batch_size = batch_size
        self.rows, self.examples = np.zeros(len(self._elements)), 0
        return self

    def _convert(self, parts, x):
        masks = self._masks(x) if self._masks is not None else [None] * len(parts)
        converted = [loss_rows(values, weights, mask, elements, self._batch_size)
                     for
                     (values, weights), mask, elements in zip(parts, masks,
                                                               self._elements)]
        if self.passes == 1:
            self.rows += [len(rows) for rows, _, _ in converted]
            self.examples += converted[0][2]
        return [(rows, weights) for rows, weights, _ in converted], converted[0][2]

    def output(self, index: int,
               transform: Optional[Callable[[Batch], Batch]] = None) -> "OneOutput":
        """The batches of output `index` alone (for the further passes of an
        exact order statistic), each through `transform` if given."""
        return OneOutput(self, index, transform)


class OneOutput:
    """One output's `(values, weights)` batches from an `OutputBatches`: every
    `iter()` is a new pass over the data (all outputs are read; one is kept)."""

    def __init__(self, source: OutputBatches, index: int,
                 transform: Optional[Callable[[Batch], Batch]] = None) -> None:
        self.source, self.index, self.transform = source, index, transform

    @property
    def reiterable(self) -> bool:
        return self.source.reiterable

    def __iter__(self) -> Iterator[Batch]:
        for batches in self.source:
            batch = batches[self.index]
            if len(batch[0]):  # a batch may mask all of this output's rows
                yield batch if self.transform is None else self.transform(batch)


def _dataset(data: tf.data.Dataset, outputs, n, steps, batched, verbose, with_x):
    """Every output's targets selected inside the pipeline, as
    `keras_biasinit.data.datasets.pass_dataset` does for one target."""
    check_cardinality(data, steps)
    parts = _select(data.element_spec, outputs, n)
    for value_spec, weight_spec in parts:
        check_specs(value_spec, weight_spec, "target")
    weighted = [w is not None for _, w in parts]
    batched = check_batched(batched, data, parts[0][0])

    def select(element):
        picked = _select(element, outputs, n)
        values = tuple(v for v, _ in picked)
        weights = tuple(w for _, w in picked if w is not None)
        return (values, weights, element[0]) if with_x else (values, weights)

    ds = data.take(steps) if steps is not None else data
    total = int(ds.cardinality())
    from keras_biasinit.data.prune import project  # TensorFlow-only module

    ds, note = project(ds, select)  # the features are skipped where provable
    if verbose:
        print_msg(f"Label pass: {note}")
    if not batched:
        ds = ds.batch(PASS_BATCH_SIZE)
    ds = ds.prefetch(tf.data.AUTOTUNE)

    def make_iterator():
        for values, weights, *x in ds.as_numpy_iterator():
            given = iter(weights)
            parts = [(v, next(given) if has else None)
                     for v, has in zip(values, weighted)]
            yield parts, x[0] if x else None, 1 if batched else np.shape(
                values[0])[0]

    return OutputBatches(make_iterator, reiterable=True,
                         total=total if total >= 0 else None,
                         unit="batch" if batched else "example", verbose=verbose)


def _slice(structure: Any, rows: slice) -> Any:
    """`rows` of every array in `x` (an array, or a dict/list/tuple of them)."""
    if isinstance(structure, collections.abc.Mapping):
        return {key: _slice(value, rows) for key, value in structure.items()}
    if isinstance(structure, (list, tuple)):
        return type(structure)(_slice(value, rows) for value in structure)
    return None if structure is None else np.asarray(structure)[rows]


def _arrays(data: tuple, outputs, n, steps, per_batch: bool, verbose):
    """One batch of arrays; in chunks of `ARRAY_BATCH_SIZE` rows normalised
    each as a batch where the loss is normalised per batch (as `fit` and
    `evaluate` batch them)."""
    parts = _select(data, outputs, n)
    x = data[0]
    if steps is not None:
        parts = [(_first_rows(v, steps), _first_rows(w, steps)) for v, w in parts]
        x = _slice(x, slice(0, steps))
    size = np.shape(parts[0][0])[0] if np.ndim(parts[0][0]) else 1
    step = ARRAY_BATCH_SIZE * _ARRAY_CHUNK if per_batch else max(size, 1)
    starts = range(0, max(size, 1), step)

    def batches():
        for start in starts:
            rows = slice(start, start + step)
            yield ([(_slice(v, rows), None if w is None or np.ndim(w) == 0
                     else _slice(w, rows)) for v, w in parts]
                   if len(starts) > 1 else parts), (
                _slice(x, rows) if len(starts) > 1 else x), 1

    return OutputBatches(batches, reiterable=True, total=len(starts),
                         verbose=verbose)


def read_outputs(
    data: Any,
    outputs: Sequence[Output],
    *,
    steps: Optional[int] = None,
    batched: Optional[bool] = None,
    verbose: Union[str, int] = "auto",
    num_outputs: Optional[int] = None,
    elements: Optional[Sequence[LossElements]] = None,
    masks: Optional[Callable[[Any], List[Optional[np.ndarray]]]] = None,
    target: Any = None,
    sample_weight: Optional[str] = None,
    classes: Any = None,
) -> OutputBatches:
    """Reads every output's targets (and weights) from `data` in one pass.

    Args:
        data: `(x, y)` / `(x, y, sample_weight)` elements: a `tf.data.Dataset`,
            a tuple of arrays, a `keras.utils.PyDataset` or an iterable of
            tuples of arrays.
        outputs: `(name, index)` of each output to read.
        steps: at most this many batches (rows, for a tuple of arrays).
        batched: whether a `tf.data.Dataset`'s elements are batches. Defaults
            to None (detected, as in `keras_biasinit.data.batched`).
        verbose: `"auto"`, 0, 1 or 2. Defaults to "auto".
        num_outputs: how many outputs the model has (the length of a list
            `y`). Defaults to None: `len(outputs)`.
        elements: per output, how its loss counts its elements (ids, class
            weights, `ignore_class`). Defaults to None: `LossElements()` each.
        masks: a function of a batch's `x` giving each output's Keras mask
            (or None), e.g. `keras_biasinit.loss_view.OutputMasks`.
            Defaults to None: no masks, and `x` is not read.
        target, sample_weight, classes: the columns of a pandas / Arrow
            input (see `keras_biasinit.data.columnar_outputs`).
            Defaults to None.

    Example:

    >>> x, y = np.zeros((4, 2)), {"a": np.arange(4.0), "b": np.ones(4)}
    >>> [[v.tolist() for v, _ in step] for step in read_outputs(
    ...     (x, y), [("a", 0), ("b", 1)], verbose=0)]
    [[[0.0, 1.0, 2.0, 3.0], [1.0, 1.0, 1.0, 1.0]]]
    """
    _check_steps(steps)
    elements = list(elements or [LossElements()] * len(outputs))
    kind = columnar_kind(data)
    if kind is not None:  # pandas / Arrow: the columns named by `target=`
        if masks is not None:
            raise ValueError(
                "The model's output carries a Keras mask, computed from `x`, but a "
                "pandas / Arrow input gives only the label columns: pass `(x, y)` "
                "batches (e.g. a tf.data.Dataset) for a masked output."
            )
        make_iterator, total = columnar_outputs_reader(
            data, [name for name, _ in outputs], target, sample_weight, classes, steps)
        return OutputBatches(make_iterator, reiterable=True, total=total,
                             unit="example",
                             verbose=resolve_verbose(verbose, kind == "dataset")
                             ).setup(elements)
    if target is not None or sample_weight is not None or classes is not None:
        raise ValueError(
            "`target=`, `sample_weight=` and `classes=` name the columns of a "
            "pandas or Arrow input; other data are `(x, y[, sample_weight])` as "
            "`model.fit` takes them. Leave them None."
        )
    verbose = resolve_verbose(verbose, streamed=not isinstance(data, tuple))
    outputs = list(outputs)
    n = len(outputs) if num_outputs is None else int(num_outputs)
    per_batch = masks is not None or any(e.ignore_class is not None
                                         for e in elements)
    if is_tf_dataset(data):
        source = _dataset(data, outputs, n, steps, batched, verbose,
                          masks is not None)
    elif isinstance(data, tuple):
        source = _arrays(data, outputs, n, steps, per_batch, verbose)
        return source.setup(elements, masks, ARRAY_BATCH_SIZE if per_batch else None)
    elif isinstance(data, (str, bytes, np.ndarray, collections.abc.Mapping)) or \
            not isinstance(data, collections.abc.Iterable):
        raise TypeError(
            f"Unsupported data of type {type(data).__name__}: pass what "
            "`model.fit` takes, a tf.data.Dataset or keras.utils.PyDataset of "
            "(x, y[, sample_weight]) batches, a tuple (x, y[, sample_weight]) of "
            "arrays, or an iterable of such tuples."
        )
    else:
        data = loader_elements(data)  # a torch DataLoader's [x, y] lists
        length = iterable_length(data, steps)

        def many():
            for element in itertools.islice(data, steps):
                yield _select(element, outputs, n), _features(element), 1

        source = OutputBatches(many, reiterable=not isinstance(
            data, collections.abc.Iterator), total=length, verbose=verbose)
    return source.setup(elements, masks)
