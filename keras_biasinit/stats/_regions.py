"""The rows outside a pass's windows, summed per column and region.

A later pass of an exact order statistic looks closely only inside its
windows (`Plan.lo`/`Plan.hi`, two per column); every other row falls in one of
three regions, below the first window, between the two, or above the second,
and is only summed: its weight, `sum w (y - anchor)` and, between the
windows, `sum w (y - anchor)^2`, about the plan's per-region anchors (which
keeps the sums' rounding small). A pass that collects values for the final
solve also sums the weights of the three regions and `sum w y` between the
windows exactly (`ExactSums`), as the two parts of each product.

Example (one column, windows [1, 2] and [4, 5]; rows 0, 3 and 9 fall below,
between and above them):

>>> from keras_biasinit.stats._keys import to_keys
>>> from keras_biasinit.stats._plan import COLLECT, Plan
>>> plan = Plan(columns=1, bins=8)
>>> plan.set(0, COLLECT, [(int(to_keys(np.array(1.0))), int(to_keys(np.array(2.0)))),
...                       (int(to_keys(np.array(4.0))), int(to_keys(np.array(5.0))))])
>>> y = np.array([[0.0], [1.5], [3.0], [9.0]])
>>> sums = RegionSums(plan, plan.anchors(), exact=False)
>>> sums.add(y, None, to_keys(y)).ravel().tolist()  # the rows inside
[False, True, False, False]
>>> sums.sums[0].ravel().tolist()  # the weight below, between and above
[1.0, 1.0, 1.0]
"""

from __future__ import annotations

import numpy as np

from keras_biasinit.stats._exact_sum import ExactSums
from keras_biasinit.stats._exact_sum import two_prod
from keras_biasinit.stats.state import Arrays

#: Regions, in the order of the sums' second axis.
BELOW, BETWEEN, ABOVE = 0, 1, 2


class RegionSums:
    """Per column and region: weight, `sum w (y - anchor)`, and between the
    windows `sum w (y - anchor)^2`; with `exact`, the exact sums too.

    Args:
        plan: the pass's `Plan` (its windows' key bounds).
        anchors: `(3, columns)` values the sums are taken about.
        exact: whether to keep the exact sums a collecting pass needs.
    """

    def __init__(self, plan, anchors: np.ndarray, exact: bool) -> None:
        self.plan, self.anchors = plan, anchors
        self.sums = np.zeros((3, 3, plan.columns))  # weight, sum, sum2 x region
        self.exact = ExactSums(5, plan.columns) if exact else None

    def add(self, y, w, keys) -> np.ndarray:
        """Adds the rows outside the windows; returns the mask of those inside."""
        plan = self.plan
        below, above = keys < plan.lo[:, 0], keys > plan.hi[:, 1]
        between = (keys > plan.hi[:, 0]) & (keys < plan.lo[:, 1])
        for r, mask in enumerate((below, between, above)):
            dev = (y - self.anchors[r]) * mask
            if w is None:
                self.sums[0, r] += mask.sum(axis=0)
                self.sums[1, r] += dev.sum(axis=0)
                if r == BETWEEN:
                    self.sums[2, r] += np.einsum("ij,ij->j", dev, dev)
            else:
                self.sums[0, r] += w @ mask
                self.sums[1, r] += w @ dev
                if r == BETWEEN:
                    self.sums[2, r] += w @ (dev * dev)
        if self.exact is not None:
            self._add_exact(y, w, below, between, above)
        return ~(below | above | between)

    def _add_exact(self, y, w, below, between, above) -> None:
        """Exact sums: the weight below, above and between the windows, and
        `sum w y` between them (as the two parts of each product)."""
        # Counts, and sums of integer weights below 2^53, are exact as they are.
        whole = w is None or (np.all(w == np.floor(w)) and w.sum() < 2.0**52)
        for k, mask in enumerate((below, above, between)):
            if whole:
                self.exact.add(k, (mask.sum(axis=0) if w is None else w @ mask)[None])
            else:
                self.exact.add(k, w[:, None] * mask)
        if w is None:
            self.exact.add(3, y * between)
        else:
            for k, part in enumerate(two_prod(w[:, None], y), start=3):
                self.exact.add(k, part * between)

    def merge(self, other: "RegionSums") -> "RegionSums":
        self.sums += other.sums
        if self.exact is not None:
            self.exact.merge(other.exact)
        return self

    def to_arrays(self) -> Arrays:
        arrays = {"region": self.sums}
        if self.exact is not None:
            arrays.update(self.exact.to_arrays("exact_"))
        return arrays

    def from_arrays(self, arrays: Arrays) -> "RegionSums":
        """A new `RegionSums` of the same plan holding copies of `arrays`."""
        state = RegionSums(self.plan, self.anchors, self.exact is not None)
        state.sums = np.array(arrays["region"], np.float64).reshape(3, 3, -1)
        if state.exact is not None:
            state.exact = state.exact.from_arrays(arrays, "exact_")
        return state
