"""keras_biasinit.beam on wide targets: the row sample and the bracket pass
(`stats._wide_first`, `stats._bracket`) merge across Beam workers and equal
`from_dataset`'s numbers and NumPy's medians bit for bit."""

import numpy as np
import pytest

import keras_biasinit as kbi

pytestmark = pytest.mark.keras  # the initializers come back as Keras JSON

beam = pytest.importorskip("apache_beam")

from keras_biasinit.beam import ComputeInitializer  # noqa: E402
from tests.test_beam import assert_same, run  # noqa: E402

BUDGET = 2**20  # 20 columns: no 11-bit radix digits, a row sample


def test_wide_median_equals_from_dataset_and_numpy(tmp_path):
    rng = np.random.default_rng(21)
    y = (rng.standard_t(3, size=(12_000, 20)) + np.arange(20) * 50.0)
    y = y.astype(np.float32)
    w = rng.integers(0, 3, size=len(y)).astype(np.float64)

    def make_input(p):
        return p | beam.Create([{"y": y[i : i + 1000], "w": w[i : i + 1000]}
                                for i in range(0, len(y), 1000)])

    got = run(tmp_path, make_input, {
        "median": ComputeInitializer(kbi.MedianBias, target="y", batched=True,
                                     memory_budget=BUDGET),
        "weighted": ComputeInitializer(kbi.MedianBias, target="y", batched=True,
                                       sample_weight="w", memory_budget=BUDGET),
    })
    assert_same(got["median"], kbi.MedianBias.from_dataset(
        y, verbose=0, memory_budget=BUDGET), exact=("median",))
    assert_same(got["weighted"], kbi.MedianBias.from_dataset(
        (np.zeros((len(y), 1)), y, w), verbose=0, memory_budget=BUDGET),
        exact=("median",))
    y64 = y.astype(np.float64)
    np.testing.assert_array_equal(got["median"].bias, np.median(y64, axis=0))
    repeated = np.repeat(y64, w.astype(int), axis=0)
    np.testing.assert_array_equal(got["weighted"].bias,
                                  np.median(repeated, axis=0))
