"""A statistic's state as the accumulator of a Beam `CombineFn`.

`StateCombineFn(new_state)`: `create_accumulator` is `new_state()`,
`add_input` its `update(values, weights)` with one NumPy batch,
`merge_accumulators` its `merge`, and `extract_output` the merged state. The
accumulator also counts the rows it read, so that an empty PCollection is the
error `from_dataset` gives for empty data, whatever the statistic. Between
workers the accumulators travel in the states' plain-array form
(`to_arrays` / `from_arrays`), written as a line of JSON (names, dtypes,
shapes) and the arrays' bytes: no pickles, and one copy each way (`np.savez`
zipped and checksummed: 35 ms for a buffer of 2M rows, against 8 ms).
"""

from __future__ import annotations

import json
from typing import Callable, Dict, Iterable

import apache_beam as beam
import numpy as np

from keras_biasinit.stats.state import State

_ROWS = "_beam_rows"


def empty_error() -> ValueError:
    """`from_dataset`'s error for data without rows, worded for a PCollection."""
    return ValueError(
        "The data is empty: the pass read no rows. Check the input PCollection "
        "(and `target=` / `features=`)."
    )


class Counted:
    """A state and the number of rows it has read."""

    __slots__ = ("state", "rows")

    def __init__(self, state: State, rows: int = 0) -> None:
        self.state, self.rows = state, rows


def encode_arrays(arrays: Dict[str, np.ndarray]) -> bytes:
    """A line of JSON (each array's name, dtype and shape), then their bytes."""
    arrays = {name: np.asarray(a, order="C") for name, a in arrays.items()}
    for name, array in arrays.items():
        if array.dtype.hasobject:
            raise ValueError(f"State array {name!r} holds Python objects; "
                             "states travel as plain arrays only.")
    header = [(name, a.dtype.str, a.shape) for name, a in arrays.items()]
    data = [a.reshape(-1).view(np.uint8) for a in arrays.values()]
    return b"".join([json.dumps(header).encode(), b"\n", *data])


def decode_arrays(encoded: bytes) -> Dict[str, np.ndarray]:
    """`encode_arrays`'s inverse: writable copies of the arrays."""
    offset = encoded.index(b"\n") + 1
    arrays = {}
    for name, dtype, shape in json.loads(encoded[:offset]):
        dtype = np.dtype(dtype)
        count = int(np.prod(shape))
        arrays[name] = np.frombuffer(encoded, dtype, count, offset).reshape(
            shape).copy()
        offset += count * dtype.itemsize
    return arrays


class StateCoder(beam.coders.Coder):
    """Encodes a `Counted` state as its arrays; decodes into `new_state()`."""

    def __init__(self, new_state: Callable[[], State]) -> None:
        self.new_state = new_state

    def encode(self, value: Counted) -> bytes:
        arrays = {k: np.asarray(v) for k, v in value.state.to_arrays().items()}
        arrays[_ROWS] = np.asarray([value.rows], np.int64)
        return encode_arrays(arrays)

    def decode(self, encoded: bytes) -> Counted:
        arrays = decode_arrays(encoded)
        rows = int(arrays.pop(_ROWS)[0])
        return Counted(self.new_state().from_arrays(arrays), rows)

    def is_deterministic(self) -> bool:
        return False


class StateCombineFn(beam.CombineFn):
    """Combines NumPy `(values, weights)` batches into one state of `new_state`.

    `extract_output` is the merged state; an empty input is a ValueError.
    """

    def __init__(self, new_state: Callable[[], State]) -> None:
        self.new_state = new_state

    def create_accumulator(self) -> Counted:
        return Counted(self.new_state())

    def add_input(self, accumulator: Counted, batch) -> Counted:
        values, weights = batch
        accumulator.state = accumulator.state.update(values, weights)
        accumulator.rows += values.shape[0]
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[Counted]) -> Counted:
        accumulators = iter(accumulators)
        merged = next(accumulators)
        for other in accumulators:
            merged.state = merged.state.merge(other.state)
            merged.rows += other.rows
        return merged

    def extract_output(self, accumulator: Counted) -> State:
        if accumulator.rows == 0:
            raise empty_error()
        return accumulator.state

    def get_accumulator_coder(self) -> StateCoder:
        return StateCoder(self.new_state)
