"""One worker of the two-worker benchmark (`cases.multi_worker`), or the
single process reading all the rows.

Run as `python benchmarks/_workers.py OUT.json [--quick]` with `TF_CONFIG`
naming this worker (a `MultiWorkerMirroredStrategy` on loopback), or with
`--all` and no `TF_CONFIG` for the single process. Each worker reads its own
half of every case's data (`shard`), computes the initializer with the
strategy and writes, per case: the wall time from a common start (a
collective barrier, so process start-up and the strategy's own set-up are not
counted), the numbers it got, and every `WorkerReducer.__call__` it made
(seconds, the state's class, its payload in bytes): the cost of the
reduction itself, timed after a barrier so that waiting for the slower worker
is not counted.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras_biasinit as kbi  # noqa: E402
from keras_biasinit import distribute  # noqa: E402

#: name: (rows full, rows quick)
ROWS = {"mean": (4_000_000, 200_000), "mean_wide": (50_000, 4_000),
        "prior_100k": (4_000_000, 200_000), "median": (2_000_000, 100_000)}
SMALL_BUDGET = 4 * 2**20  # forces the median's multi-pass search


def shard(name: str, part: int, parts: int, quick: bool) -> np.ndarray:
    """Rows `part` of `parts` of case `name`'s data (the same rows however
    it is split: every row is drawn from its own seed block)."""
    n = ROWS[name][1 if quick else 0]
    blocks = np.array_split(np.arange(8), parts)[part]  # 8 blocks of rows
    out = []
    for b in blocks:
        rng = np.random.default_rng(1000 * len(name) + b)
        size = n // 8
        if name == "mean":
            out.append((rng.normal(size=(size, 1)) * 3 + 5).astype(np.float32))
        elif name == "mean_wide":
            out.append((rng.normal(size=(size, 1000)) + np.arange(1000)
                        ).astype(np.float32))
        elif name == "prior_100k":
            out.append(rng.integers(0, 100_000, size=size).astype(np.int32))
        else:
            out.append(rng.standard_t(3, size=size).astype(np.float32))
    return np.concatenate(out)


def compute(name: str, y: np.ndarray, strategy):
    """The case's initializer from rows `y` (a tf.data pipeline over them)."""
    batch = 256 if name == "mean_wide" else 4096
    ds = tf.data.Dataset.from_tensor_slices(y).batch(batch)
    if name in ("mean", "mean_wide"):
        return kbi.MeanBias.from_dataset(ds, verbose=0, strategy=strategy)
    if name == "prior_100k":
        return kbi.ClassPriorBias.from_dataset(
            ds, verbose=0, num_classes=100_000, smoothing=1.0, strategy=strategy)
    budget = SMALL_BUDGET if name == "median_passes" else 256 * 2**20
    return kbi.MedianBias.from_dataset(ds, verbose=0, memory_budget=budget,
                                       strategy=strategy)


CASES = ["mean", "mean_wide", "prior_100k", "median", "median_passes"]


def _data_name(case: str) -> str:
    return "median" if case == "median_passes" else case


def _record_reductions() -> list:
    """Wraps `WorkerReducer.__call__` to time each call; returns the list
    the calls are appended to."""
    original = distribute.WorkerReducer.__call__
    calls = []

    def timed_call(self, state):
        payload = sum(np.asarray(a).nbytes for a in state.to_arrays().values())
        self._gather(np.zeros(1, np.int64))  # wait for the other (not timed)
        start = time.perf_counter()
        merged = original(self, state)
        calls.append({"seconds": time.perf_counter() - start,
                      "state": type(state).__name__, "bytes": int(payload)})
        return merged

    distribute.WorkerReducer.__call__ = timed_call
    return calls


def _numbers(init) -> list:
    config = init.get_config()
    values = [config[k] for k in ("mean", "priors", "median") if k in config]
    return np.ravel(values[0]).tolist()


def main(out: str, quick: bool, alone: bool) -> None:
    results = {}
    if alone:
        for case in CASES:
            y = shard(_data_name(case), 0, 1, quick)
            start = time.perf_counter()
            init = compute(case, y, None)
            results[case] = {"seconds": time.perf_counter() - start,
                             "numbers": _numbers(init)}
    else:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        rank = strategy.cluster_resolver.task_id
        barrier = distribute.WorkerReducer(strategy, rank, 2)._gather
        calls = _record_reductions()
        for case in CASES:
            y = shard(_data_name(case), rank, 2, quick)
            barrier(np.zeros(1, np.int64))  # both workers start together
            calls.clear()
            start = time.perf_counter()
            init = compute(case, y, strategy)
            results[case] = {"seconds": time.perf_counter() - start,
                             "numbers": _numbers(init), "reductions": list(calls)}
    with open(out, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main(sys.argv[1], "--quick" in sys.argv, "--all" in sys.argv)
