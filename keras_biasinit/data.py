"""Reading data: any supported input -> NumPy batches of values and weights.

This is the only module that knows about `tf.data`, `tensorflow_datasets`,
NumPy arrays and Python iterables. Everything downstream (`keras_biasinit.stats`)
sees plain NumPy arrays: `(values, weights)` pairs, one per batch, where
`values` has the batch on axis 0 and `weights` is `None` or a float64 vector of
per-row sample weights.

What each input means:

- `tf.data.Dataset` (including `tfds.load(...)` results): streamed. Elements
  `(x, y)` and `(x, y, sample_weight)` give the target `y` (and the weights), a
  dict element needs `target=` (its key), a bare tensor is the value itself.
  The sample weights of an `(x, y, sample_weight)` element weight its rows
  whichever of `x` or `y` is read (`target=0` or `1`); reading the weights
  themselves (`target=2`) is unweighted. Dict elements carry no weights.
  The part of the element that is needed is selected inside the pipeline, so
  features that are not needed are never copied to NumPy. Unbatched datasets are
  batched for the pass (`PASS_BATCH_SIZE` rows), never iterated per element.
- A NumPy array, an eager tensor, or anything else with `__array__` (e.g. a
  pandas Series): the whole array is one batch; nothing goes through
  `tf.data`. `steps=` counts its rows.
- A tuple or dict (of arrays or lists): one element, e.g. `(x, y)`,
  `(x, y, sample_weight)` or `{"label": y, ...}`. A tuple is never read as a
  sequence of batches; only the part that is read must be an array.
- A Python list of numbers, or of lists of numbers: rows of data, read as
  `np.asarray(data)` (so `[[1, 2], [3, 4]]` is two rows of two outputs).
- Any other iterable (a list of arrays, a generator): an iterable of batches,
  each element structured like a dataset element (arrays, not Python lists,
  with the rows on axis 0). A one-shot iterator can be read only once.

Rows and columns: values of shape `(n,)` are `n` rows of one column, `(n, d)`
are `n` rows of `d` columns (one output each). Targets of more dimensions, such
as per-time-step targets `(n, T, d)` or masks `(n, H, W, 1)`, are read as
`(n * T, d)` rows, each carrying its example's weight (or its own, for temporal
weights of shape `(n, T)`); features are left as they are: Keras losses reduce only
the last axis and weight every other element by the sample weight, and a layer's
bias is per last-axis unit.

How batched and unbatched datasets are told apart (`batched=None`):

1. a target whose leading dimension is unknown (`None`) is batched (if it was
   in fact one variable-length example, such as a sequence of per-step
   targets, its steps are its rows, which is what a per-row statistic wants);
2. a scalar target (shape `()`) is unbatched;
3. otherwise (a fixed leading dimension, which `batch(..., drop_remainder=True)`
   and an unbatched element of that width both have, or an unknown rank) the
   pipeline's transformations are followed back from the end: the latest
   `batch`-like transformation means batched, `unbatch` or a per-example source
   (`from_tensor_slices`, `range`, a TFRecord reader) means unbatched;
   `interleave` / `flat_map` are followed into the datasets their function
   builds (this is how a `tensorflow_datasets` pipeline, TFRecord files read by
   `interleave`, is recognised), `zip` / `concatenate` when all inputs agree.
   Anything else (`from_tensors`, `from_generator`, `sample_from_datasets`,
   `group_by_window`, ...) cannot be told and raises a `ValueError` asking for
   `batched=True` or `batched=False`. It is never guessed.
"""

from __future__ import annotations

import collections.abc
import itertools
from typing import Any, Iterator, Mapping, Optional, Tuple, Union

import keras
import numpy as np
import tensorflow as tf
from keras.utils import Progbar

__all__ = ["Batches", "read_batches", "PASS_BATCH_SIZE", "PASS_BATCH_BYTES"]

#: Rows per batch when an unbatched dataset is batched for a pass.
PASS_BATCH_SIZE = 4096

#: With `merge_batches=True`, a tf.data pass reads batches of about this many
#: bytes of target: small batches are merged inside the tf.data graph
#: (`Dataset.rebatch`), so the pass's per-batch Python cost is paid once per
#: few MiB, not once per small batch.
PASS_BATCH_BYTES = 4 * 2**20

Key = Union[str, int, None, Tuple[Union[str, int], ...]]
Batch = Tuple[np.ndarray, Optional[np.ndarray]]

# Dataset classes (`_MapDataset` -> "MapDataset") and the graph op types inside
# `interleave` / `flat_map` functions ("MapDataset", "BatchDatasetV2") share
# these prefixes, so one table classifies both.
# Transformations that keep "batched or not" as it was: follow their input.
_PASS_THROUGH = (
    "Prefetch", "Map", "ParallelMap", "Filter", "Take", "Skip", "Shard",
    "Shuffle", "Repeat", "Cache", "Options", "Assert", "Ignore", "Snapshot",
    "MaxIntraOpParallelism", "PrivateThreadPool", "AutoShard", "Rebatch", "Scan",
    "ModelDataset", "ShuffleAndRepeat", "Unique", "Restructured", "Identity",
)
# Sources that yield one example per element.
_PER_EXAMPLE_SOURCES = (
    "TensorSlice", "SparseTensorSlice", "Range", "TFRecord", "TextLine",
    "FixedLengthRecord", "Counter", "RandomDataset", "CsvDataset", "CSVDataset",
    "SqlDataset",
)
# Elements come from the datasets a function returns: look inside it.
_FROM_FUNCTION = ("Interleave", "ParallelInterleave", "FlatMap")
# Elements come from several inputs: batched if all inputs agree.
_SEVERAL_INPUTS = ("Zip", "Concatenate")
_SUPPORTED = (
    "a tf.data.Dataset (e.g. from tensorflow_datasets), a NumPy array, a tuple "
    "or dict of arrays, or a Python iterable of batches"
)


def _class_name(dataset: Any) -> str:
    return type(dataset).__name__.strip("_")


def _verdict(name: str) -> Union[bool, str, None]:
    """True/False (batched or not), "follow", "function", "several" or None."""
    if "Unbatch" in name:
        return False
    if "Batch" in name and "Rebatch" not in name:
        return True
    if name.startswith(_PER_EXAMPLE_SOURCES):
        return False
    if name.startswith(_FROM_FUNCTION):
        return "function"
    if name.startswith(_SEVERAL_INPUTS):
        return "several"
    if name.startswith(_PASS_THROUGH):
        return "follow"
    return None


def _agree(answers: list) -> Optional[bool]:
    return answers[0] if answers and all(a is answers[0] for a in answers) else None


def _inspect_ops(op: Any, functions: Any, depth: int) -> Optional[bool]:
    """Follows dataset ops back from `op`, inside an `interleave`/`flat_map` fn."""
    while depth < 100:
        verdict = _verdict(op.type)
        if verdict == "follow" and op.inputs:
            op = op.inputs[0].op
        elif verdict == "function":
            inner = functions.get(op.get_attr("f").name)
            if inner is None:
                return None
            graph = inner.graph
            return _inspect_ops(graph.outputs[0].op, graph._functions, depth + 1)
        elif verdict == "several":
            return _agree([
                _inspect_ops(t.op, functions, depth + 1)
                for t in op.inputs if t.dtype == tf.variant
            ])
        else:
            return verdict if isinstance(verdict, bool) else None
        depth += 1
    return None


def _inspect_pipeline(dataset: tf.data.Dataset, depth: int = 0) -> Optional[bool]:
    """Follows the pipeline back; True/False if it can tell batched, else None.

    Reads TensorFlow's private pipeline structure (dataset classes and their
    inputs, the graphs of `interleave` / `flat_map` functions); anything it does
    not recognise, or any change in those internals, gives None ("cannot
    tell"), never a guess.
    """
    # pylint: disable=protected-access
    node = dataset
    try:
        while depth < 100:
            name = _class_name(node)
            if name == "DatasetV1Adapter":
                node = node._dataset
                continue
            verdict = _verdict(name)
            inputs = node._inputs()
            if verdict == "follow" and len(inputs) == 1:
                node = inputs[0]
            elif verdict == "function":
                graph = node._map_func.function.graph
                return _inspect_ops(graph.outputs[0].op, graph._functions, depth + 1)
            elif verdict == "several":
                return _agree([_inspect_pipeline(d, depth + 1) for d in inputs])
            else:
                return verdict if isinstance(verdict, bool) else None
            depth += 1
    except Exception:  # pylint: disable=broad-except
        return None
    return None


def _is_batched_dataset(dataset: tf.data.Dataset, value_spec: Any) -> bool:
    shape = value_spec.shape
    if shape.rank == 0:
        return False
    if shape.rank is not None and shape[0] is None:
        return True
    answer = _inspect_pipeline(dataset)
    if answer is None:
        what = (
            "an unknown shape, which batches and single examples can both have"
            if shape.rank is None
            else f"the fixed shape {tuple(shape)}, which a `batch(..., "
            "drop_remainder=True)` pipeline and an unbatched dataset of examples "
            "of that shape both have"
        )
        raise ValueError(
            "Cannot tell whether this dataset yields batches or single examples: "
            f"its target has {what}, and its pipeline (ending in "
            f"`{_class_name(dataset)}`) does not show it. Pass `batched=True` if "
            "each element is a batch (rows on axis 0), or `batched=False` if each "
            "element is one example."
        )
    return answer


def _guess_key(element: Mapping, role: str) -> Any:
    """The key most likely meant, for an error message's example."""
    likely = ("label", "labels", "target", "y") if role == "target" else (
        "image", "features", "x", "inputs")
    return next((k for k in likely if k in element), sorted(element)[0])


def _pick(element: Any, target: Key, role: str) -> Tuple[Any, Any]:
    """Returns (values, weights-or-None) from one element (a batch or example).

    `role` is "target" (default: 2nd item of a tuple) or "features" (default:
    1st item). Weights are the 3rd item of an `(x, y, sample_weight)` tuple.
    A tuple `target` is a path into nested elements: `(1, "out")` is
    `element[1]["out"]`, weighted by the element's sample weights.
    """
    if isinstance(target, tuple):
        if not target:
            raise ValueError(f"`{role}=()` is an empty path; name a key or index.")
        values, weights = _pick(element, target[0], role)
        for key in target[1:]:
            values = _pick(values, key, role)[0]
        return values, weights
    if isinstance(element, collections.abc.Mapping):
        if target is None:
            raise ValueError(
                f"The dataset yields dicts with keys {sorted(element)}; pass "
                f"`{'target' if role == 'target' else 'features'}=` with the key "
                f"that holds the {role}, e.g. `{role}={_guess_key(element, role)!r}`."
            )
        if target not in element:
            raise ValueError(
                f"The key {target!r} is not in the dataset's elements. Available "
                f"keys: {sorted(element)}. Pass one of them as `{role}=`."
            )
        return element[target], None
    if isinstance(element, tuple):
        n = len(element)
        if target is None:
            if role == "target" and n < 2:
                raise ValueError(
                    f"The dataset yields tuples of {n} item(s) and holds no target; "
                    "expected `(x, y)` or `(x, y, sample_weight)` elements, a bare "
                    "target tensor, or `target=` naming the item."
                )
            index = 1 if role == "target" else 0
        else:
            if not isinstance(target, int) or isinstance(target, bool):
                raise ValueError(
                    f"The dataset yields tuples; `{role}=` must be an int index "
                    f"into them. Received: {role}={target!r}"
                )
            if not -n <= target < n:
                raise ValueError(
                    f"`{role}={target}` is out of range for tuples of {n} items."
                )
            index = target
        weights = element[2] if n == 3 and index % n in (0, 1) else None
        return element[index], weights
    if target is not None:
        raise ValueError(
            f"`{role}={target!r}` was given, but each element is a single "
            "tensor, not a tuple or dict. Leave it as None."
        )
    return element, None


def _as_weights(weights: Any, value_shape: Tuple[int, ...]) -> np.ndarray:
    """Checked float64 weights, one per row, or one per element of
    `value_shape[:-1]` for values of 3 or more dimensions (temporal weights)."""
    n_rows = value_shape[0]
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 0:
        w = w.reshape(1)
    if w.ndim == 2 and w.shape[1] == 1:
        w = w[:, 0]
    elements = tuple(value_shape[:-1]) if len(value_shape) > 2 else None
    if w.shape != (n_rows,) and w.shape != elements:
        allowed = f"({n_rows},) or ({n_rows}, 1)" + (
            f" or {elements}" if elements else ""
        )
        raise ValueError(
            f"Sample weights must have shape {allowed} to match the batch of "
            f"shape {tuple(value_shape)}. Received shape {w.shape}."
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(
            "Sample weights must be finite and non-negative; found "
            f"{'NaN/inf' if not np.all(np.isfinite(w)) else 'negative'} values. "
            "Clean them in the pipeline (e.g. with `Dataset.map`)."
        )
    return w


def _first_rows(value: Any, steps: int) -> Any:
    """The first `steps` examples of an array or list (before any folding)."""
    if isinstance(value, list) or (_is_array(value) and np.ndim(value)):
        return np.asarray(value)[:steps]
    return value


def _check_not_nested(values: Any, role: str) -> None:
    """A tuple or dict where a tensor is needed: name the path to one part."""
    if isinstance(values, (tuple, collections.abc.Mapping)):
        parts = sorted(values) if isinstance(values, collections.abc.Mapping) else (
            list(range(len(values))))
        index = 1 if role == "target" else 0
        raise ValueError(
            f"The {role} is itself a {type(values).__name__} (parts: {parts}), as "
            "for a model with several inputs or outputs. Pick one part with a "
            f"path, e.g. `{role}=({index}, {parts[0]!r})` for "
            f"element[{index}][{parts[0]!r}]."
        )


def _to_batch(values: Any, weights: Any, fold_rows: bool = True) -> Batch:
    _check_not_nested(values, "target" if fold_rows else "features")
    _reject_composite(values)
    y = np.asarray(values)
    if y.ndim == 0:
        y = y.reshape(1)
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        raise TypeError(
            f"Targets must be numeric; received an array of dtype {y.dtype}. Map "
            "string labels to integer ids first (e.g. `keras.layers.StringLookup`)."
        )
    w = None if weights is None else _as_weights(weights, y.shape)
    if fold_rows and y.ndim > 2:
        # Keras losses reduce the last axis and weight every remaining element
        # (a time step, a pixel) by its weight: those elements are the rows.
        per_example = int(np.prod(y.shape[1:-1]))
        if w is not None:
            w = np.repeat(w, per_example) if w.ndim == 1 else w.reshape(-1)
        y = y.reshape(-1, y.shape[-1])
    return y, w


def _is_array(value: Any) -> bool:
    """An array read whole: NumPy, an eager tensor, or anything with `__array__`."""
    if isinstance(value, (np.ndarray, np.generic, tf.Tensor)):
        return True
    return hasattr(value, "__array__") and not isinstance(
        value, (tuple, list, collections.abc.Mapping, tf.data.Dataset)
    )


def _is_element(value: Any) -> bool:
    """One element: `(x, y)`, `(x, y, sample_weight)` or a dict."""
    return isinstance(value, (tuple, collections.abc.Mapping))


def _is_nested_numbers(value: Any) -> bool:
    """A non-empty Python list of numbers or of lists of numbers."""
    if not isinstance(value, list) or not value:
        return False
    number = (int, float, np.generic)
    return all(
        isinstance(v, number)
        or (isinstance(v, list) and all(isinstance(u, number) for u in v))
        for v in value
    )


def _reject_composite(value: Any) -> None:
    if isinstance(value, (tf.RaggedTensor, tf.SparseTensor)):
        raise TypeError(
            "Ragged and sparse targets are not supported; convert them to dense "
            "tensors first (e.g. `.to_tensor()`)."
        )


class Batches:
    """A re-iterable source of NumPy `(values, weights)` batches.

    Each `iter()` is one pass over the data (with its own progress bar). Built by
    `read_batches`; the statistics in `keras_biasinit.stats` consume it.

    Attributes:
        reiterable: whether the data can be read more than once (False for
            one-shot iterators such as generators).
        num_batches: the number of batches one pass reads, when known.
    """

    def __init__(self, make_iterator, *, reiterable, num_batches, verbose,
                 fold_rows=True):
        self._make_iterator = make_iterator
        self._fold_rows = fold_rows
        self.reiterable = reiterable
        self.num_batches = num_batches
        self._verbose = verbose
        self._passes = 0

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
        if rows == 0:
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
        batched = _is_batched_dataset(dataset, value_spec)

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
