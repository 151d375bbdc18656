"""An in-process engine for the merge tests: shards in threads, merged at a barrier.

Each shard runs the statistic in its own thread with a `ThreadReducer`; at
every merge the shards exchange their states' array forms and merge them in
shard order (`merge_arrays`), exactly as the workers of a strategy do over
their collectives. The real engines are tested in tests/test_distribute.py
(TensorFlow workers) and the Beam tests.
"""

import threading

from keras_biasinit.stats.state import Reducer
from keras_biasinit.stats.state import merge_arrays


class _Exchange:
    def __init__(self, shards):
        self.barrier = threading.Barrier(shards, timeout=120)
        self.slots = [None] * shards

    def all_gather(self, rank, item):
        self.slots[rank] = item
        self.barrier.wait()
        items = list(self.slots)
        self.barrier.wait()
        return items


class ThreadReducer(Reducer):
    distributed = True

    def __init__(self, rank, exchange):
        self.rank, self.exchange = rank, exchange
        self.merges = 0

    def __call__(self, state):
        self.merges += 1
        items = self.exchange.all_gather(self.rank, state.to_arrays())
        if any(isinstance(item, BaseException) for item in items):
            raise RuntimeError("another shard failed")
        return merge_arrays(state, items)

    def abort(self, error):
        self.exchange.all_gather(self.rank, error)


def run_sharded(compute, shards):
    """`compute(batches, reducer)` on each shard in its own thread; returns
    the results (or exceptions) and the reducers, in shard order."""
    exchange = _Exchange(len(shards))
    reducers = [ThreadReducer(rank, exchange) for rank in range(len(shards))]
    results = [None] * len(shards)

    def work(rank):
        try:
            results[rank] = compute(shards[rank], reducers[rank])
        except Exception as error:  # noqa: BLE001 - reported to the test
            results[rank] = error

    threads = [threading.Thread(target=work, args=(r,)) for r in range(len(shards))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return results, reducers
