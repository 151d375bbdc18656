"""Statistics across the workers of a `tf.distribute` strategy.

Under `MultiWorkerMirroredStrategy` every worker reads its own shard, and
TensorFlow broadcasts the chief's initial value of each variable to all
workers: an initializer computed from one shard would silently give every
worker the chief shard's numbers. `reducer_for(strategy)` returns the
`keras_biasinit.stats.Reducer` that merges the statistics' states over all
workers instead, with the strategy's own collectives (`strategy.reduce`), so
every worker ends with the union's state and so the same initializer.

How a state travels: its `to_arrays()` are flattened to int64 (floats and
uint64 keys as their bit patterns, so nothing is rounded) and each worker
writes them into its own row of a matrix of zeros; a SUM all-reduce of that
matrix is then an exact all-gather. Every worker merges the gathered states
in worker order, so the merged numbers are bit-identical on every worker. Three
collectives per merge: a header (whether the worker failed, and the sizes),
the shapes and the values. A worker whose pass fails tells the others in the
header, so they raise too instead of waiting for it.

Single-process strategies (`MirroredStrategy`, `OneDeviceStrategy`, the
default strategy) read all the data in one process: nothing to merge.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Dict, List, Optional

import numpy as np

from keras_biasinit._optional import loaded_tensorflow
from keras_biasinit._optional import tensorflow as tf
from keras_biasinit.stats.state import Arrays
from keras_biasinit.stats.state import Reducer
from keras_biasinit.stats.state import merge_arrays

__all__ = ["WorkerReducer", "reducer_for"]

_DTYPES = (np.float64, np.int64, np.uint64)
_MAX_DIMS = 4


def _tasks(cluster: Dict[str, list]) -> int:
    return len(cluster.get("chief", [])) + len(cluster.get("worker", []))


def _worker_rank(strategy) -> tuple:
    """(this worker's rank, number of workers) from the strategy's cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec():
        return 0, 1
    cluster = resolver.cluster_spec().as_dict()
    chiefs = len(cluster.get("chief", []))
    if resolver.task_type == "chief":
        return 0, _tasks(cluster)
    if resolver.task_type != "worker":
        return 0, 1
    return chiefs + int(resolver.task_id), _tasks(cluster)


def _warn_if_multi_worker_config() -> None:
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    except (ValueError, AttributeError):
        return
    if isinstance(cluster, dict) and _tasks(cluster) > 1:
        warnings.warn(
            "TF_CONFIG names several workers, but no `strategy=` was given and "
            "no strategy scope is active: these numbers are this worker's shard's "
            "alone, and TensorFlow will broadcast the chief's to every worker. "
            "Pass `strategy=` (your MultiWorkerMirroredStrategy), or call "
            "`from_dataset` inside `strategy.scope()`, to get the numbers of the "
            "whole dataset on every worker.",
            stacklevel=3,
        )


def reducer_for(strategy: Optional[tf.distribute.Strategy] = None) -> Reducer:
    """The reducer for `strategy`, or for the strategy in scope if None.

    A `WorkerReducer` under a `MultiWorkerMirroredStrategy` with several
    workers; else the single-process `Reducer` (and, outside any strategy
    scope with a `TF_CONFIG` naming several workers, a warning).
    """
    if strategy is None:
        # No TensorFlow imported yet: no strategy scope can be active.
        if loaded_tensorflow() is None or not tf.distribute.has_strategy():
            _warn_if_multi_worker_config()
            return Reducer()
        strategy = tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.Strategy):
        raise TypeError(
            "`strategy` must be a tf.distribute.Strategy or None. "
            f"Received: strategy={strategy!r}"
        )
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        rank, workers = _worker_rank(strategy)
        if workers > 1:
            return WorkerReducer(strategy, rank, workers)
    return Reducer()


def _pack(arrays: Arrays) -> tuple:
    """(meta, payload) int64 vectors: per array its dtype, rank and shape; the
    values as int64 bit patterns (float64 and uint64 viewed, ints cast)."""
    meta, payload = [], []
    for name in sorted(arrays):
        value = np.asarray(arrays[name])
        if value.ndim > _MAX_DIMS:
            raise ValueError(f"Internal error: state array {name!r} has rank "
                             f"{value.ndim} > {_MAX_DIMS}.")
        code = _DTYPES.index(value.dtype.type) if value.dtype.type in _DTYPES else 1
        value = np.ascontiguousarray(value.astype(_DTYPES[code], copy=False))
        shape = list(value.shape) + [0] * (_MAX_DIMS - value.ndim)
        meta += [code, value.ndim] + shape
        payload.append(value.reshape(-1).view(np.int64))
    return (np.asarray(meta, np.int64),
            np.concatenate(payload) if payload else np.zeros(0, np.int64))


def _unpack(names: List[str], meta: np.ndarray, payload: np.ndarray) -> Arrays:
    arrays, start = {}, 0
    for i, name in enumerate(names):
        code, ndim, *shape = meta[i * (2 + _MAX_DIMS):(i + 1) * (2 + _MAX_DIMS)]
        shape = tuple(int(s) for s in shape[:ndim])
        size = int(np.prod(shape)) if shape else 1
        chunk = payload[start:start + size].copy()
        arrays[name] = chunk.view(_DTYPES[int(code)]).reshape(shape)
        start += size
    return arrays


class WorkerReducer(Reducer):
    """Merges states over the workers of a `MultiWorkerMirroredStrategy`.

    Every worker must call it (and `abort`) in the same order: the passes of a
    statistic do, since every worker plans them from the same merged states.

    Args:
        strategy: the `tf.distribute.MultiWorkerMirroredStrategy`.
        rank: this worker's index (the chief first, then the workers).
        workers: the number of workers.
    """

    distributed = True

    def __init__(self, strategy, rank: int, workers: int) -> None:
        self.strategy, self.rank, self.workers = strategy, rank, workers

    def __call__(self, state):
        arrays = state.to_arrays()
        names = sorted(arrays)
        meta, payload = _pack(arrays)
        header = self._gather(np.array([0, meta.size, payload.size]))
        if header[:, 0].any():
            self._raise_failure(header)
        metas = self._gather(meta, int(header[:, 1].max()))
        payloads = self._gather(payload, int(header[:, 2].max()))
        return merge_arrays(state, [_unpack(names, metas[rank], payloads[rank])
                                    for rank in range(self.workers)])

    def abort(self, error: BaseException) -> None:
        message = f"{type(error).__name__}: {error}".encode("utf-8")[:65536]
        header = self._gather(np.array([1, len(message), 0]))
        self._gather(np.frombuffer(message, np.uint8).astype(np.int64),
                     int(header[:, 1].max()))

    def _raise_failure(self, header: np.ndarray) -> None:
        codes = self._gather(np.zeros(0, np.int64), int(header[:, 1].max()))
        failed = np.flatnonzero(header[:, 0])
        rank = int(failed[0])
        text = bytes(codes[rank, :header[rank, 1]].astype(np.uint8)).decode(
            "utf-8", "replace")
        raise RuntimeError(
            f"Worker {rank} of {self.workers} failed while computing the "
            f"statistics for an initializer, so this worker stops too: {text}"
        )

    def _gather(self, row: np.ndarray, width: Optional[int] = None) -> np.ndarray:
        """Every worker's `row` (zero-padded to `width`), in rank order."""
        width = row.size if width is None else width
        if width == 0:  # the same on every worker: skip the collective
            return np.zeros((self.workers, 0), np.int64)
        matrix = np.zeros((self.workers, width), np.int64)
        matrix[self.rank, :row.size] = row
        total = self.strategy.reduce(tf.distribute.ReduceOp.SUM,
                                     tf.constant(matrix), axis=None)
        return np.asarray(total)
