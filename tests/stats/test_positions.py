import numpy as np
import pytest

from keras_biasinit.stats._positions import nonzero_2d


@pytest.mark.parametrize("shape", [(1000, 1), (1000, 7), (3, 1000), (0, 3), (4, 0)])
@pytest.mark.parametrize("view", ["whole", "row", "column", "transposed"])
def test_same_indices_and_order_as_numpy(shape, view):
    mask = np.random.default_rng(0).random(shape) < 0.3
    if view == "row" and shape[0]:
        mask = np.broadcast_to(mask[:1], shape)
    elif view == "column" and shape[1]:
        mask = np.broadcast_to(mask[:, :1], shape)
    elif view == "transposed":
        mask = np.ascontiguousarray(mask.T).T  # a Fortran-ordered view
    want = np.nonzero(mask)
    got = nonzero_2d(mask)
    for w, g in zip(want, got):
        np.testing.assert_array_equal(g, w)
        assert g.dtype == w.dtype
