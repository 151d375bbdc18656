"""Radix passes: weighted histograms of the bits of float32 values.

An exact order statistic of float32 targets is a radix select (XGBoost's
`RadixSelect`, dmlc/xgboost#12557, keys floats by their order-preserving bit
patterns): pass 1 histograms the high `bits` bits of every value's IEEE 754
pattern (2^16 bins for a few columns: sign, exponent and 7 mantissa bits),
pass 2 the next bits of the values inside the one bin that holds the rank
(window A), and so on until the bins are single values (32 bits: 2 passes of 16
bits). Per bin it sums the count, the weight and (but in the last pass) `w y`;
a second window B (the bin just above A, needed when the rank falls exactly on
A's upper edge) only keeps its smallest value. Everything adds up exactly, so
shards merge by addition.

The histograms index the raw bits (`(bits >> shift) & mask`, no key transform
per row); a negative window's bins run in reverse value order, which the
reader (`key_order`) undoes. Float64 targets are binned by their float32
rounding (monotone, so still an order-consistent partition) and flagged per
column as not `exact` when a value is not a float32: their last bins then hold
ranges of float64 values, which the general passes (`_pass_state`) resolve.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from keras_biasinit.stats._checks import as_columns
from keras_biasinit.stats._checks import check_finite

#: No window B for this column (a prefix no row's bits can have: shift >= 1).
NONE = 0xFFFFFFFF
#: Bytes per bin and column: count, weight, sum (int64, float64, float64).
RADIX_BIN_BYTES = 24


def float32_rows(values):
    """`(y32, y, exact)`: the float32 rounding of `values` as `(rows, d)`, the
    values themselves (float32 or float64, for sums and minima), and per column
    whether every value is a float32 (None: all are, the input was float32)."""
    y = np.asarray(values)
    y = y.reshape(1, 1) if y.ndim == 0 else y.reshape(y.shape[0], -1)
    if y.dtype == np.float32:
        y = np.ascontiguousarray(y)
        return y, y, None
    y64 = as_columns(y)
    with np.errstate(over="ignore"):
        y32 = y64.astype(np.float32)
    return y32, y64, (y32 == y64).all(axis=0)


def flush_elements(budget: int) -> int:
    """Bin ids a radix pass buffers before counting them (an eighth of the
    budget at 24 bytes each: id, value, weight)."""
    return max(256, budget // 8 // 24)


def radix_bits(columns: int, budget: int) -> Optional[int]:
    """Bits per pass: 16 (2 passes for float32) unless the `columns`
    histograms of 2^16 bins exceed a quarter of the budget or the ids buffered
    between two countings over 2 (each counting touches every bin); then fewer
    (9 for 1000 columns in 256 MiB: 4 passes, where the quantiles sample rows
    instead, `_wide_first`). None below 8 bits or 1 MiB."""
    room = min(budget // 4 // RADIX_BIN_BYTES, flush_elements(budget) // 2) // columns
    bits = min(16, int(room).bit_length() - 1)
    return bits if bits >= 8 and budget >= 2**20 else None


def key_order(hist: np.ndarray, shift: int, prefix: Optional[int]) -> np.ndarray:
    """A window's bins (last axis, raw bit order) in value order.

    Pass 1 (`prefix` None): negative patterns (sign bit set) come first, in
    reverse; a negative window's bins are all reversed."""
    half = hist.shape[-1] // 2
    if prefix is None:
        return np.concatenate([hist[..., half:][..., ::-1], hist[..., :half]], -1)
    if (int(prefix) << shift) >> 31:
        return hist[..., ::-1]
    return hist


def raw_digit(k: int, nbins: int, shift: int, prefix: Optional[int]) -> int:
    """The raw digit of value-ordered bin `k` (the inverse of `key_order`)."""
    half = nbins // 2
    if prefix is None:
        return k - half if k >= half else nbins - 1 - k
    if (int(prefix) << shift) >> 31:
        return nbins - 1 - k
    return k


def bits_value(raw: int) -> float:
    """The float64 value of a float32 bit pattern."""
    return float(np.array([raw], np.uint32).view(np.float32)[0])


class RadixPlan:
    """One radix pass: per column a window A (rows whose bits `>> shift` equal
    `prefix`; None: every row, pass 1) binned on the next `bits` bits, and a
    window B (`bprefix`, or `NONE`) whose smallest value is kept. `expect` are
    the rows pass 1 found in A and B (a later pass finding others: the data
    changed). `sums`: whether bins also sum `w y`."""

    def __init__(self, columns: int, bits: int, shift: int = 32, prefix=None,
                 bprefix=None, expect=None, sums: bool = True) -> None:
        self.columns, self.bits, self.shift = columns, bits, shift
        self.prefix = None if prefix is None else np.asarray(prefix, np.uint32)
        self.bprefix = (None if bprefix is None or np.all(bprefix == NONE)
                        else np.asarray(bprefix, np.uint32))
        self.expect = expect
        self.sums = sums
        self.windows = 1
        self.bins = 2**bits

    def new_state(self, first, meter, name, hold=True):
        from keras_biasinit.stats._radix_state import RadixState

        return RadixState(self, meter, name, first=first, hold=hold)


def widen_bounds(low, high, y, values):
    """Pass 1: the per column min and max so far (`low`, `high`, float64 or
    None) widened by the rows `y`; NaN/inf in `values` are the usual error."""
    if y.shape[1] == 1:  # a flat reduction is several times faster
        flat = y.reshape(-1)
        new_low, new_high = flat.min(keepdims=True), flat.max(keepdims=True)
    else:
        new_low, new_high = y.min(axis=0), y.max(axis=0)
    if not (np.isfinite(new_low).all() and np.isfinite(new_high).all()):
        check_finite(np.asarray(values))  # float32 NaN/inf: the usual error
    if low is None:
        return new_low.astype(np.float64), new_high.astype(np.float64)
    np.minimum(low, new_low, out=low)
    np.maximum(high, new_high, out=high)
    return low, high


def window_b(state, rows, cols, y) -> None:
    """Window B of a radix `state`: the smallest value and the rows, per
    column (`y[rows]` for one column, else `y[rows, cols]`)."""
    if rows.size:
        values = (y[rows] if y.ndim == 1 else y[rows, cols]).astype(np.float64)
        cols = np.broadcast_to(cols, rows.shape)
        np.minimum.at(state.bmin, cols, values)
        np.add.at(state.bcount, cols, 1)


def check_radix_pass(state) -> None:
    """Raises if a radix pass after pass 1 read other data: its rows, weight,
    and the rows in windows A and B per column (`plan.expect`)."""
    first, seen, plan = state.first, state.summary, state.plan
    same = (seen.rows == first.rows
            and abs(seen.weight - first.weight) <= 1e-9 * first.weight
            and np.array_equal(state.count.sum(axis=1), plan.expect[0])
            and np.array_equal(state.bcount, plan.expect[1]))
    if not same:
        raise ValueError(
            f"The data changed between passes: the exact {state.name} of data "
            "larger than `memory_budget` needs a few passes over it, and a "
            "later pass read different values (or a different number of "
            "rows) than the first. Make the target deterministic (no random "
            "augmentation of it in the pipeline; a shuffled order is fine), "
            "or raise `memory_budget` so the data fits in one pass."
        )
