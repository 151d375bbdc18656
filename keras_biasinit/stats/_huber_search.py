"""The Huber location's brackets over several passes: windows, bins, probes.

For a bracket `[L, U]` of the location only the values in `[L - delta, U -
delta]` and `[L + delta, U + delta]` (`windows`) change regime; every other
value adds `+delta`, `-delta` or `b - y` to `psi(b) = sum_i w_i clip(b - y_i,
-delta, delta)` whatever `b` in the bracket, so it is needed only through
sums. A histogram pass over the windows bounds psi at the bin edges +- delta
(`bracket`, with `_huber_bounds`), hence a bracket a bin or two wide, and
says what collecting its windows would cost; a bracket the bins cannot narrow
is narrowed by evaluating psi exactly at `PROBES` points (`probe_points`,
`probed`). A collect pass then solves psi on the bracket (`_huber_solve`).
`keras_biasinit.stats._huber_steps` drives these steps.
"""

from __future__ import annotations

import numpy as np

from keras_biasinit.stats._huber_bounds import binned
from keras_biasinit.stats._huber_bounds import edge_points
from keras_biasinit.stats._huber_bounds import narrow
from keras_biasinit.stats._huber_bounds import psi_bounds
from keras_biasinit.stats._keys import from_keys
from keras_biasinit.stats._keys import to_keys
from keras_biasinit.stats._plan import PROBES

_BIG = np.finfo(np.float64).max


def windows(low: float, high: float, delta: float):
    """Key windows [low - delta, high - delta] and [low + delta, high + delta]
    (one merged window where they overlap)."""
    edges = np.clip([low - delta, high - delta, low + delta, high + delta], -_BIG, _BIG)
    k = [int(x) for x in to_keys(edges)]
    if k[1] >= k[2]:
        return [(k[0], k[3])]
    return [(k[0], k[1]), (k[2], k[3])]


def probe_points(low: float, high: float) -> np.ndarray:
    """`PROBES` points in (low, high): half evenly spaced in value, half in
    float keys (geometric for a bracket spanning orders of magnitude, where
    even value spacing would narrow it only ~PROBES-fold a pass)."""
    half = PROBES // 2
    in_value = low + (high - low) / (half + 1) * np.arange(1, half + 1)
    keys = to_keys(np.array([low, high])).astype(np.float64)
    in_keys = np.linspace(keys[0], keys[1], PROBES - half + 2)[1:-1]
    in_keys = from_keys(in_keys.astype(np.uint64))
    return np.clip(np.sort(np.concatenate([in_value, in_keys])), low, high)


def _constant_part(result, j: int, delta: float, b):
    """psi's part from the rows outside the windows (exact for b in the bracket)."""
    w_below, w_between, w_above = result.region_weight[:, j]
    return (delta * (w_below - w_above) + w_between * (b - result.anchors[1, j])
            - result.region_sum[1, j])


def probed(result, j: int, delta: float, low: float, high: float):
    """From a probe pass: the bracket narrowed by psi's exact signs.

    A probe `p` with psi(p) = 0 and no value within delta of it lies in a flat
    stretch of psi: no data in (lo, hi), the largest value at or below
    `p - delta` and the smallest at or above `p + delta`, so psi is 0 exactly on
    [lo + delta, hi - delta] and the location is its midpoint, (lo + hi) / 2.
    """
    psi, near, lo, hi = (part[j] for part in result.probes)
    points = result.probe_points[j]
    scale = delta * result.summary.weight
    flat = np.flatnonzero((np.abs(psi) <= 1e-12 * scale) & (near == 0))
    if flat.size and np.isfinite(lo[flat[0]]) and np.isfinite(hi[flat[0]]):
        b = float((lo[flat[0]] + hi[flat[0]]) / 2)
        return b, b
    below, above = points[psi < -1e-10 * scale], points[psi > 1e-10 * scale]
    if below.size:
        low = max(low, float(below.max()))
    if above.size:
        high = min(high, float(above.min()))
    return low, high


def bracket(result, j: int, delta: float, low: float, high: float, block: int):
    """From a histogram pass: a narrower bracket, the cost of collecting its
    windows, and the spans to bin them over if they are binned again."""
    new_low, new_high = low, high
    for kind in (0, 1):
        a, b = _bracket_of(result, j, kind, delta, low, high, block)
        new_low, new_high = max(new_low, a), min(new_high, b)
    wins = windows(new_low, new_high, delta)
    costs, spans = [], []
    for kind in (0, 1):
        count, _, _, vmin, vmax, _, _ = result.column_bins(j, kind)
        cost = 0.0
        for lo_key, hi_key in wins:
            lo_v, hi_v = from_keys(np.array([lo_key, hi_key], np.uint64))
            overlap = (vmax >= lo_v) & (vmin <= hi_v)
            # a bin with min == max holds one distinct value
            cost += float(np.where(vmin == vmax, 1, count)[overlap].sum())
            if kind == 0:  # the data seen in the window, to bin it again
                if overlap.any():
                    seen = to_keys(
                        np.array([vmin[overlap][0], vmax[overlap][-1]]))
                    spans.append((max(lo_key, int(seen[0])),
                                  min(hi_key, int(seen[1]))))
                else:
                    spans.append((lo_key, hi_key))
        costs.append(cost)
    return new_low, new_high, min(costs), spans


def _bracket_of(result, j: int, kind: int, delta: float, low: float, high: float,
                block: int = 4096):
    """A bracket from one of the windows' histograms (`kind`: 0 even in float
    keys, 1 in value): psi bounded at the bins' edges +- delta."""
    count, weight, wsum, vmin, vmax, anchor, window = result.column_bins(j, kind)
    if not weight.size:
        return low, high
    total = result.region_weight[:, j].sum() + weight.sum()
    margin = 1e-9 * total * (3 * delta + (high - low))
    n0 = int(np.count_nonzero(window == 0))  # each window's sums: its anchor
    bins = binned(low=vmin, high=vmax, weight=weight, dev=wsum, anchor=anchor,
                  groups=[(0, n0), (n0, weight.size)])

    def bounds(points):
        lower, upper, _, _ = psi_bounds(bins, delta, points)
        const = _constant_part(result, j, delta, points)  # the other rows
        lower += const
        upper += const
        return lower, upper, margin

    return narrow(bounds, edge_points(bins, delta, low, high), low, high, block)
