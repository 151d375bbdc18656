"""A few rows of a model's inputs, for tracing a subclassed model's `call()`.

`InputSample(data)` is called only when a head must be found by tracing
(`keras_biasinit.heads.trace`); it takes the inputs `x` of the first batch
of `data`, cut to `ROWS` rows. A one-shot iterator loses nothing: its first
element is put back in front (`InputSample.data` is what to read next).
"""

from __future__ import annotations

import collections.abc
import itertools
from typing import Any, Optional

import keras
import numpy as np

from keras_biasinit._optional import is_tf_dataset

__all__ = ["InputSample"]

#: Rows a trace runs on.
ROWS = 2


def _rows(x: Any) -> Any:
    return keras.tree.map_structure(lambda a: np.asarray(a)[:ROWS], x)


def _inputs(element: Any) -> Any:
    if isinstance(element, (tuple, list)) and element:
        return element[0]
    raise ValueError(
        "Tracing the model needs its inputs: each element of the data must be "
        f"`(x, y)` or `(x, y, sample_weight)`. Received a {type(element).__name__}."
    )


def _from_dataset(data: Any, batched: Optional[bool]) -> Any:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    # pylint: disable-next=import-outside-toplevel
    from keras_biasinit.data.batched import is_batched_dataset

    spec = data.element_spec
    target = spec[1] if isinstance(spec, tuple) and len(spec) > 1 else spec
    leaf = tf.nest.flatten(target)[0]
    if batched is None:
        batched = is_batched_dataset(data, leaf)
    ds = data.take(1) if batched else data.batch(ROWS).take(1)
    for element in ds.as_numpy_iterator():
        return _inputs(element)
    raise ValueError("The data is empty: no element to trace the model with.")


class InputSample:
    """The inputs of a few rows of `data`, read on the first call."""

    def __init__(self, data: Any, batched: Optional[bool] = None) -> None:
        self.data, self._batched, self._x = data, batched, None

    def __call__(self) -> Any:
        if self._x is None:
            self._x = _rows(self._read())
        return self._x

    def _read(self) -> Any:
        data = self.data
        if is_tf_dataset(data):
            return _from_dataset(data, self._batched)
        if isinstance(data, tuple):
            return _inputs(data)
        if isinstance(data, keras.utils.PyDataset):
            return _inputs(data[0])
        if isinstance(data, collections.abc.Iterator):
            first = next(data, None)
            if first is None:
                raise ValueError("The data is empty: no element to trace with.")
            self.data = itertools.chain([first], data)
            return _inputs(first)
        if isinstance(data, collections.abc.Iterable):
            for element in data:
                return _inputs(element)
        raise ValueError(
            "Cannot read a batch of inputs to trace the model's `call()` from "
            f"data of type {type(data).__name__}: pass `layer=` (and "
            "`activation=`) to name the head."
        )
