"""Every statistic merges: shards give the union's numbers (exactly for the
order statistics, to float precision for the sums), through the array form
that the engines carry."""

import numpy as np
import pytest

from keras_biasinit.stats import ClassCounts
from keras_biasinit.stats import Moments
from keras_biasinit.stats import SecondMoment
from keras_biasinit.stats import huber_location
from keras_biasinit.stats import run_pass
from keras_biasinit.stats import weighted_median
from keras_biasinit.stats import weighted_quantile
from tests.stats._batches import TINY, split
from tests.stats._shards import run_sharded


def _shards(y, w=None, cuts=(0.3, 0.55)):
    """Three unequal shards (lists of batches) of the rows."""
    edges = [0] + [int(c * len(y)) for c in cuts] + [len(y)]
    return [split(y[a:b], None if w is None else w[a:b], size=701)
            for a, b in zip(edges[:-1], edges[1:])]


@pytest.mark.parametrize("make, values", [
    (lambda: ClassCounts(), lambda rng: rng.integers(0, 5, 3000)),
    (lambda: ClassCounts(), lambda rng: (rng.random((3000, 4)) < 0.3) * 1.0),
    (Moments, lambda rng: rng.normal(50, 9, (3000, 3))),
    (SecondMoment, lambda rng: rng.normal(2, 3, (3000, 6))),
])
@pytest.mark.parametrize("weighted", [False, True])
def test_single_pass_states_merge_to_the_whole(rng, make, values, weighted):
    y = values(rng)
    w = rng.random(len(y)) * 2 if weighted else None
    whole = run_pass(split(y, w), make()).result()
    results, _ = run_sharded(lambda b, r: run_pass(b, make(), r).result(),
                             _shards(y, w))
    for result in results:  # every shard has the union's numbers
        for field in ("rows", "weight"):
            assert getattr(result, field) == pytest.approx(getattr(whole, field))
        for name in ("counts", "mean", "variance", "mean_square"):
            if hasattr(whole, name):
                np.testing.assert_allclose(getattr(result, name),
                                           getattr(whole, name), rtol=1e-12)
    assert all(np.array_equal(_numbers(r), _numbers(results[0])) for r in results)


def _value(result):
    return next(getattr(result, f) for f in ("median", "quantile", "location")
                if hasattr(result, f))


def _numbers(result):
    return np.concatenate([np.ravel(np.asarray(getattr(result, f), np.float64))
                           for f in ("counts", "mean", "mean_square", "median",
                                     "quantile",
                                     "location", "mean_absolute_deviation",
                                     "mean_loss")
                           if hasattr(result, f)])


ORDER_STATISTICS = {
    "median": lambda b, r, budget: weighted_median(b, memory_budget=budget,
                                                   reducer=r),
    "quantile 0.9": lambda b, r, budget: weighted_quantile(
        b, q=0.9, memory_budget=budget, reducer=r),
    "Huber 0.5": lambda b, r, budget: huber_location(
        b, delta=0.5, memory_budget=budget, reducer=r),
}


@pytest.mark.parametrize("name", sorted(ORDER_STATISTICS))
@pytest.mark.parametrize("budget", [2**28, TINY], ids=["in memory", "multi-pass"])
@pytest.mark.parametrize("weighted", [False, True])
def test_order_statistics_on_shards_equal_the_whole_exactly(rng, name, budget,
                                                            weighted):
    y = np.column_stack([rng.standard_t(3, 12_001) * 4 + 100,
                         rng.integers(0, 7, 12_001) * 1.0])  # heavy ties
    w = rng.integers(1, 4, len(y)) * 0.5 if weighted else None
    compute = ORDER_STATISTICS[name]
    whole = compute(split(y, w), None, budget)
    results, reducers = run_sharded(lambda b, r: compute(b, r, budget),
                                    _shards(y, w))
    for result in results:
        assert not isinstance(result, Exception), result
        assert result.passes == whole.passes
        assert _value(result).tolist() == _value(whole).tolist()  # exact
        np.testing.assert_allclose(_numbers(result), _numbers(whole), rtol=1e-12)
    assert all(np.array_equal(_numbers(r), _numbers(results[0])) for r in results)
    if budget == TINY:  # each pass merged: the shards planned the same passes
        assert whole.passes >= 2
        assert all(r.merges == whole.passes + 1 for r in reducers)


def test_an_empty_shard_is_fine_and_an_empty_union_is_an_error(rng):
    y = rng.normal(size=5000)
    shards = [split(y), []]
    results, _ = run_sharded(
        lambda b, r: weighted_median(b, memory_budget=TINY, reducer=r), shards)
    assert results[0].median.tolist() == results[1].median.tolist() == [
        np.median(y)]
    results, _ = run_sharded(lambda b, r: run_pass(b, Moments(), r).result(),
                             [[], []])
    assert all(isinstance(r, ValueError) and "empty" in str(r) for r in results)


def test_a_failing_shard_stops_every_shard_instead_of_hanging(rng):
    y = rng.normal(size=5000)
    bad = y.copy()
    bad[17] = np.nan
    results, _ = run_sharded(lambda b, r: run_pass(b, Moments(), r).result(),
                             [split(y), split(bad)])
    assert isinstance(results[1], ValueError) and "NaN" in str(results[1])
    assert isinstance(results[0], RuntimeError)


def test_the_union_in_memory_when_shards_fit_but_not_when_it_does_not(rng):
    # Each shard's rows fit the budget, the union's do not: multi-pass, exact.
    y = rng.normal(size=6000)
    budget = 160 * 2**10  # ~ 3000 rows' in-memory solve
    results, _ = run_sharded(
        lambda b, r: weighted_median(b, memory_budget=budget, reducer=r),
        [split(y[:2000]), split(y[2000:4000]), split(y[4000:])])
    assert all(r.passes >= 2 for r in results)
    assert all(r.median.tolist() == [np.median(y)] for r in results)


def test_a_one_shot_shard_over_budget_fails_on_every_shard_alike(rng):
    # One shard is a generator, the other a list; each fits the budget, the
    # union does not and needs several passes, which the generator cannot
    # give. Every shard raises the same error (none waits for a merge the
    # others will not make).
    y = rng.normal(size=6000)
    shards = [split(y[:3000]), (b for b in split(y[3000:]))]
    results, _ = run_sharded(
        lambda b, r: weighted_median(b, memory_budget=160 * 2**10, reducer=r),
        shards)
    assert all(isinstance(r, ValueError) and "one-shot iterator" in str(r)
               for r in results), results


@pytest.mark.parametrize("budget", [2**28, TINY], ids=["in memory", "multi-pass"])
@pytest.mark.parametrize("weighted", [False, True])
def test_order_statistics_do_not_depend_on_batch_size_or_order(rng, budget,
                                                               weighted):
    y = rng.standard_t(3, 20_001) * 4 + 100
    w = rng.random(y.size) * 2 if weighted else None
    found = set()
    for size in (700, 997, y.size):
        for shuffle in (False, True):
            order = rng.permutation(y.size) if shuffle else np.arange(y.size)
            batches = split(y[order], None if w is None else w[order], size)
            found.add((
                float(huber_location(batches, delta=0.5, memory_budget=budget)
                      .location[0]),
                float(weighted_quantile(batches, q=0.3, memory_budget=budget)
                      .quantile[0]),
            ))
    assert len(found) == 1, found  # bit for bit
