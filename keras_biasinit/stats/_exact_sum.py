"""Exact column sums of floats, streamed: a few floats per column, no rounding.

`exact_sum(x)` returns, per column of `x`, a short list of floats (the rows of
a `(levels, columns)` array) whose exact sum is the exact sum of the column.
It peels the terms level by level (Rump, Ogita and Oishi's extraction): with
`sigma` a power of two at least twice `rows * max|x|`, `q = (sigma + x) -
sigma` keeps the bits of `x` above `2^-53 sigma` and `x - q` the rest, both
exactly; every `q` is then a multiple of `2^-53 sigma` below `sigma / rows`, so
NumPy sums them with no rounding. Each level resolves about
`52 - log2(rows)` bits, and it stops when nothing is left: typically 2 to 4
levels. A running sum is kept as such levels (`ExactSums`) and re-extracted
with each new chunk, so it stays a few floats per column whatever the data.

Terms near the overflow threshold (`rows * max|x|` above `2^1022`, e.g. `w y`
of 1e300 values) are summed scaled by `2^-80`, exactly (a power of two), the
column's tiny terms apart; only a sum beyond the float range is lost (inf).

Example:

>>> x = np.array([[1e16], [1.0], [-1e16]])
>>> float(x.sum()), float(exact_sum(x).sum())
(0.0, 1.0)
"""

from __future__ import annotations

from typing import Dict

import numpy as np

_LIMIT = 2.0**1022
#: Terms too large to extract are summed scaled by 2^-_SCALE (exact for terms
#: at or above 2^-900; smaller ones are summed apart, unscaled).
_SCALE = 80


def exact_sum(x: np.ndarray) -> np.ndarray:
    """`(levels, columns)` floats whose sum, per column, is exactly `x.sum(0)`.

    `x`: `(rows, columns)` finite floats. The levels are in decreasing
    magnitude; there is at least one.
    """
    x = np.asarray(x, np.float64)
    if x.ndim == 1:
        x = x[:, None]
    spread = max(1, int(x.shape[0]) - 1).bit_length() + 1  # rows <= 2^(spread-1)
    top = np.abs(x).max(axis=0) if x.shape[0] else np.zeros(x.shape[1:])
    if not np.all(np.isfinite(top)):  # inf or NaN terms: their plain sum
        return x.sum(axis=0)[None]
    if not np.all(top < _LIMIT / 2.0**spread):  # sigma would overflow
        big = np.abs(x) >= 2.0**-900
        scaled = exact_sum(np.where(big, x, 0.0) * 2.0**-_SCALE)
        with np.errstate(over="ignore"):
            return np.concatenate([scaled * 2.0**_SCALE,
                                   exact_sum(np.where(big, 0.0, x))])
    levels = []
    with np.errstate(over="ignore", invalid="ignore"):
        while np.any(top):
            sigma = np.ldexp(1.0, np.frexp(top)[1] + spread)
            sigma = np.where(top > 0, sigma, 0.0)
            q = (sigma + x) - sigma
            levels.append(q.sum(axis=0))
            x = x - q
            top = np.abs(x).max(axis=0)
    return np.array(levels) if levels else np.zeros((1,) + x.shape[1:])


def group_sums(x: np.ndarray, starts: np.ndarray):
    """Per group of consecutive elements (`starts`, as for `np.add.reduceat`):
    the sum of positive `x`, and its rounding error, as two floats whose sum
    is exact to `2^-104` of it (double-double). The same extraction as
    `exact_sum`, each group with its own `sigma`."""
    total = np.add.reduceat(x, starts)
    sizes = np.diff(np.append(starts, x.size))
    group = np.repeat(np.arange(starts.size), sizes)
    spread = np.frexp(sizes.astype(np.float64))[1] + 1  # size <= 2^(spread-1)
    levels = []
    with np.errstate(over="ignore", invalid="ignore"):
        while np.any(x):
            top = np.maximum.reduceat(np.abs(x), starts)
            if not np.all(top < _LIMIT / 2.0**spread):
                return total, np.zeros_like(total)
            sigma = np.where(top > 0, np.ldexp(1.0, np.frexp(top)[1] + spread), 0.0)
            q = (sigma[group] + x) - sigma[group]
            levels.append(np.add.reduceat(q, starts))
            x = x - q
    if not levels:
        return total, np.zeros_like(total)
    # levels[0] and total agree to a few ulps: their difference is exact.
    return total, (levels[0] - total) + sum(levels[1:], np.zeros_like(total))


class ExactSums:
    """Running exact column sums of several quantities, each kept as levels.

    `parts[k]`: `(levels, columns)` floats whose exact sum per column is the sum
    of quantity `k` so far. `add(k, terms)` adds `(rows, columns)` terms;
    `merge` adds another `ExactSums`'s sums.
    """

    def __init__(self, quantities: int, columns: int) -> None:
        self.parts = [np.zeros((0, columns)) for _ in range(quantities)]

    def add(self, quantity: int, terms: np.ndarray) -> None:
        # The terms alone first: their own scale, so few levels (with the
        # running sum's far larger scale each level would resolve less of
        # them: 10x the time on 131,072 rows); then the few levels together.
        levels = exact_sum(terms)
        self.parts[quantity] = exact_sum(np.concatenate([self.parts[quantity],
                                                         levels]))

    def merge(self, other: "ExactSums") -> None:
        for k, levels in enumerate(other.parts):
            self.add(k, levels)

    def levels(self, quantity: int, column: int) -> np.ndarray:
        """The floats whose exact sum is the sum of `quantity` in `column`."""
        return self.parts[quantity][:, column]

    def to_arrays(self, prefix: str) -> Dict[str, np.ndarray]:
        return {f"{prefix}{k}": levels for k, levels in enumerate(self.parts)}

    def from_arrays(self, arrays, prefix: str) -> "ExactSums":
        """A new `ExactSums` holding copies of `to_arrays`'s arrays."""
        new = ExactSums(len(self.parts), self.parts[0].shape[1])
        new.parts = [np.array(arrays[f"{prefix}{k}"], np.float64).reshape(
            -1, self.parts[0].shape[1]) for k in range(len(self.parts))]
        return new


def two_sum(a, b):
    """`a + b` as `(s, e)` with `s + e == a + b` exactly (Knuth's TwoSum)."""
    s = a + b
    b_virtual = s - a
    return s, (a - (s - b_virtual)) + (b - b_virtual)


_SPLIT = 2.0**27 + 1  # Veltkamp's splitter for float64
#: Above this `_SPLIT * x` would overflow: such x are split scaled by 2^-28.
_SPLIT_MAX = 2.0**995


def _split(x: np.ndarray):
    """`x` as `(hi, lo)`, `hi + lo == x` exactly, each of at most 26
    significant bits (Veltkamp); values near the overflow threshold (above
    `2^995`, e.g. 1.4e300) are split scaled by an exact power of two, where
    `_SPLIT * x` would overflow and leave NaN."""
    big = np.abs(x) > _SPLIT_MAX
    scaled = np.where(big, x * 2.0**-28, x) if big.any() else x
    hi = _SPLIT * scaled
    hi = hi - (hi - scaled)
    if scaled is not x:
        hi = np.where(big, hi * 2.0**28, hi)
    return hi, x - hi


def two_prod(a, b):
    """`a * b` as `(p, e)` with `p + e == a * b` exactly (Dekker), for arrays;
    inexact only where `a * b` overflows or its error underflows."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    p = a * b
    (a_hi, a_lo), (b_hi, b_lo) = _split(a), _split(b)
    return p, ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
