"""Property: the numbers do not depend on batch size, order, or batching."""

import numpy as np
from tests._tf import tf
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

import keras_biasinit as kbi

#: Below the in-memory solve's fixed 64 KiB: forces the multi-pass path.
TINY_BUDGET = 2**16

SETTINGS = settings(
    max_examples=20, deadline=None, database=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def splits(draw, kind):
    """Data, optional weights, a batch size and a row order."""
    n = draw(st.integers(3, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "classes":
        y = rng.integers(0, 3, size=n)
        y[:3] = [0, 1, 2]  # every class occurs
    else:
        shape = draw(st.sampled_from([(n,), (n, 2)]))
        # Rounded to 0 decimals: many ties, the hard case for medians.
        y = np.round(rng.normal(size=shape) * 10, draw(st.sampled_from([0, 3])))
    w = rng.choice([0.5, 1.0, 2.0, 3.0], size=n) if draw(st.booleans()) else None
    batch = draw(st.integers(1, n))
    order = rng.permutation(n)
    return y, w, batch, order


def variants(y, w, batch, order):
    """The same rows as: one array, a batched dataset, an unbatched dataset, and
    a shuffled list of batches."""
    x = np.zeros(len(y), "float32")
    element = (x, y) if w is None else (x, y, w)
    shuffled = tuple(part[order] for part in element)
    chunks = [tuple(part[i:i + batch] for part in shuffled)
              for i in range(0, len(y), batch)]
    return [
        element,
        tf.data.Dataset.from_tensor_slices(element).batch(batch),
        tf.data.Dataset.from_tensor_slices(shuffled),
        chunks,
    ]


def check_all_equal(make, y, w, batch, order, rtol, multi_pass=None):
    results = [make(data) for data in variants(y, w, batch, order)]
    if multi_pass is not None:  # the same data through the bounded-memory passes
        results += [multi_pass(data) for data in variants(y, w, batch, order)[1:]]
    first = results[0]
    for other in results[1:]:
        np.testing.assert_allclose(other.bias, first.bias, rtol=rtol, atol=1e-12)
        np.testing.assert_allclose(other.expected_loss, first.expected_loss,
                                   rtol=rtol, atol=1e-12)


@SETTINGS
@given(splits("classes"))
def test_class_priors_independent_of_batching(split):
    check_all_equal(lambda d: kbi.ClassPriorBias.from_dataset(d, verbose=0),
                    *split, rtol=1e-12)


@SETTINGS
@given(splits("values"))
def test_mean_independent_of_batching(split):
    check_all_equal(lambda d: kbi.MeanBias.from_dataset(d, verbose=0),
                    *split, rtol=1e-9)


@SETTINGS
@given(splits("values"))
def test_median_independent_of_batching(split):
    check_all_equal(
        lambda d: kbi.MedianBias.from_dataset(d, verbose=0), *split, rtol=1e-12,
        multi_pass=lambda d: kbi.MedianBias.from_dataset(
            d, verbose=0, memory_budget=TINY_BUDGET),
    )


@SETTINGS
@given(splits("values"), st.sampled_from([0.1, 1.0, 5.0]))
def test_huber_independent_of_batching(split, delta):
    check_all_equal(
        lambda d: kbi.HuberBias.from_dataset(d, delta=delta, verbose=0),
        *split, rtol=1e-9,
        multi_pass=lambda d: kbi.HuberBias.from_dataset(
            d, delta=delta, verbose=0, memory_budget=TINY_BUDGET),
    )
