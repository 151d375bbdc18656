"""The weighted quantile by radix select (see `_radix`): per column, descend.

After each radix pass, per column: with `W` the weight of the window's bins in
value order and `L` the weight below the window, the quantile lies in the
first bin `k` with `L + W_0 + ... + W_k >= q W_total` (NumPy's
`averaged_inverted_cdf`: the first value whose cumulative weight reaches
`q W`). If it reaches it exactly (a tie), the answer is the midpoint of that
value and the next one, which lies in the next non-empty bin of the window or,
if none, is the smallest value of window B (measured in the same pass). The
bins below and above `k` leave through their exact weight and `sum w y`, so
the absolute deviations `sum w |y - b|` come out of the same passes:
`b W_below - S_below + S_above - b W_above`, summed exactly (`_exact_sum`).

A column whose last bin still holds several float64 values (targets that are
not float32), or whose bin a rounding of the weights missed, continues with
the general passes (`_pass_state`), over that bin's float64 range.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from keras_biasinit.stats._exact_sum import exact_sum
from keras_biasinit.stats._exact_sum import two_prod
from keras_biasinit.stats._radix import NONE
from keras_biasinit.stats._radix import RadixPlan
from keras_biasinit.stats._radix import bits_value
from keras_biasinit.stats._radix import key_order
from keras_biasinit.stats._radix import raw_digit

_BIG = 2.0**128  # the float64 a float32 infinity stands for when rounding


def float_range(prefix: int, shift: int) -> Tuple[float, float]:
    """The smallest and largest float64 values whose float32 rounding has bits
    `prefix` above `shift` (infinities: every float64 that rounds to them)."""
    lo_raw, hi_raw = prefix << shift, (prefix << shift) | ((1 << shift) - 1)
    low, high = bits_value(lo_raw), bits_value(hi_raw)
    if lo_raw >> 31:
        low, high = high, low
    low = -np.inf if np.isnan(low) else low
    high = np.inf if np.isnan(high) else high
    return _lowest_rounding_to(low), _highest_rounding_to(high)


def _as64(v) -> float:
    return float(v) if np.isfinite(v) else float(np.copysign(_BIG, v))


def _lowest_rounding_to(v: float) -> float:
    if v == -np.inf:
        return -np.finfo(np.float64).max
    prev = np.nextafter(np.float32(v), np.float32(-np.inf))
    m = (_as64(prev) + _as64(v)) / 2  # exact: both have 24 significant bits
    with np.errstate(over="ignore"):
        return m if np.float32(m) == v else float(np.nextafter(m, np.inf))


def _highest_rounding_to(v: float) -> float:
    if v == np.inf:
        return float(np.finfo(np.float64).max)
    nxt = np.nextafter(np.float32(v), np.float32(np.inf))
    m = (_as64(v) + _as64(nxt)) / 2
    with np.errstate(over="ignore"):
        return m if np.float32(m) == v else float(np.nextafter(m, -np.inf))


def _levels(x: np.ndarray) -> np.ndarray:
    return exact_sum(x[:, None])[:, 0]


class RadixSelect:
    """The radix descent of every column (see the module docstring).

    `step(state)` reads a merged radix pass and returns, per column still
    descending: `("radix", ...)` for another radix pass, `("done", b, below,
    above)`, or `("general", low, high, cost)`: continue with the general
    passes on that float64 range (cost: the rows in it; inf: unknown).
    """

    def __init__(self, q: float, state, weighted: bool) -> None:
        d, self.bits = state.plan.columns, state.plan.bits
        total = state.weights().sum(axis=1)
        self.target = q * total
        self.tol = 1e-9 * self.target if weighted else np.zeros(d)
        self.below_w = np.zeros(d)
        self.sums: List[Dict[str, list]] = [
            {"wb": [], "sb": [], "wa": [], "sa": []} for _ in range(d)]
        self.prefix: List[Optional[int]] = [None] * d
        self.exact = state.exact.copy()
        self.upper = np.full(d, np.nan)  # the value after A's top, once known

    def step(self, state) -> Dict[int, tuple]:
        plan, weights = state.plan, state.weights()
        out = {}
        for j in range(plan.columns):
            if plan.prefix is not None and plan.prefix[j] == NONE:
                continue
            out[j] = self._column(state, weights, j)
        return out

    def _column(self, state, weights, j: int) -> tuple:
        plan = state.plan
        prefix = None if plan.prefix is None else int(plan.prefix[j])
        c, w = (key_order(a[j], plan.shift, prefix) for a in (state.count, weights))
        shift = plan.shift - plan.bits  # below the new prefix
        cum = self.below_w[j] + np.cumsum(w)
        t, tol = self.target[j], self.tol[j]
        k = int(np.searchsorted(cum, t - tol, side="left"))
        if k == cum.shape[0] or self.below_w[j] >= t - tol or c[k] == 0:
            return ("general", None, None, np.inf)  # rounding missed: start over
        tie = bool(cum[k] <= t + tol)
        later = np.flatnonzero(c[k + 1:])
        k2 = k + 1 + int(later[0]) if later.size else None
        child = self._child(prefix, plan, k)
        s = self._bin_sums(state, w, j, prefix, plan, shift)
        self._keep(j, w, s, k)
        self.below_w[j] = cum[k - 1] if k else self.below_w[j]
        upper = None
        if tie and k2 is None:  # the next value: window B's smallest, once seen
            if state.bcount[j]:
                self.upper[j] = state.bmin[j]
            if np.isnan(self.upper[j]):
                return ("general", None, None, np.inf)
            upper = float(self.upper[j])
        bchild = self._child(prefix, plan, k2) if tie and k2 is not None else None
        if shift == 0 and self.exact[j]:
            v = bits_value(child)
            if tie and upper is None:
                upper = bits_value(bchild)
            return self._done(j, v, float(w[k]), upper)
        if not self.exact[j]:
            low, high = float_range(child, shift)
            if tie:
                high = upper if upper is not None else float_range(bchild, shift)[1]
            cost = c[k] + (c[k2] if bchild is not None else 0)
            if shift == 0 or cost <= self.collect_room:
                return ("general", low, high, float(cost))
        expect = (int(c[k]), int(c[k2]) if bchild is not None else 0)
        return ("radix", child, NONE if bchild is None else bchild, expect)

    collect_room = 0  # set by the search: values a collect pass may hold

    def _child(self, prefix, plan, k) -> int:
        digit = raw_digit(k, plan.bins, plan.shift, prefix)
        return digit if prefix is None else (prefix << plan.bits) | digit

    def _bin_sums(self, state, w, j, prefix, plan, shift) -> np.ndarray:
        """`sum w y` per bin (value order); in the last pass, from the values."""
        if state.total is not None:
            return key_order(state.total[j], plan.shift, prefix)
        digits = np.arange(plan.bins, dtype=np.uint32)
        raw = (np.uint32(prefix) << np.uint32(plan.bits)) | digits
        values = key_order(raw.view(np.float32).astype(np.float64), plan.shift,
                           prefix)
        values = np.where(np.isfinite(values), values, 0.0)  # empty bins
        return np.concatenate(two_prod(w, values))

    def _keep(self, j, w, s, k) -> None:
        sums, n = self.sums[j], w.shape[0]
        lo_s, hi_s = (s[:k], s[k + 1 : n]) if s.shape[0] == n else (
            np.r_[s[:k], s[n : n + k]], np.r_[s[k + 1 : n], s[n + k + 1 :]])
        sums["wb"].append(_levels(w[:k]))
        sums["sb"].append(_levels(lo_s))
        sums["wa"].append(_levels(w[k + 1 :]))
        sums["sa"].append(_levels(hi_s))

    def _done(self, j, v, weight_v, upper) -> tuple:
        b = v if upper is None else (v + upper) / 2
        sums = {key: np.concatenate(parts) for key, parts in self.sums[j].items()}
        below = exact_sum(np.concatenate(
            [*two_prod(b, sums["wb"]), -sums["sb"]])[:, None]).sum()
        above = exact_sum(np.concatenate(
            [sums["sa"], *two_prod(-b, sums["wa"])])[:, None]).sum()
        if upper is not None:
            below += weight_v * (b - v)
        return ("done", b + 0.0, float(below), float(above))


def next_radix_plan(columns: int, bits: int, shift: int, radix: Dict[int, tuple]
                    ) -> Optional[RadixPlan]:
    """The radix pass for the columns that descend further (None: none)."""
    if not radix:
        return None
    prefix = np.full(columns, NONE, np.uint32)
    bprefix = np.full(columns, NONE, np.uint32)
    expect = np.zeros((2, columns), np.int64)
    for j, (child, bchild, counts) in radix.items():
        prefix[j], bprefix[j] = child, bchild
        expect[:, j] = counts
    step = min(bits, shift)
    return RadixPlan(columns, step, shift, prefix, bprefix, expect,
                     sums=shift - step > 0)
