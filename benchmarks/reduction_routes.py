"""Where MeanBias's per-batch reduction can run (issue 17), measured side by side.

`reduction-routes`: MeanBias on 1000 float32 columns over
`from_tensor_slices(y).batch(256)` (the `wide-mean` case's pipeline), each
route against a bare iteration of the same pipeline, alternated in rounds
(`paired_runs`). Every route computes the same exact statistic, per batch in
float64:

    mean_b = sum(y) / n,  m2_b = sum((y - mean_b)**2)

merged across batches with `keras_biasinit.stats.Moments` (Chan et al.), and
is checked against NumPy on the whole array. The routes:

- `numpy, main thread`: the package (`MeanBias.from_dataset`);
- `tf.data map, TF kernels`: the reduction as a parallel `map` of TensorFlow
  ops, its small partials batched 32 at a time and merged in NumPy;
- `tf.data map, numpy_function`: the same `map` running NumPy's kernels;
- `2 reducer threads`: the main thread reads, two threads reduce in NumPy;
- `numpy, batches in memory`: the reduction alone, over the batches already
  read (what any route adds to a bare pass, at best).

Only the first is the package's; the others are here so that the comparison
can be rerun.
"""

from __future__ import annotations

import collections
from concurrent import futures
from typing import Callable, Dict, List

import numpy as np

from _measure import paired_runs
from _table import _row

ROWS = (200_000, 4_000)  # full, quick
COLUMNS = 1000
BATCH = 256
PARTIALS = 32  # partials per element of the mapped dataset


def _partial(y: np.ndarray):
    """One batch's `(rows, mean, m2)` in float64 (NumPy)."""
    y64 = y.reshape(y.shape[0], -1).astype(np.float64)
    mean = np.add.reduce(y64, axis=0) / y64.shape[0]
    centred = np.subtract(y64, mean, out=y64)
    m2 = np.add.reduce(np.multiply(centred, centred, out=centred), axis=0)
    return np.float64(y64.shape[0]), mean, m2


def _tf_partial(y):
    """`_partial` in TensorFlow ops (for a `map` inside the pipeline)."""
    import tensorflow as tf

    y64 = tf.cast(y, tf.float64)
    rows = tf.cast(tf.shape(y64)[0], tf.float64)
    mean = tf.reduce_sum(y64, axis=0) / rows
    return rows, mean, tf.reduce_sum(tf.math.squared_difference(y64, mean), axis=0)


def _merge(parts):
    """The partials `(rows, mean, m2)` merged into one `Moments` state."""
    from keras_biasinit.stats import Moments

    state = Moments()
    for rows, mean, m2 in parts:
        state.merge(Moments().from_arrays(
            {"rows": [rows], "weight": [rows], "mean": mean, "m2": m2}))
    return state


def _unbatched(ds):
    """Partials of a dataset batched `PARTIALS` at a time, one by one."""
    for rows, mean, m2 in ds:
        rows, mean, m2 = rows.numpy(), mean.numpy(), m2.numpy()
        yield from zip(rows, mean, m2)


def _routes(ds) -> Dict[str, Callable[[], object]]:
    import tensorflow as tf

    import keras_biasinit as kbi

    def numpy_function(y):
        return tf.numpy_function(_partial, [y], [tf.float64] * 3, stateful=False)

    mapped_tf = ds.map(_tf_partial, num_parallel_calls=tf.data.AUTOTUNE)
    mapped_np = ds.map(numpy_function, num_parallel_calls=tf.data.AUTOTUNE)
    pool = futures.ThreadPoolExecutor(2)
    in_memory = [y.numpy() for y in ds]

    def threads():
        pending: collections.deque = collections.deque()
        done = []
        for y in ds:
            pending.append(pool.submit(_partial, y.numpy()))
            if len(pending) > 4:
                done.append(pending.popleft().result())
        return _merge(done + [p.result() for p in pending])

    return {
        "numpy, main thread (the package)":
            lambda: kbi.MeanBias.from_dataset(ds, verbose=0),
        "tf.data map, TF kernels":
            lambda: _merge(_unbatched(mapped_tf.batch(PARTIALS))),
        "tf.data map, numpy_function":
            lambda: _merge(_unbatched(mapped_np.batch(PARTIALS))),
        "2 reducer threads (NumPy)": threads,
        "numpy, batches in memory": lambda: _merge(map(_partial, in_memory)),
    }


def _mean_of(result) -> np.ndarray:
    return result.bias if hasattr(result, "bias") else result.mean


def reduction_routes(quick: bool) -> List[Dict]:
    """One row a route: median wall and CPU over 5 rounds, ratios to bare."""
    import tensorflow as tf

    n = ROWS[1 if quick else 0]
    y = (np.random.default_rng(17).normal(size=(n, COLUMNS))
         + np.arange(COLUMNS)).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices(y).batch(BATCH)
    expected = y.astype(np.float64).mean(axis=0)

    def bare():
        for _ in ds:
            pass

    rows = []
    for name, route in _routes(ds).items():
        runs = paired_runs(bare, route, repeats=5)
        error = np.max(np.abs(_mean_of(runs["result"]) - expected)
                       / np.abs(expected).max())
        wall, cpu = (np.array(runs[k]["ratio"]) for k in ("wall", "cpu"))
        check = (f"{'ok' if error < 1e-12 else 'MISMATCH'} (rel {error:.1e}); "
                 f"wall ratio min {wall.min():.2f}x; CPU ratio median "
                 f"{np.median(cpu):.2f}x, min {cpu.min():.2f}x")
        rows.append(_row(
            f"MeanBias d=1000 reduction: {name}", n, "tf.data slices.batch(256)",
            float(np.median(runs["wall"]["ours"])),
            float(np.median(runs["wall"]["bare"])), peak=runs["peak"],
            target="<= 1.15x bare", check=check, limit=1.15))
    return rows


CASES = {"reduction-routes": reduction_routes}
