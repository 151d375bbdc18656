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
  The part of the element that is needed is selected inside the pipeline, so
  features that are not needed are never copied to NumPy. Unbatched datasets are
  batched for the pass (`PASS_BATCH_SIZE` rows), never iterated per element.
- NumPy array (or an eager tensor): the whole array is one batch; nothing is
  copied through `tf.data`.
- A tuple or dict of arrays: one element, e.g. `(x, y)` or `(x, y, w)`.
- Any other iterable (a list, a generator): an iterable of batches, each element
  structured like a dataset element. A one-shot iterator can be read only once.

How batched and unbatched datasets are told apart (`batched=None`):

1. a target whose leading dimension is unknown (`None`) is batched;
2. a scalar target (shape `()`) is unbatched;
3. otherwise (a fixed leading dimension, which `batch(..., drop_remainder=True)`
   and an unbatched element of that width both have) the pipeline's
   transformations are followed back from the end: the latest `batch`-like
   transformation means batched, `unbatch` or a per-example source such as
   `from_tensor_slices`, `range` or a TFRecord reader means unbatched.
   Anything else (`from_tensors`, `from_generator`, `zip`, `interleave`,
   `flat_map`, ...) cannot be told and raises a `ValueError` asking for
   `batched=True` or `batched=False`. It is never guessed.
"""

from __future__ import annotations

import collections.abc
import itertools
from typing import Any, Iterator, Optional, Tuple, Union

import numpy as np
import tensorflow as tf
from keras.utils import Progbar

__all__ = ["Batches", "read_batches", "PASS_BATCH_SIZE"]

#: Rows per batch when an unbatched dataset is batched for a pass.
PASS_BATCH_SIZE = 4096

Key = Union[str, int, None]
Batch = Tuple[np.ndarray, Optional[np.ndarray]]

# Transformations that keep "batched or not" as it was.
_PASS_THROUGH = (
    "Prefetch", "Map", "ParallelMap", "Filter", "Take", "Skip", "Shard",
    "Shuffle", "Repeat", "Cache", "Options", "Assert", "Ignore", "Apply",
    "Snapshot", "Concatenate", "TakeWhile", "Enumerate", "MaxIntraOpParallelism",
    "PrivateThreadPool", "AutoShard", "Rebatch", "Scan", "ModelDataset",
    "ShuffleAndRepeat", "RandomAccess", "Slide", "WrappedDataset", "Unique",
)
# Sources that yield one example per element.
_PER_EXAMPLE_SOURCES = (
    "TensorSlice", "SparseTensorSlice", "Range", "TFRecord", "TextLine",
    "FixedLengthRecord", "Counter", "RandomDataset", "CsvDataset", "SqlDataset",
)
_SUPPORTED = (
    "a tf.data.Dataset (e.g. from tensorflow_datasets), a NumPy array, a tuple "
    "or dict of arrays, or a Python iterable of batches"
)


def _class_name(dataset: Any) -> str:
    return type(dataset).__name__.strip("_")


def _inspect_pipeline(dataset: tf.data.Dataset) -> Optional[bool]:
    """Follows the pipeline back; True/False if it can tell batched, else None."""
    node = dataset
    for _ in range(10_000):
        name = _class_name(node)
        if name == "DatasetV1Adapter":
            node = node._dataset  # pylint: disable=protected-access
            continue
        if "Unbatch" in name:
            return False
        if "Batch" in name and "Rebatch" not in name:
            return True
        if any(name.startswith(s) for s in _PER_EXAMPLE_SOURCES):
            return False
        if any(name.startswith(p) for p in _PASS_THROUGH):
            parent = getattr(node, "_input_dataset", None)
            if parent is not None:
                node = parent
                continue
        return None
    return None


def _leading_dim(spec: Any) -> Tuple[Optional[int], int]:
    shape = spec.shape
    if shape.rank is None:
        return None, -1
    if shape.rank == 0:
        return 0, 0
    return shape[0], shape.rank


def _is_batched_dataset(dataset: tf.data.Dataset, value_spec: Any) -> bool:
    dim, rank = _leading_dim(value_spec)
    if rank == 0:
        return False
    if dim is None:
        return True
    answer = _inspect_pipeline(dataset)
    if answer is None:
        raise ValueError(
            "Cannot tell whether this dataset yields batches or single examples: "
            f"its target has the fixed shape {tuple(value_spec.shape)}, which a "
            "`batch(..., drop_remainder=True)` pipeline and an unbatched dataset "
            f"of {dim}-wide examples both have, and its pipeline ends in "
            f"`{_class_name(dataset)}`. Pass `batched=True` if each element is a "
            "batch (rows on axis 0), or `batched=False` if each element is one "
            "example."
        )
    return answer


def _pick(element: Any, target: Key, role: str) -> Tuple[Any, Any]:
    """Returns (values, weights-or-None) from one element (a batch or example).

    `role` is "target" (default: 2nd item of a tuple) or "features" (default:
    1st item). Weights are the 3rd item of an `(x, y, sample_weight)` tuple.
    """
    if isinstance(element, collections.abc.Mapping):
        if target is None:
            raise ValueError(
                f"The dataset yields dicts with keys {sorted(element)}; pass "
                f"`{'target' if role == 'target' else 'features'}=` with the key "
                f"that holds the {role}, e.g. `{role}={sorted(element)[-1]!r}`."
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


def _as_weights(weights: Any, n_rows: int) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 2 and w.shape[1] == 1:
        w = w[:, 0]
    if w.shape != (n_rows,):
        raise ValueError(
            f"Sample weights must have shape ({n_rows},) or ({n_rows}, 1) to match "
            f"the batch, one weight per row. Received shape {w.shape}."
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(
            "Sample weights must be finite and non-negative; found "
            f"{'NaN/inf' if not np.all(np.isfinite(w)) else 'negative'} values. "
            "Clean them in the pipeline (e.g. with `Dataset.map`)."
        )
    return w


def _to_batch(values: Any, weights: Any) -> Batch:
    if isinstance(values, (tf.RaggedTensor, tf.SparseTensor)):
        raise TypeError(
            "Ragged and sparse targets are not supported; convert them to dense "
            "tensors in the pipeline (e.g. `.to_tensor()`)."
        )
    y = np.asarray(values)
    if y.ndim == 0:
        y = y.reshape(1)
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        raise TypeError(
            f"Targets must be numeric; received an array of dtype {y.dtype}. Map "
            "string labels to integer ids first (e.g. `keras.layers.StringLookup`)."
        )
    w = None if weights is None else _as_weights(weights, y.shape[0])
    return y, w


def _is_array(value: Any) -> bool:
    return isinstance(value, (np.ndarray, tf.Tensor)) and not isinstance(
        value, (tf.RaggedTensor, tf.SparseTensor)
    )


def _is_structure_of_arrays(value: Any) -> bool:
    if isinstance(value, tuple):
        return len(value) > 0 and all(_is_array(v) for v in value)
    if isinstance(value, collections.abc.Mapping):
        return len(value) > 0 and all(_is_array(v) for v in value.values())
    return False


class Batches:
    """A re-iterable source of NumPy `(values, weights)` batches.

    Each `iter()` is one pass over the data (with its own progress bar). Built by
    `read_batches`; the statistics in `keras_biasinit.stats` consume it.

    Attributes:
        reiterable: whether the data can be read more than once (False for
            one-shot iterators such as generators).
        num_batches: the number of batches one pass reads, when known.
    """

    def __init__(self, make_iterator, *, reiterable, num_batches, verbose):
        self._make_iterator = make_iterator
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
            batch = _to_batch(values, weights)
            rows += batch[0].shape[0]
            if batch[0].shape[0]:
                yield batch
            if progbar is not None:
                progbar.update(step)
        if progbar is not None and self.num_batches is None:
            progbar.update(step if rows else 0, finalize=True)
        if rows == 0:
            raise ValueError(
                "The data is empty: the pass read no rows. Check the dataset (and "
                "`steps=`, if given)."
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


def _dataset_batches(dataset, target, role, steps, batched, verbose) -> Batches:
    cardinality = int(dataset.cardinality())
    if cardinality == tf.data.INFINITE_CARDINALITY and steps is None:
        raise ValueError(
            "The dataset is infinite (e.g. it ends in `.repeat()`), so the pass "
            "would never end. Pass `steps=` to read a fixed number of elements."
        )
    spec = dataset.element_spec
    value_spec, weight_spec = _pick(spec, target, role)
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
        ds = ds.map(lambda *e: (_pick(_unwrap(e), target, role)[0],))
    else:
        ds = ds.map(lambda *e: _pick(_unwrap(e), target, role))
    if not batched:
        ds = ds.batch(PASS_BATCH_SIZE)
    ds = ds.prefetch(tf.data.AUTOTUNE)

    n = int(ds.cardinality())
    num_batches = n if n >= 0 else None

    def make_iterator():
        for element in ds.as_numpy_iterator():
            yield element if len(element) == 2 else (element[0], None)

    return Batches(make_iterator, reiterable=True, num_batches=num_batches,
                   verbose=verbose)


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
) -> Batches:
    """Turns any supported input into a re-iterable source of NumPy batches.

    Args:
        data: a `tf.data.Dataset` (batched or not; tfds datasets included), a
            NumPy array or eager tensor, a tuple/dict of arrays (one element), or
            a Python iterable of batches.
        target: which part of each element to read: a dict key or a tuple index.
            Defaults to the 2nd item of a tuple for `role="target"` (the 1st for
            `role="features"`), or the whole element.
        role: `"target"` or `"features"`; only changes the default above and
            the wording of errors.
        steps: read at most this many elements of `data` (batches, or examples
            of an unbatched dataset). Defaults to None: read everything, which
            is an error for an infinite dataset.
        batched: whether each element of a `tf.data.Dataset` is a batch. Defaults
            to None: decided as described in this module's docstring.
        verbose: `"auto"`, 0, 1 or 2, as in `Model.fit`; `"auto"` is 1. Shows a
            `keras.utils.Progbar` per pass.

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
        return _dataset_batches(data, target, role, steps, batched, verbose)

    if _is_array(data) or _is_structure_of_arrays(data):
        def make_iterator():
            values, weights = _pick(data, target, role)
            if steps is not None:  # for arrays, a step is a row
                values = values[:steps]
                weights = None if weights is None else weights[:steps]
            yield values, weights
        return Batches(make_iterator, reiterable=True, num_batches=1,
                       verbose=verbose)

    if isinstance(data, (str, bytes, collections.abc.Mapping)) or not isinstance(
        data, collections.abc.Iterable
    ):
        raise TypeError(
            f"Unsupported input of type {type(data).__name__}. Expected "
            f"{_SUPPORTED}."
        )

    one_shot = isinstance(data, collections.abc.Iterator)
    length = len(data) if isinstance(data, collections.abc.Sized) else None
    if length is not None and steps is not None:
        length = min(length, steps)

    def make_iterator():
        for element in itertools.islice(data, steps):
            if isinstance(element, tf.data.Dataset) or not (
                _is_array(element)
                or _is_structure_of_arrays(element)
                or isinstance(element, (list, np.generic, int, float))
            ):
                raise TypeError(
                    "Each item of an iterable must be a batch: an array, or a "
                    "tuple/dict of arrays. Received an item of type "
                    f"{type(element).__name__}. Expected {_SUPPORTED}."
                )
            if isinstance(element, list):
                element = np.asarray(element)
            yield _pick(element, target, role)

    return Batches(make_iterator, reiterable=not one_shot, num_batches=length,
                   verbose=verbose)
