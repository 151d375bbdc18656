"""Bounds on the Huber psi from binned rows (`_huber_bounds`), the one rule
both the radix bins and the windows' histograms use.

The reference is psi summed directly with NumPy from the rows themselves:
`sum w clip(b - y, -delta, delta)`.
"""

import numpy as np
import pytest

from keras_biasinit.stats._huber_bounds import binned
from keras_biasinit.stats._huber_bounds import edge_points
from keras_biasinit.stats._huber_bounds import narrow
from keras_biasinit.stats._huber_bounds import psi_bounds


def _bins(y, w, edges, anchors):
    """Histogram of the rows in `edges`: min, max, weight, `sum w (y - a)`,
    each run of bins (split at the middle edge) about its own anchor."""
    idx = np.searchsorted(edges, y, side="right") - 1
    keep = np.unique(idx)
    low = np.array([y[idx == k].min() for k in keep])
    high = np.array([y[idx == k].max() for k in keep])
    weight = np.array([w[idx == k].sum() for k in keep])
    split = int(np.searchsorted(keep, (edges.size - 1) // 2))
    anchor = np.where(np.arange(keep.size) < split, anchors[0], anchors[1])
    dev = np.array([w[idx == k] @ (y[idx == k] - a) for k, a in zip(keep, anchor)])
    return binned(low=low, high=high, weight=weight, dev=dev, anchor=anchor,
                  groups=[(0, split), (split, keep.size)])


def _psi(y, w, delta, points):
    return np.array([w @ np.clip(p - y, -delta, delta) for p in points])


@pytest.mark.parametrize("delta", [0.05, 1.0, 20.0])
def test_bounds_hold_psi_and_are_exact_away_from_straddling_bins(rng, delta):
    y = np.r_[rng.normal(3, 2, 3000), rng.uniform(40, 60, 50)]
    w = rng.random(y.size)
    bins = _bins(y, w, np.linspace(y.min(), y.max() + 1e-9, 65), (-1.0, 30.0))
    points = np.r_[np.linspace(-10, 70, 801), rng.normal(3, 1, 200)]
    lower, upper, i_a, i_c = psi_bounds(bins, delta, points)
    psi = _psi(y, w, delta, points)
    slack = 1e-9 * w.sum() * delta
    assert np.all(lower <= psi + slack) and np.all(psi <= upper + slack)
    # No bin straddles b - delta or b + delta: psi is known exactly there.
    clear = ~np.any((bins.low[:, None] < points - delta)
                    & (bins.high[:, None] > points - delta)
                    | (bins.low[:, None] < points + delta)
                    & (bins.high[:, None] > points + delta), axis=0)
    assert clear.any()
    np.testing.assert_allclose(lower[clear], psi[clear], atol=slack)
    np.testing.assert_allclose(upper[clear], psi[clear], atol=slack)


def test_narrow_keeps_the_root_between_certain_signs(rng):
    y, w, delta = rng.standard_t(3, 4000), rng.random(4000), 0.5
    bins = _bins(y, w, np.linspace(y.min(), y.max() + 1e-9, 257), (0.0, 0.0))

    def bounds(points):
        lower, upper, _, _ = psi_bounds(bins, delta, points)
        return lower, upper, 1e-9 * w.sum()

    points = edge_points(bins, delta, y.min(), y.max())
    low, high = narrow(bounds, points, float(y.min()), float(y.max()), block=100)
    assert _psi(y, w, delta, [low])[0] < 0 < _psi(y, w, delta, [high])[0]
    assert high - low < (y.max() - y.min()) / 64  # a bin or two wide
