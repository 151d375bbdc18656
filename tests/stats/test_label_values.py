"""LabelValues: distinct label values and their weights, against NumPy."""

import numpy as np
import pytest

from keras_biasinit.stats.label_values import LabelValues


def test_label_values_merge_in_any_batching(rng):
    y = np.round(rng.uniform(size=(500, 2)), 1)
    w = rng.uniform(0.1, 2.0, size=500)
    whole = LabelValues().update(y, w).result()
    parts = LabelValues()
    for i in range(0, 500, 77):
        parts.merge(LabelValues().update(y[i:i + 77], w[i:i + 77]))
    for (v1, w1), (v2, w2), j in zip(whole, parts.result(), range(2)):
        np.testing.assert_array_equal(v1, v2)
        np.testing.assert_allclose(w1, w2, rtol=1e-12)
        np.testing.assert_array_equal(v1, np.unique(y[:, j]))
        expected = [w[y[:, j] == v].sum() for v in v1]
        np.testing.assert_allclose(w1, expected, rtol=1e-12)


def test_label_values_cap():
    with pytest.raises(ValueError, match="distinct values"):
        LabelValues(max_values=10).update(np.arange(11.0))
