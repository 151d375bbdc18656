"""The general passes of the weighted quantile (`quantile.QuantileSearch`).

Where neither the radix select nor a row sample applies (budgets under
1 MiB, float64 values a radix bin could not split), a pass bins the
column's window in two histograms and the next collects the values of the
bins that hold the rank `q W`: `GeneralSteps._bracket` picks those bins,
`GeneralSteps._solve` reads the quantile off the collected values, the rows
below and above the window entering through their exact region sums.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from keras_biasinit.stats._keys import to_keys


def quantile_point(cum: np.ndarray, target: float, *, weighted: bool
                   ) -> Tuple[int, bool]:
    """Index of the first cumulative weight that reaches `target`, and whether
    it reaches it exactly (a tie: the minimiser is the interval up to the next
    value). With weights, "exactly" allows the rounding of the cumulative sums
    (1e-9 relative), so that scaling every weight by one constant, which does
    not change the minimisers, does not move the quantile off the midpoint."""
    tol = 1e-9 * target if weighted else 0.0
    i = int(np.searchsorted(cum, target - tol, side="left"))
    return i, i < cum.shape[0] and bool(cum[i] <= target + tol)


def pick(values: np.ndarray, i: int, tie: bool) -> float:
    if tie and i + 1 < values.shape[0]:
        return (values[i] + values[i + 1]) / 2
    return values[i]


class GeneralSteps:
    """The reading of a general pass, for a search with `q`, `weighted` and
    `full` (each column's key range)."""

    def _bracket(self, result, j: int):
        """From a histogram pass: (collect cost, column, key window) holding the
        quantile, from whichever of the two histograms gives the smaller one."""
        cost, window = min((self._bracket_of(result, j, kind) for kind in (0, 1)),
                           key=lambda item: item[0])
        return cost, j, window

    def _bracket_of(self, result, j: int, kind: int):
        bins = result.column_bins(j, kind)
        w_below, w_above = result.region_weight[0, j], result.region_weight[2, j]
        cum = w_below + np.cumsum(bins.weight)
        if cum.shape[0] == 0:
            return np.inf, self.full[j]
        target = self.q * (cum[-1] + w_above)
        tol = 1e-9 * target if self.weighted else 0.0
        k = int(np.searchsorted(cum, target - tol, side="left"))
        if w_below >= target - tol or k == cum.shape[0]:
            return np.inf, self.full[j]  # the bracket missed (rounding): rebin
        k2 = k
        if cum[k] <= target + tol:  # the point may sit on the bin's upper edge
            if k + 1 < cum.shape[0]:
                k2 = k + 1
            elif w_above > 0:
                return np.inf, self.full[j]
        cost = float(np.where(bins.low == bins.high, 1, bins.count)[k : k2 + 1].sum())
        keys = to_keys(np.array([bins.low[k], bins.high[k2]]))
        return cost, (int(keys[0]), int(keys[1]))

    def _solve(self, result, j: int):
        """From a collect pass: (quantile, sum w (b - y)_+, sum w (y - b)_+),
        or None if the window missed it."""
        values, weights = result.column_values(j)
        w_below, w_above = result.region_weight[0, j], result.region_weight[2, j]
        cum = w_below + np.cumsum(weights)
        if cum.shape[0] == 0:
            return None
        target = self.q * (cum[-1] + w_above)
        i, tie = quantile_point(cum, target, weighted=self.weighted)
        if w_below >= target or i == cum.shape[0]:
            return None
        if tie and i + 1 == cum.shape[0] and w_above > 0:
            return None
        b = float(pick(values, i, tie))
        low_anchor, high_anchor = result.anchors[0, j], result.anchors[2, j]
        # Rows below the window: sum w (b - y) = W (b - a) + sum w (a - y), both
        # terms >= 0 (a = the window's low end); likewise above.
        inside = values - b
        below = (w_below * (b - low_anchor) - result.region_sum[0, j]
                 - weights @ np.minimum(inside, 0.0))
        above = (w_above * (high_anchor - b) + result.region_sum[2, j]
                 + weights @ np.maximum(inside, 0.0))
        return b, float(below), float(above)
